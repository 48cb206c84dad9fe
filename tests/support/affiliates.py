"""Helpers for the affiliate tests: a store with an affiliation set written straight into the tables."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb

from settlement.core import store

WINDOW = (dt.date(2023, 5, 8), dt.date(2026, 5, 8))  # P2
THRESHOLD = Decimal("0.25")  # P6


def new_store(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    path = tmp_path / "aff.duckdb"
    store.init(path)
    return store.open_store(path)


def load_set(con: duckdb.DuckDBPyConnection, records: list[tuple]) -> int:
    """Load a new affiliation set. Each record: (record_id, a, b, relation, share|None, from|None,
    to|None, exempt). Row numbers are record order + 2 (header = row 1). Returns the load id."""
    load_id = (store.scalar(con, "SELECT coalesce(max(load_id), 0) FROM registry_loads") or 0) + 1
    con.execute(
        "INSERT INTO registry_loads VALUES (?, 'affiliations', 'affiliations.csv', 'test', ?, 'test', now())",
        [load_id, len(records)],
    )
    rows = [
        (load_id, rid, i + 2, a, b, rel, None if share is None else Decimal(share), vf, vt, exempt)
        for i, (rid, a, b, rel, share, vf, vt, exempt) in enumerate(records)
    ]
    if rows:
        con.executemany("INSERT INTO affiliation_versions VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    return load_id


def year_groups(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, str]:
    return dict(con.execute("SELECT party_id, group_id FROM affiliate_groups WHERE year = ?", [year]).fetchall())


def day_group(con: duckdb.DuckDBPyConnection, party: str, on: dt.date) -> str:
    rows = con.execute(
        "SELECT group_id FROM affiliate_day_groups WHERE party_id = ? AND ? BETWEEN day_from AND day_to",
        [party, on],
    ).fetchall()
    assert len(rows) <= 1, f"overlapping day rows for {party} on {on}"
    return rows[0][0] if rows else party


def related_on(con: duckdb.DuckDBPyConnection, a: str, b: str, on: dt.date) -> bool:
    return day_group(con, a, on) == day_group(con, b, on)
