"""Sign-in, cookies, CSRF, headers, rate limit and expiry of the web console, in process (fast)."""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console.session import LoginLimiter, SessionStore
from api.settings import Settings


@pytest.fixture(scope="module")
def app_client(console_store, tmp_path_factory):
    src, made = console_store
    db = tmp_path_factory.mktemp("security") / "s.duckdb"
    shutil.copy(src, db)
    with TestClient(create_app(Settings(db=db)),
                    raise_server_exceptions=False) as client:
        yield client, made


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _sign_in(client, token: str):
    client.cookies.clear()
    form = client.get("/login")
    return client.post("/login", data={"token": token, "csrf": _csrf(form.text)}, follow_redirects=False)


def test_sign_in_sets_an_httponly_strict_session_cookie_and_redirects_home(app_client):
    client, made = app_client
    r = _sign_in(client, made["owner"])
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = [c for c in r.headers.get_list("set-cookie") if c.startswith("settle_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # plain http here
    home = client.get("/")
    assert home.status_code == 200 and "BJ-SPEECH-ZH" in home.text


def test_every_page_has_csp_without_inline_script_and_frame_deny(app_client):
    client, made = app_client
    _sign_in(client, made["regulator"])
    for path in ("/", "/login", "/docs", "/sql", "/runs", "/tokens"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
            "script-src")[1].split(";")[0]
        assert r.headers["x-frame-options"] == "DENY"
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path  # no inline script
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text), path  # no other host


def test_forms_without_the_csrf_token_are_refused(app_client):
    client, made = app_client
    client.cookies.clear()
    client.get("/login")
    assert client.post("/login", data={"token": made["owner"], "csrf": "forged"}).status_code == 403
    _sign_in(client, made["regulator"])
    assert client.post("/tokens", data={"role": "regulator", "csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in


def test_sign_out_ends_the_session_on_the_server(app_client):
    client, made = app_client
    _sign_in(client, made["owner"])
    sid = client.cookies.get("settle_session")
    page = client.get("/")
    assert client.post("/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False).status_code == 303
    client.cookies.set("settle_session", sid)  # replaying the old cookie does not help
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_unknown_token_is_refused_and_attempts_are_rate_limited(app_client):
    client, made = app_client
    client.app.state.console.limiter = LoginLimiter(4, 60)  # a fresh window: earlier tests signed in too
    statuses = []
    for _ in range(6):
        client.cookies.clear()
        form = client.get("/login")
        statuses.append(client.post("/login", data={"token": "stl_wrong", "csrf": _csrf(form.text)}).status_code)
    assert statuses[0] == 401 and 429 in statuses
    assert _sign_in(client, made["owner"]).status_code == 429  # even a good token waits out the window


def test_sessions_expire_after_their_lifetime_and_idle_time():
    now = [0.0]
    store = SessionStore(lifetime_s=100, idle_s=30, clock=lambda: now[0])
    sid, _ = store.create("stl_x", "tok_1")
    now[0] = 25
    assert store.get(sid) is not None
    now[0] = 60  # idle 35 s
    assert store.get(sid) is None
    sid, _ = store.create("stl_x", "tok_1")
    for t in range(80, 200, 20):
        now[0] = t
        alive = store.get(sid) is not None
    assert not alive  # past the lifetime despite activity


def test_login_limiter_is_per_client_and_slides():
    now = [0.0]
    limiter = LoginLimiter(2, 10, clock=lambda: now[0])
    assert limiter.allow("a")[0] and limiter.allow("a")[0] and not limiter.allow("a")[0]
    assert limiter.allow("b")[0]
    now[0] = 11
    assert limiter.allow("a")[0]
