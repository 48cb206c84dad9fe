"""Affiliate resolution (P4-P8): who is related to whom, on which day, and why.

Owns: the derived tables ``affiliate_groups`` (year graph, P8 second bullet) and ``affiliate_day_groups``
(trade-date graph, P8 first bullet), built per year by ``build_year_groups`` from the current affiliation
set (view ``affiliations``), and the explanations of a verdict as a path of records
(``explain_relation``, ``explain_pairs``). The set-based engine lives in ``settlement.affiliates.engine``;
this module reads the store, encodes parties as integers, writes the caches and explains with a small
per-component graph (networkx for the "nearest records" search). Load-time validation of affiliation
files is not here (``settlement.inputs.registry``). Must not import the CLI, the API, the ledger or clause code.

on=None in explanations: every non-exempt record counts, whatever its dates (the union of all days: the
most conservative reading, useful to ask "were these ever related?").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import numpy as np
import polars as pl

from settlement.core import store
from settlement.core.sql import registered, transaction
from settlement.affiliates.engine import (
    components,
    day_label_intervals,
    p7_edges,
    share_units,
)

EPOCH = dt.date(1970, 1, 1)
RELATIONS_OUTRIGHT = ("control", "management", "family", "declared")  # P5: qualify without a share


def _day(d: dt.date) -> int:
    return (d - EPOCH).days


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    return con.sql(sql, params=params or []).pl()


def current_affiliation_load(con: duckdb.DuckDBPyConnection) -> int | None:
    """load_id of the current affiliation set (the view ``affiliations``), None before any load."""
    return store.scalar(con, "SELECT max(load_id) FROM registry_loads WHERE kind = 'affiliations'")


# --------------------------------------------------------------------------------------------------
# Year and day groups (P7, P8)


def _active_records(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> pl.DataFrame:
    """Non-exempt records active on at least one day of [first, last] (P5), bounds clipped to it."""
    return _frame(
        con,
        """
        SELECT a_id, b_id, relation = 'equity' AS is_equity,
               CAST(coalesce(share, 0) * 10000000000 AS BIGINT) AS share,
               greatest(coalesce(valid_from, $first), $first) AS vf,
               least(coalesce(valid_to, $last), $last) AS vt
        FROM affiliations
        WHERE NOT exempt
          AND coalesce(valid_from, $first) <= $last AND coalesce(valid_to, $last) >= $first
        """,
        {"first": first, "last": last},
    )


@dataclass(frozen=True)
class _Encoded:
    parties: pl.Series  # sorted party ids; node id = position (so the smallest node = smallest party_id)
    eq: pl.DataFrame  # a, b, share, vf, vt (day numbers)
    ne: pl.DataFrame  # a, b, vf, vt


def _encode(records: pl.DataFrame) -> _Encoded:
    parties = pl.concat([records["a_id"], records["b_id"]]).unique().sort()
    ids = pl.DataFrame({"party": parties, "node": pl.arange(0, parties.len(), eager=True, dtype=pl.Int64)})
    rec = (
        records.join(ids, left_on="a_id", right_on="party")
        .rename({"node": "a"})
        .join(ids, left_on="b_id", right_on="party")
        .rename({"node": "b"})
        .with_columns(pl.col("vf").cast(pl.Int32), pl.col("vt").cast(pl.Int32))
    )
    eq = rec.filter("is_equity").select("a", "b", "share", "vf", "vt")
    ne = rec.filter(~pl.col("is_equity")).select("a", "b", "vf", "vt")
    return _Encoded(parties, eq, ne)


def build_year_groups(
    con: duckdb.DuckDBPyConnection,
    year: int,
    *,
    equity_threshold: Decimal,
    window_start: dt.date,
    window_end: dt.date,
) -> None:
    """Materialise ``affiliate_groups`` and ``affiliate_day_groups`` for ``year`` (P7, P8).

    The year's in-scope days are [max(Jan 1, window_start), min(Dec 31, window_end)] (P2, P3).
    - affiliate_groups: components of the union of the day graphs' edges over the in-scope days (P8 second
      bullet, amended 2026-11-30); group_id = smallest party_id of the component.
    - affiliate_day_groups: each party's component on every in-scope day (P8 first bullet) as
      non-overlapping intervals covering the in-scope days. Edges that exist all year are resolved
      once; only edges that exist on part of the year are revisited per change-point interval, over
      the static components they touch (``affiliates_core.day_label_intervals``).
    Replaces earlier rows of the year; idempotent; set-based (no loop over parties or records).
    """
    threshold = share_units(equity_threshold)
    first = max(dt.date(year, 1, 1), window_start)
    last = min(dt.date(year, 12, 31), window_end)
    load_id = current_affiliation_load(con)
    groups = _empty_year_frame()
    days = _empty_day_frame()
    if first <= last and load_id is not None:
        records = _active_records(con, first, last)
        if records.height:
            groups, days = _resolve_year(records, year, first, last, threshold, load_id)
    with transaction(con, join=True):  # a run may hold its own transaction around this stage
        con.execute("DELETE FROM affiliate_groups WHERE year = ?", [year])
        con.execute("DELETE FROM affiliate_day_groups WHERE year = ?", [year])
        with registered(con, groups, "groups") as new_groups, registered(con, days, "day_groups") as new_days:
            con.execute(
                "INSERT INTO affiliate_groups (year, party_id, group_id, affiliation_load_id) "
                f"SELECT year, party_id, group_id, affiliation_load_id FROM {new_groups}"
            )
            con.execute(
                "INSERT INTO affiliate_day_groups (year, party_id, day_from, day_to, group_id, affiliation_load_id) "
                f"SELECT year, party_id, day_from, day_to, group_id, affiliation_load_id FROM {new_days}"
            )


def _empty_year_frame() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"year": pl.Int32, "party_id": pl.String, "group_id": pl.String, "affiliation_load_id": pl.Int64}
    )


def _empty_day_frame() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "year": pl.Int32,
            "party_id": pl.String,
            "day_from": pl.Date,
            "day_to": pl.Date,
            "group_id": pl.String,
            "affiliation_load_id": pl.Int64,
        }
    )


def _resolve_year(
    records: pl.DataFrame, year: int, first: dt.date, last: dt.date, threshold: int, load_id: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    enc = _encode(records)
    s, e = _day(first), _day(last)
    n = enc.parties.len()
    # Day graphs (P8): records only on their own days; every edge carries the days it exists on.
    day_edges = p7_edges(enc.eq, enc.ne, s, e, threshold)
    # Year graph (P8, amended 2026-11-30): the union of the day graphs' edges. Holdings are summed per
    # day, never across days, so two 20% records for January-June and July-December make no edge.
    year_label = components(n, day_edges["u"].to_numpy(), day_edges["v"].to_numpy())
    parties = enc.parties
    groups = pl.DataFrame(
        {
            "year": pl.Series([year] * n, dtype=pl.Int32),
            "party_id": parties,
            "group_id": parties.gather(year_label),
            "affiliation_load_id": pl.Series([load_id] * n, dtype=pl.Int64),
        }
    )
    static_label, changes = day_label_intervals(n, day_edges, s, e)
    nodes = pl.DataFrame({"node": np.arange(n, dtype=np.int64), "k": static_label})
    changing = nodes.join(changes, on="k")
    steady = nodes.join(changes.select("k").unique(), on="k", how="anti").select(
        "node", pl.lit(s, pl.Int32).alias("s"), pl.lit(e, pl.Int32).alias("e"), pl.col("k").alias("label")
    )
    rows = pl.concat([steady, changing.select("node", "s", "e", "label")])
    days = rows.select(
        pl.lit(year, pl.Int32).alias("year"),
        parties.gather(rows["node"]).alias("party_id"),
        pl.col("s").cast(pl.Date).alias("day_from"),
        pl.col("e").cast(pl.Date).alias("day_to"),
        parties.gather(rows["label"]).alias("group_id"),
        pl.lit(load_id, pl.Int64).alias("affiliation_load_id"),
    )
    return groups, days
