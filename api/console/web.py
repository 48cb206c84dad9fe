"""What every console page needs: templates, the signed-in viewer, CSRF checks, error pages, security headers.

``viewer(request)`` resolves the session cookie to a live token and its ``settlement.access.scope.Scope``
(the same object the API's ``ScopeDep`` gives), or None. Pages call the scope functions with it, so a page
never shows what the role's API scope would not return. Imports ``api.state`` and ``api.console.session``;
must not import the console's page modules.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.console import i18n
from api.console.session import LANG_COOKIE, SESSION_COOKIE, LoginLimiter, Session, SessionStore, same_token
from api.settings import Settings
from api.state import LruCache, get_state
from settlement.access.scope import Scope
from settlement.access.tokens import TokenInfo

HERE = Path(__file__).parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True, lstrip_blocks=True,
)
TEMPLATES.filters["money"] = i18n.money
TEMPLATES.filters["localtime"] = i18n.local_time

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure ASGI middleware: the CSP (no inline script), X-Frame-Options DENY, nosniff on every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WriteCounter:
    """How many requests that may have written the store have finished (see ``WriteEpoch``)."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1


# POSTs that write nothing a console page shows: sign-in/out (sessions live in memory) and regulator SQL
# (read-only; it appends to sql_log only). Every other non-GET request counts as a possible write.
NOT_DATA_WRITES = frozenset({"/login", "/logout", "/v1/sql"})


class WriteEpoch:
    """Pure ASGI middleware: bumps ``counter`` when a request that may write the store has finished, whatever
    its outcome. Why: ``ApiState.generation`` moves only after a write route succeeded, but a route can
    commit and still fail (``settle_all`` commits year by year, then a ledger conflict is a 409); keying the
    page-data cache by this counter too means no write path, present or future, can leave it stale."""

    def __init__(self, app, counter: WriteCounter) -> None:
        self.app, self.counter = app, counter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or (
                scope["path"] in NOT_DATA_WRITES):
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        finally:
            self.counter.bump()  # after the route's commit: a page computed from then on sees the write


class ViewCache:
    """Page data computed once per key however many sessions ask at once (one task; the others await it),
    in the thread pool (DuckDB reads never block the event loop), kept in an LRU. Keys carry
    ``data_version``, so a write makes every old entry unreachable: never stale."""

    def __init__(self, size: int) -> None:
        self._done = LruCache(size)
        self._pending: dict[Hashable, asyncio.Future] = {}

    async def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        value = self._done.get(key)
        if value is not None:
            return value
        task = self._pending.get(key)
        if task is None:  # not tied to this request: a client going away does not cancel the others' answer
            task = asyncio.ensure_future(run_in_threadpool(compute))
            self._pending[key] = task
            task.add_done_callback(lambda t: self._finish(key, t))
        return await asyncio.shield(task)

    def _finish(self, key: Hashable, task: asyncio.Future) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and task.exception() is None:  # exception(): marks it seen; awaiters re-raise
            self._done.put(key, task.result())


@dataclass
class ConsoleState:
    sessions: SessionStore
    limiter: LoginLimiter
    cache: LruCache  # page data keyed by (store version, scope, year): exact, never stale
    views: ViewCache = field(default_factory=lambda: ViewCache(512))  # owner page data by data_version
    pages: LruCache = field(default_factory=lambda: LruCache(256))  # rendered bodies, see cached_page
    writes: WriteCounter = field(default_factory=WriteCounter)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleState:
        return cls(SessionStore(settings.session_lifetime_s, settings.session_idle_s),
                   LoginLimiter(settings.login_max_attempts, settings.login_window_s), LruCache(2048))


def console_state(request: Request) -> ConsoleState:
    return request.app.state.console


def data_version(request: Request) -> tuple[int, int]:
    """Names the store's state without a query: (API writes that succeeded, console-counted writes that
    finished). This process is the store's one writer (DuckDB), so nothing else changes it."""
    return get_state(request).generation, console_state(request).writes.value


@dataclass(frozen=True)
class Viewer:
    session_id: str
    session: Session
    token: TokenInfo
    scope: Scope


def viewer(request: Request) -> Viewer | None:
    """The signed-in caller, or None (no cookie, expired session, revoked token)."""
    sid = request.cookies.get(SESSION_COOKIE)
    cs = console_state(request)
    session = cs.sessions.get(sid)
    if session is None:
        return None
    state = get_state(request)
    info = state.token_table.lookup(state.cursor, session.token)
    if info is None:
        cs.sessions.drop(sid)
        return None
    return Viewer(sid, session, info, Scope.of(info))


def lang_of(request: Request) -> str:
    return (i18n.norm_lang(request.query_params.get("lang")) or i18n.norm_lang(request.cookies.get(LANG_COOKIE))
            or "zh-CN")


def _render(request: Request, template: str, lang: str, who: Viewer | None, csrf: str | None, **ctx) -> str:
    other = "zh-CN" if lang == "en" else "en"
    switch = str(request.url.path) + "?" + urlencode({**dict(request.query_params), "lang": other})
    return TEMPLATES.get_template(template).render(
        t=i18n.Tr(lang), lang=lang, who=who, csrf=csrf, switch_url=switch, path=request.url.path, **ctx)


def _response(request: Request, html: str, lang: str, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") and i18n.norm_lang(request.query_params.get("lang")):
        response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="strict", secure=is_https(request))
    return response


def page(request: Request, template: str, status: int = 200, who: Viewer | None = None, **ctx) -> HTMLResponse:
    lang = lang_of(request)
    return _response(request, _render(request, template, lang, who, who.session.csrf if who else None, **ctx), lang,
                     status)


CSRF_SLOT = secrets.token_hex(16)  # stands for the session's CSRF token in a cached page body (never sent)


def cached_page(request: Request, template: str, data_key: Hashable, who: Viewer, **ctx) -> HTMLResponse:
    """``page`` for a signed-in page whose context is fixed by ``data_key`` (which names the viewer's scope and
    the data version): the body is rendered once per (data, language, URL) with a placeholder for the CSRF
    token, which is put in per response. Why: rendering was half the server's CPU per owner page."""
    lang = lang_of(request)
    key = (data_key, template, lang, request.url.path, tuple(sorted(request.query_params.multi_items())))
    pages = console_state(request).pages
    body = pages.get(key)
    if body is None:
        body = _render(request, template, lang, who, CSRF_SLOT, **ctx)
        pages.put(key, body)
    return _response(request, body.replace(CSRF_SLOT, who.session.csrf), lang)


def error_page(request: Request, status: int, message: str, who: Viewer | None = None) -> HTMLResponse:
    return page(request, "error.html", status=status, who=who, status_code=status, message=message)


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def check_csrf(who: Viewer, given: str | None) -> bool:
    return same_token(who.session.csrf, given)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def year_arg(request: Request, years: list[int], default: int | None) -> int | None:
    raw = request.query_params.get("year", "")
    if raw.isdigit() and 1900 <= int(raw) <= 2999:
        return int(raw)
    return default if default is not None else (years[0] if years else None)
