"""The owner page's data cache (issue 12 benchmark): a cache hit runs no query, and every way the store can
change through the server (upload, run, retraction, approval, registry load, a write route that fails after
committing) shows on the very next render. In process, on the settled sample store."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console import owner
from api.console import web
from api.console.web import ViewCache, WriteCounter, WriteEpoch
from api.settings import Settings
from tests.console.conftest import OPERATOR, ROOT

SPEECH = "中文语音语料 Mandarin speech corpus"
# Two new 2025 sales of BJ-SPEECH-ZH (the owner's) to buyers B01, B02 in June: 3,000.00 of revenue.
LATE_SALES = (
    "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n"
    f"CACHE-1,{OPERATOR},BJ-SPEECH-ZH,91330102576445635L,91330105399328242L,2025-06-02T10:00:00,1000.00\n"
    f"CACHE-2,{OPERATOR},BJ-SPEECH-ZH,91330102576445635L,91330106882038376K,2025-06-03T10:00:00,2000.00\n"
)


@pytest.fixture
def env(console_store, tmp_path, monkeypatch):
    """A fresh copy of the sample store served in process (as `settle serve`, with the local admin
    credential for registry loads), the owner signed in, and a count of owner-page computations."""
    src, made = console_store
    db = tmp_path / "cache.duckdb"
    shutil.copy(src, db)
    monkeypatch.setenv("SETTLE_ENDPOINT_URL", "http://127.0.0.1:1")
    computed = []
    real = owner.owner_view
    monkeypatch.setattr(owner, "owner_view", lambda *a, **k: computed.append(a[2]) or real(*a, **k))
    with TestClient(create_app(Settings(db=db)), raise_server_exceptions=False) as client:
        admin = json.loads(db.with_name(db.name + ".server.json").read_text())["token"]
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        assert client.post("/login", data={"token": made["owner"], "csrf": csrf}).status_code == 200
        yield client, made, admin, computed


def bearer(token: str, acting: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **({"X-Settle-Acting-As": acting} if acting else {})}


def figures(client: TestClient) -> dict:
    html = client.get("/?lang=en").text
    chart = json.loads(re.search(r"data-chart='([^']+)'", html).group(1).replace("&#34;", '"'))
    provisional = re.search(r'id="provisional">([^<]+)<', html)
    return {"total": re.search(r"Payable this year 2025: <strong>([^<]+)</strong>", html).group(1),
            "provisional": provisional.group(1) if provisional else None,
            "ledger": re.findall(r'Ledger balance</th><td class="num">([^<]+)<', html),
            "names": re.findall(r'<h3><a href="[^"]+">([^<]*)</a>', html),
            "chart": chart["series"]}


def june(f: dict, name: str = SPEECH) -> str:
    return f["chart"][f"{name} BJ-SPEECH-ZH"][5]


def test_a_hit_computes_nothing_and_every_change_through_the_server_shows_on_the_next_render(env):
    client, made, admin, computed = env
    before = figures(client)
    assert (before["total"], before["provisional"], before["ledger"], june(before)) == (
        "¥43,334.56", None, ["¥43,334.56", "¥0.00"], "20000.00")
    assert figures(client) == before and len(computed) == 1  # the second render is a hit

    up = client.post("/v1/uploads", files={"file": ("late.csv", LATE_SALES.encode(), "text/csv")},
                     headers=bearer(made["operator"]))
    assert up.status_code == 201
    after_upload = figures(client)
    assert after_upload["provisional"] == "Provisional: 2 trades since run 3" and june(after_upload) == "23000.00"
    assert after_upload["total"] == "¥43,334.56"  # no run yet: the amounts are the last run's

    assert client.post("/v1/settlements/2025", headers=bearer(made["regulator"])).status_code == 200
    after_run = figures(client)  # 10 % of the 3,000.00 more
    assert (after_run["total"], after_run["provisional"], after_run["ledger"]) == (
        "¥43,634.56", None, ["¥43,634.56", "¥0.00"])

    retracted = client.post(f"/v1/uploads/{up.json()['upload_id']}/retract", headers=bearer(made["operator"]))
    assert retracted.status_code == 200
    assert june(figures(client)) == "20000.00"  # the chart counts live uploads only

    n = len(computed)
    approved = client.post("/v1/runs/3/approve", json={"acknowledge_flags": True},
                           headers=bearer(admin, "cli:second-pair-of-eyes"))
    assert approved.status_code == 200
    figures(client)
    assert len(computed) == n + 1  # an approval is a lifecycle record: recomputed, not served from before

    text = (ROOT / "sample_trades" / "datasets.csv").read_text(encoding="utf-8").replace(
        SPEECH, "普通话语音库 Putonghua speech")
    loaded = client.post("/v1/registries/datasets", files={"file": ("datasets.csv", text.encode(), "text/csv")},
                         headers=bearer(admin, "cli:loader"))
    assert loaded.status_code == 200 and loaded.json()["status"] == "loaded"
    after_load = figures(client)
    assert after_load["names"][0] == "普通话语音库 Putonghua speech"
    assert june(after_load, "普通话语音库 Putonghua speech") == "20000.00"


def test_signing_in_and_regulator_sql_do_not_count_as_writes_but_a_failed_write_does(env):
    client, made, _, computed = env
    session_csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/logout", data={"csrf": session_csrf}).status_code == 200  # redirected to /login
    login_csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"token": made["owner"], "csrf": login_csrf}).status_code == 200
    assert client.post("/v1/sql", json={"sql": "SELECT 1"}, headers=bearer(made["regulator"])).status_code == 200
    figures(client)
    assert len(computed) == 1  # a new session of the same owner: the same data, a hit
    refused = client.post("/v1/runs/999/approve", json={}, headers=bearer(made["regulator"]))
    assert refused.status_code == 404
    figures(client)
    assert len(computed) == 2  # any other non-GET request, whatever its answer, moves the version


def test_write_epoch_counts_a_request_that_fails_after_committing():
    counter = WriteCounter()

    async def committed_then_failed(scope, receive, send):
        raise RuntimeError("ledger conflict after the first year's commit")

    async def call(method: str, path: str) -> None:
        with pytest.raises(RuntimeError):
            await WriteEpoch(committed_then_failed, counter)({"type": "http", "method": method, "path": path},
                                                            None, None)

    asyncio.run(call("POST", "/v1/settlements"))
    asyncio.run(call("GET", "/"))
    asyncio.run(call("POST", "/login"))
    assert counter.value == 1


def test_view_cache_computes_once_for_concurrent_sessions_and_retries_after_a_failure():
    calls: list[int] = []
    gate = threading.Event()

    def slow() -> str:
        calls.append(1)
        gate.wait(5)
        return "view"

    def failing() -> str:
        calls.append(2)
        raise ValueError("store gone")

    async def main() -> tuple[list, list]:
        cache = ViewCache(8)
        waiting = [asyncio.ensure_future(cache.get(("k", 1), slow)) for _ in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        got = await asyncio.gather(*waiting)
        errors = await asyncio.gather(*(cache.get(("k", 2), failing) for _ in range(3)), return_exceptions=True)
        again = await asyncio.gather(cache.get(("k", 2), lambda: "second try"), cache.get(("k", 1), failing))
        return got, [type(e).__name__ for e in errors] + list(again)

    got, rest = asyncio.run(main())
    assert got == ["view"] * 20 and rest == ["ValueError"] * 3 + ["second try", "view"]
    assert calls == [1, 2]  # 20 sessions, one computation; 3 sessions on a failure, one attempt


def test_a_cached_body_carries_each_sessions_own_csrf_token_and_its_language(env):
    client, made, _, computed = env
    other = TestClient(client.app)  # a second session of the same owner (same app, own cookies)
    csrf = re.search(r'name="csrf" value="([^"]+)"', other.get("/login").text).group(1)
    assert other.post("/login", data={"token": made["owner"], "csrf": csrf}).status_code == 200
    mine, theirs = client.get("/?lang=en").text, other.get("/?lang=en").text
    token = re.compile(r'name="csrf" value="([^"]+)"')
    assert token.findall(mine) != token.findall(theirs) and len(set(token.findall(mine))) == 1
    assert token.sub("", mine) == token.sub("", theirs) and web.CSRF_SLOT not in mine + theirs
    assert "Payable this year 2025" in mine and "本年应付合计 2025" in client.get("/?lang=zh-CN").text
    assert len(computed) == 1  # one data view behind both sessions and both languages
    assert other.post("/logout", data={"csrf": token.findall(theirs)[0]}).status_code == 200
    assert client.post("/logout", data={"csrf": token.findall(theirs)[0]}).status_code == 403  # not this session's
