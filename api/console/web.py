"""What every console page needs: templates, the signed-in viewer, CSRF checks, error pages, security headers.

``viewer(request)`` resolves the session cookie to a live token and its ``settlement.access.scope.Scope``
(the same object the API's ``ScopeDep`` gives), or None. Pages call the scope functions with it, so a page
never shows what the role's API scope would not return. Imports ``api.state`` and ``api.console.session``;
must not import the console's page modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

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


@dataclass
class ConsoleState:
    sessions: SessionStore
    limiter: LoginLimiter
    cache: LruCache  # page data keyed by (store version, scope, year): exact, never stale

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleState:
        return cls(SessionStore(settings.session_lifetime_s, settings.session_idle_s),
                   LoginLimiter(settings.login_max_attempts, settings.login_window_s), LruCache(2048))


def console_state(request: Request) -> ConsoleState:
    return request.app.state.console


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


def page(request: Request, template: str, status: int = 200, who: Viewer | None = None, **ctx) -> HTMLResponse:
    lang = lang_of(request)
    t = i18n.Tr(lang)
    other = "zh-CN" if lang == "en" else "en"
    switch = str(request.url.path) + "?" + urlencode({**dict(request.query_params), "lang": other})
    html = TEMPLATES.get_template(template).render(
        t=t, lang=lang, who=who, csrf=who.session.csrf if who else None, switch_url=switch, path=request.url.path,
        **ctx)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") and i18n.norm_lang(request.query_params.get("lang")):
        response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="strict", secure=is_https(request))
    return response


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
