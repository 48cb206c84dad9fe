"""Sign-in, sign-out, the main page of each role, and the self-hosted API docs (issue 12 items 1–2).

``POST /login`` (form field ``token``, the same bearer tokens) answers a session cookie and a redirect to
``/``; ``POST /logout`` ends the session. ``/`` shows the signed-in role's main page. ``/docs`` is Swagger
UI from files this app serves (no CDN), started by a static script (FastAPI's ``get_swagger_ui_html`` writes
an inline script, which our CSP forbids). Must not import the other page modules but through ``ROLE_HOME``.
"""

from __future__ import annotations

import inspect

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.console import operator, owner, regulator
from api.console.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, new_csrf, same_token
from api.console.web import (TEMPLATES, check_csrf, console_state, error_page, is_https, lang_of, page, to_login,
                             viewer)
from api.console import i18n
from api.state import get_state

router = APIRouter(include_in_schema=False)

ROLE_HOME = {"owner": owner.owner_home, "operator": operator.operator_home, "regulator": regulator.regulator_home}


@router.get("/")
async def home(request: Request):
    """On the event loop: a role page that is a coroutine (the owner's) reads its data in the thread pool only
    on a cache miss; the others run in the thread pool as plain routes do."""
    who = viewer(request)
    if who is None:
        return to_login(request)
    handler = ROLE_HOME[who.scope.role]
    if inspect.iscoroutinefunction(handler):
        return await handler(request, who)
    return await run_in_threadpool(handler, request, who)


def _login_form(request: Request, status: int = 200, message: str | None = None) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_csrf()
    response = page(request, "login.html", status=status, login_csrf=token, message=message)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_https(request),
                        path="/login")
    return response


@router.get("/login")
def login_form(request: Request):
    if viewer(request) is not None:
        return RedirectResponse("/", status_code=303)
    return _login_form(request)


@router.post("/login")
async def login(request: Request):
    t = i18n.Tr(lang_of(request))
    client = request.client.host if request.client else "unknown"
    allowed, wait = console_state(request).limiter.allow(client)
    if not allowed:
        response = _login_form(request, 429, t("rate_limited", s=wait))
        response.headers["Retry-After"] = str(wait)
        return response
    form = await request.form()
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_form(request, 403, t("bad_csrf"))
    token = str(form.get("token") or "").strip()
    state = get_state(request)
    info = state.token_table.lookup(state.cursor, token) if token else None
    if info is None:
        return _login_form(request, 401, t("bad_token"))
    cs = console_state(request)
    session_id, _ = cs.sessions.create(token, info.token_id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=is_https(request),
                        path="/", max_age=int(state.settings.session_lifetime_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request):
    who = viewer(request)
    if who is not None:
        form = await request.form()
        if not check_csrf(who, form.get("csrf")):
            return error_page(request, 403, i18n.Tr(lang_of(request))("bad_csrf"), who)
        console_state(request).sessions.drop(who.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/docs")
def swagger_docs(request: Request) -> HTMLResponse:
    html = TEMPLATES.get_template("docs.html").render(title=request.app.title, openapi_url=request.app.openapi_url)
    return HTMLResponse(html)
