"""Helpers of the lifecycle tests: a migrated in-memory store and runs appended straight to the ledger."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import duckdb
import polars as pl

from ledgers import ledger
from settlement.core import store

START = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
MONDAY = dt.date(2026, 11, 30)
OWNER, OWNER2, PLATFORM = "91330100MA27XXXXX1", "91330100MA27YYYYY2", "91330100MA27ZZZZZ3"


def new_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"threads": 1})  # small tables: one thread is faster than many on shared cores
    store.migrate(con)
    return con


def propose(con, year: int, targets: dict[tuple, str], *, by: str = "cli:alice") -> ledger.RunResult:
    """One run of ``year`` handing ``{(clause, beneficiary, dataset): amount}`` to the ledger."""
    frame = pl.DataFrame(
        [(c, b, d, D(a)) for (c, b, d), a in targets.items()],
        schema={"clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String, "amount": pl.Decimal(18, 2)},
        orient="row",
    )
    fp = f"fp-{con.execute('SELECT count(*) FROM settlement_runs').fetchall()[0][0]}"
    return ledger.append_run(con, year=year, targets=frame, params_hash="p", inputs_fingerprint=fp,
                             engine_version="test", started_at=START, started_by=by)


def account(con, year: int, beneficiary: str) -> dict:
    rel = con.sql("SELECT * FROM beneficiary_accounts WHERE year = ? AND beneficiary_id = ?", params=[year, beneficiary])
    rows = rel.fetchall()
    return dict(zip(rel.columns, rows[0])) if rows else {}
