"""callers.sql (P10.3) on hand-made sale status rows: buyers summed per (dataset, owner), their year-graph group
looked up, every group counted because each eligible sale has net > 0 (P10.2), and the run stopped when that
premise breaks (clause6.stage_callers)."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from settlement.backends.duckdb_backend import DuckDBBackend
from settlement.clauses.clause6 import stage_callers
from settlement.clauses.year_params import year_params
from settlement.core.params import load_params

YP = year_params(load_params(), 2024)
NAMES = {"status": "st", "callers": "cl"}


def status_con(rows: list[tuple[str, str, str, str, str | None]]) -> duckdb.DuckDBPyConnection:
    """(dataset, owner, buyer, net, c6_reason) rows as the run's status; buyers B1 and B2 are one year group."""
    con = duckdb.connect()
    con.execute("CREATE TABLE affiliate_groups (year INTEGER, party_id VARCHAR, group_id VARCHAR)")
    con.execute("INSERT INTO affiliate_groups VALUES (2024, 'B1', 'B1'), (2024, 'B2', 'B1')")
    con.execute("CREATE TABLE st (dataset_id VARCHAR, owner_id VARCHAR, buyer_id VARCHAR, net DECIMAL(18,2), "
                "c6_reason VARCHAR)")
    con.executemany("INSERT INTO st VALUES (?, ?, ?, ?, ?)", rows)
    return con


def test_buyers_are_summed_grouped_and_every_group_counts() -> None:
    con = status_con([
        ("D", "O", "B1", "10.00", None), ("D", "O", "B1", "5.50", None),   # B1: 2 sales, 15.50
        ("D", "O", "B2", "0.01", None),                                    # B2: B1's group
        ("D", "O", "B3", "7.00", None),                                    # B3: its own group
        ("D", "O", "B3", "-1.00", "FULLY_REFUNDED"),                       # not eligible: not summed
        ("D", "O", "B4", "9.00", "RELATED_PARTY"),                         # not eligible: no row
    ])
    stage_callers(DuckDBBackend(con), YP, NAMES)
    assert con.sql("SELECT * FROM cl ORDER BY buyer_id").fetchall() == [
        (2024, "D", "O", "B1", "B1", 2, Decimal("15.50"), True),
        (2024, "D", "O", "B1", "B2", 1, Decimal("0.01"), True),
        (2024, "D", "O", "own:B3", "B3", 1, Decimal("7.00"), True),
    ]


def test_an_eligible_sale_of_net_zero_stops_the_run() -> None:
    # sales.sql gives net <= 0 the reason FULLY_REFUNDED (P10.2); a status without it is a bug, not data
    con = status_con([("D", "O", "B1", "10.00", None), ("D", "O", "B3", "0.00", None)])
    with pytest.raises(AssertionError, match=r"^1 caller rows of 2024 sum eligible sales to <= 0 \(P10.2 broken\)$"):
        stage_callers(DuckDBBackend(con), YP, NAMES)
