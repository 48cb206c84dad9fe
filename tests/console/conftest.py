"""Fixtures of the web-console tests: ONE real `settle serve` subprocess per module on a free loopback port,
over a small store (sample_trades loaded and settled by ``settlement.tools.demo.load_and_settle``, plus one
token per role and tenant), and ONE Debian chromium per module driven by Playwright.

Never skips: without /usr/bin/chromium (or Playwright) the tests fail and say how to install them
(`make test` installs chromium and fonts-noto-cjk with apt-get when they are missing). No browser is
downloaded: Playwright launches the system chromium by ``executable_path``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from settlement.access import tokens
from settlement.core import store
from settlement.core.params import load_params
from settlement.tools.demo import load_and_settle
from tests.support import live_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "docs" / "screenshots"

# Tenants of sample_trades (sample_trades/README.md)
OWNER = "91330102576445635L"  # BJ-SPEECH-ZH, BJ-VISION-OCR
OTHER_OWNER = "91330108128315247N"  # HZ-TRAFFIC-2023
OPERATOR = "913301108573022438"  # 西湖数据交易所
OTHER_OPERATOR = "91330105822722504M"  # 滨江数据集市


@dataclass
class Server:
    url: str
    db: Path
    tokens: dict[str, str]
    live: live_server.LiveServer


@pytest.fixture(scope="session")
def console_store(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The sample store, settled, with tokens; built once, copied for each module's server."""
    db = tmp_path_factory.mktemp("console") / "console.duckdb"
    store.init(db)
    con = store.open_store(db)
    try:
        load_and_settle(con, ROOT / "sample_trades", params=load_params(), by="test")
        made = {
            "owner": tokens.create_token(con, "owner", scope_id=OWNER, created_by="test").token,
            "other_owner": tokens.create_token(con, "owner", scope_id=OTHER_OWNER, created_by="test").token,
            "operator": tokens.create_token(con, "operator", scope_id=OPERATOR, created_by="test").token,
            "other_operator": tokens.create_token(con, "operator", scope_id=OTHER_OPERATOR, created_by="test").token,
            "regulator": tokens.create_token(con, "regulator", created_by="test").token,
        }
    finally:
        con.close()
    return db, made


def start_server(console_store, tmp_path: Path, **env: str) -> Server:
    """A copy of the console store served; sign-ins are not rate limited (the tests sign in many times)."""
    src, made = console_store
    db = tmp_path / "served.duckdb"
    shutil.copy(src, db)
    live = live_server.start_server(db, seconds=120, **{"SETTLE_LOGIN_MAX_ATTEMPTS": "1000", **env})
    return Server(live.url, db, made, live)


@pytest.fixture(scope="module")
def server(console_store, tmp_path_factory):
    # a small row cap, so the SQL CSV download is streamed in several chunks
    s = start_server(console_store, tmp_path_factory.mktemp("served"), SETTLE_SQL_ROW_CAP="100")
    yield s
    s.live.stop()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs chromium and fonts-noto-cjk with "
                    "apt-get) or `apt-get install -y chromium fonts-noto-cjk` as root", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the python package playwright is missing: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
