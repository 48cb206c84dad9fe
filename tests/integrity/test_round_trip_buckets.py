"""ROUND_TRIP's bucketed self-join (settlement.integrity.trades.round_trip_sql) finds exactly the pairs the
definition names: a sale from group A to group B and a later one from B back to A within 30 days, the two
amounts differing by at most 10 % of the larger. Checked against a plain Python reading of that definition
on random sales whose amounts and days sit on the buckets' edges (ratio 0.9 exactly, 30 and 31 days, 0)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.integrity.flags import flag_context
from settlement.integrity.trades import round_trip_sql

PARTIES = ("A", "B", "C")
AMOUNTS = [Decimal(a) for a in ("0.00", "0.01", "9.00", "10.00", "89.99", "90.00", "90.01", "99.99", "100.00",
                                "100.01", "111.11", "111.12", "1000.00", "5000.00", "4500.00", "4499.99")]
sales = st.lists(st.tuples(st.sampled_from(PARTIES), st.sampled_from(PARTIES), st.sampled_from(AMOUNTS),
                           st.integers(min_value=-3, max_value=400)), max_size=25)


def _expected(rows) -> dict[tuple[str, str], int]:
    trips: dict[tuple[str, str], int] = {}
    for i, (s1, b1, a1, d1) in enumerate(rows):
        for j, (s2, b2, a2, d2) in enumerate(rows):
            later = (d2, f"T{j:03d}") > (d1, f"T{i:03d}")
            if (s1 != b1 and s2 == b1 and b2 == s1 and later and d1 <= d2 <= d1 + 30 and 0 <= d1 < 366
                    and abs(a1 - a2) <= Decimal("0.10") * max(a1, a2)):
                key = (min(s1, b1), max(s1, b1))
                trips[key] = trips.get(key, 0) + 1
    return trips


@settings(max_examples=150, deadline=None)
@given(rows=sales)
def test_the_bucketed_join_finds_exactly_the_round_trips_of_the_definition(rows):
    con = duckdb.connect()
    con.execute("CREATE TABLE trades (trade_id VARCHAR, platform_id VARCHAR, dataset_id VARCHAR, seller_id VARCHAR, "
                "buyer_id VARCHAR, local_date DATE, amount DECIMAL(18,2), kind VARCHAR, retracted BOOLEAN)")
    con.execute("CREATE TABLE affiliate_groups (year INTEGER, party_id VARCHAR, group_id VARCHAR)")
    day0 = date(2024, 1, 1)
    if rows:
        con.executemany("INSERT INTO trades VALUES (?, 'P', 'D', ?, ?, ?, ?, 'sale', false)",
                        [(f"T{i:03d}", s, b, day0 + timedelta(days=d), a) for i, (s, b, a, d) in enumerate(rows)])
    ctx = flag_context(2024, 1)
    found = {tuple(json.loads(f)["groups"]): json.loads(f)["round_trips"]
             for (f,) in con.execute(f"SELECT figures FROM ({round_trip_sql(ctx)})").fetchall()}
    assert found == {(f"own:{a}", f"own:{b}"): n for (a, b), n in _expected(rows).items()}
