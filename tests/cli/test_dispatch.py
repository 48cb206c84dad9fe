"""The one door of the command line (``settlement.cli.dispatch``): the local side on the opened store when no
server owns it, the remote side (and no store opened) when one does; ``api`` sends one request and rebuilds
the core's result; ``store_only`` refuses with exit 1."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer

from ledgers.ledger import VerifyResult
from settlement.cli import dispatch as door
from settlement.core import store


class FakeServer:
    """Records the requests a remote side makes; answers them with ``answer``."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.requests = answer, []

    def json(self, method: str, path: str, **request: Any) -> Any:
        self.requests.append((method, path, request))
        return self.answer


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    store.init(path)
    return path


def test_without_a_server_the_local_side_runs_on_the_opened_store_and_it_is_closed_after(db, monkeypatch):
    monkeypatch.setattr(door, "server_for", lambda _db: None)
    seen: list[duckdb.DuckDBPyConnection] = []

    def local(con: duckdb.DuckDBPyConnection) -> int:
        seen.append(con)
        return con.execute("SELECT count(*) FROM settlement_runs").fetchall()[0][0]

    assert door.dispatch(db, remote=lambda server: pytest.fail("no server: remote side called"), local=local) == 0
    with pytest.raises(duckdb.ConnectionException):  # closed once the command has its result
        seen[0].execute("SELECT 1")


def test_read_only_opens_the_store_read_only(db, monkeypatch):
    monkeypatch.setattr(door, "server_for", lambda _db: None)
    with pytest.raises(duckdb.InvalidInputException, match="read-only mode"):
        door.dispatch(db, remote=lambda server: None, read_only=True,
                      local=lambda con: con.execute("CREATE TABLE t (x INTEGER)"))
    door.dispatch(db, remote=lambda server: None, local=lambda con: con.execute("CREATE TABLE t (x INTEGER)"))
    assert door.dispatch(db, remote=lambda server: None, read_only=True,
                         local=lambda con: con.execute("SELECT count(*) FROM t").fetchall()) == [(0,)]


def test_the_store_is_closed_when_the_local_side_fails(db, monkeypatch):
    monkeypatch.setattr(door, "server_for", lambda _db: None)
    seen: list[duckdb.DuckDBPyConnection] = []

    def local(con: duckdb.DuckDBPyConnection) -> None:
        seen.append(con)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="^boom$"):
        door.dispatch(db, remote=lambda server: None, local=local)
    with pytest.raises(duckdb.ConnectionException):
        seen[0].execute("SELECT 1")


def test_with_a_server_only_the_remote_side_runs_and_no_store_is_opened(tmp_path, monkeypatch):
    server = FakeServer({"event": 7})
    monkeypatch.setattr(door, "server_for", lambda _db: server)
    missing = tmp_path / "not-there.duckdb"  # opening it would exit 1: it must not be opened
    got = door.dispatch(missing, remote=door.api("POST", "/v1/runs/3/reject", by="bob", json={"reason": "late"},
                                                 pick="event"),
                        local=lambda con: pytest.fail("a server owns the store: local side called"))
    assert got == 7
    assert server.requests == [("POST", "/v1/runs/3/reject", {"by": "bob", "json": {"reason": "late"}})]
    assert not missing.exists()


def test_api_rebuilds_the_cores_result_from_the_json():
    answer = {"ok": True, "entries_checked": 3, "first_bad_entry_id": None, "message": "ledger OK: 3 entries",
              "runs_checked": 1, "anchor": "3:1:0:abc"}
    server = FakeServer(answer)
    result = door.api("GET", "/v1/ledger/verify", shape=VerifyResult)(server)
    assert result == VerifyResult(ok=True, entries_checked=3, first_bad_entry_id=None,
                                  message="ledger OK: 3 entries", runs_checked=1)
    assert result.anchor == "3:1:0:abc"  # not part of VerifyResult's equality
    assert server.requests == [("GET", "/v1/ledger/verify", {})]


def test_api_without_a_shape_gives_the_json_as_it_is():
    server = FakeServer([{"run_id": 1, "amount": "45.00"}])
    assert door.api("GET", "/v1/runs", params={"year": 2024})(server) == [{"run_id": 1, "amount": "45.00"}]
    assert server.requests == [("GET", "/v1/runs", {"params": {"year": 2024}})]


def test_api_decodes_money_and_dates():
    server = FakeServer({"day": "2024-03-01", "amount": "12.50"})
    assert door.api("GET", "/x", shape=dt.date, pick="day")(server) == dt.date(2024, 3, 1)
    assert door.api("GET", "/x", shape=Decimal, pick="amount")(server) == Decimal("12.50")


def test_store_only_refuses_through_a_server_with_exit_1(capsys):
    refuse = door.store_only("keys are registered on the store file: stop `settle serve` first")
    with pytest.raises(typer.Exit) as exited:
        refuse(FakeServer(None))
    assert exited.value.exit_code == 1
    assert capsys.readouterr().err == "error: keys are registered on the store file: stop `settle serve` first\n"
