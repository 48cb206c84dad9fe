"""The ledger append's delta table (issue 9 item 2): a TEMP table named per run (``temp_tables``), gone after
the run whether it appended or failed half-way."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

from ledgers import append
from ledgers.ledger import append_run
from settlement.core import store

START = dt.datetime(2025, 1, 15, 8, 0, tzinfo=dt.timezone.utc)
TARGETS = pl.DataFrame([(6, "91330100MA27XXXXX1", "DS1", D("10.00"))],
                       schema={"clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String,
                               "amount": pl.Decimal(18, 2)}, orient="row")


@pytest.fixture()
def con(tmp_path: Path):
    path = tmp_path / "ledger.duckdb"
    store.init(path)
    c = store.open_store(path)
    yield c
    c.close()


def temp_tables_of(con) -> list[str]:
    return [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary ORDER BY 1").fetchall()]


def run(con):
    return append_run(con, year=2024, targets=TARGETS, params_hash="p", inputs_fingerprint="f", engine_version="t",
                      started_at=START)


def test_the_delta_table_is_named_per_run_and_dropped(con, monkeypatch) -> None:
    seen: list[list[str]] = []
    chain = append._chain_and_insert

    def watching(c, delta, **kwargs):
        seen.append(temp_tables_of(c))
        return chain(c, delta, **kwargs)
    monkeypatch.setattr(append, "_chain_and_insert", watching)
    assert [e.amount for e in run(con).appended] == [D("10.00")]
    assert [e.amount for e in run(con).appended] == []  # unchanged targets: nothing to append
    assert [len(names) for names in seen] == [1, 1]
    assert all(re.fullmatch(r"_[0-9a-f]{8}_ledger_delta", names[0]) for names in seen)
    assert seen[0] != seen[1]
    assert temp_tables_of(con) == []


def test_a_run_failing_half_way_leaves_no_delta_table_and_appends_nothing(con, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("chain broke")
    monkeypatch.setattr(append, "_chain_and_insert", broken)
    with pytest.raises(RuntimeError, match="^chain broke$"):
        run(con)
    assert temp_tables_of(con) == []
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM settlement_runs").fetchall() == [(0,)]
