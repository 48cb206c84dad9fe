"""A beneficiary's account per year (views ``key_accounts`` / ``beneficiary_accounts``, migration 0009):
entitled = proposed + approved; approved = disbursed + outstanding; noticed and paid along the way."""

from __future__ import annotations

import duckdb

ACCOUNT_COLUMNS = ("entitled", "proposed", "approved", "noticed", "disbursed", "paid", "outstanding")


def key_accounts(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str | None = None) -> list[dict]:
    rel = con.sql(
        "SELECT * FROM key_accounts WHERE year = $year AND ($b IS NULL OR beneficiary_id = $b) "
        "ORDER BY clause, beneficiary_id, dataset_id", params=dict(year=year, b=beneficiary_id))
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def beneficiary_accounts(con: duckdb.DuckDBPyConnection, year: int | None = None) -> list[dict]:
    rel = con.sql("SELECT * FROM beneficiary_accounts WHERE $year IS NULL OR year = $year "
                  "ORDER BY year, beneficiary_id", params=dict(year=year))
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]
