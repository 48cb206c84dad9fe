"""Identical to the cent on DuckDB and Spark (issue 14) on golden scenarios and hypothesis-generated stores:
compute_targets gives the same targets (the payouts text), dataset and platform explanations and P12
exclusions with either backend on the same store. Small universes so that thresholds, related parties,
refunds across years, retractions, dated owners, prior awards and caps are all hit.
SETTLE_BACKEND_EXAMPLES (default 3) sets the number of generated stores."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.backends.duckdb_backend import DuckDBBackend
from settlement.backends.spark_backend import SparkBackend
from settlement.clauses.targets import staged_targets
from tests.support.scenario import PARAMS
from tests.support.world import (load_affiliations, load_datasets, load_platforms, load_prior_awards, new_store,
                                 refund, retract, sale, upload)

YEARS = (2024, 2025)


def outcome(con, backend, year: int) -> str:
    """The targets as payouts text, the explanation rows and the exclusions of ``year`` on ``backend``."""
    with staged_targets(con, year, params=PARAMS, backend=backend) as t:
        excluded = pl.from_arrow(backend.fetch(t.exclusions_sql)).sort(pl.all())
        lines = [f"{c},{b},{d},{a}" for c, b, d, a in t.targets.iter_rows()]
        lines += [repr(r) for r in t.datasets.iter_rows()] + [repr(r) for r in t.platforms.iter_rows()]
        lines += [repr(r) for r in excluded.iter_rows()]
        return "\n".join(lines)


def assert_same(con, spark, lake: Path) -> None:
    remote = SparkBackend(spark, lake)
    for year in YEARS:
        assert outcome(con, DuckDBBackend(con), year) == outcome(con, remote, year), year


def test_golden_exchange_is_identical_on_both(spark, tmp_path):
    """Cap split over many datasets, two owners of one dataset (P10.1), a related buyer (P8), a late refund
    of a 2024 sale dated 2025 (P9), a retracted upload, prior awards (P10.6), an uncertified platform."""
    con = new_store(tmp_path)
    load_platforms(con, [("PLAT", date(2023, 1, 1), None), ("PF2", None, None)])
    load_datasets(con, [(f"D{i}", "OWN1", date(2023, 1, 1), None) for i in range(1, 6)]
                  + [("D6", "OWN1", date(2023, 1, 1), None, None), ("D6", "OWN2", date(2023, 1, 1), None, date(2024, 7, 1))])
    load_affiliations(con, [("B9", "OWN1", "equity", "0.30", None, None, False)])
    load_prior_awards(con, [("D2", 2024, "1000.00")])
    buyers = ["B1", "B2", "B3", "B4", "B5", "B9"]
    trades = [sale(f"S{d}{b}", b, "2500000.05", "2024-03-01T10:00:00", dataset=f"D{d}")
              for d in range(1, 6) for b in buyers]
    trades += [sale(f"T{b}{m}", b, "1000.05", f"2024-{m}-01T10:00:00", dataset="D6", seller="OWN2")
               for b in buyers for m in ("03", "08")]
    trades += [sale("X1", "B1", "10.00", "2024-04-04T10:00:00", platform="PF2")]
    upload(con, trades)
    upload(con, [refund("R1", "S1B1", "0.05", "2025-01-10T10:00:00")])
    gone = upload(con, [sale("G1", "B2", "99.99", "2024-05-05T10:00:00")])
    retract(con, gone)
    assert_same(con, spark, tmp_path / "lake")
    con.close()


PLATFORMS, OWNERS, BUYERS, DATASETS = ["PF1", "PF2"], ["OW1", "OW2"], ["B1", "B2", "B3", "B4", "B5"], ["D1", "D2"]
TIMES = ["2023-05-07T23:30:00", "2024-03-01T10:00:00", "2024-07-01T09:00:00", "2024-12-31T16:30:00Z",
         "2025-02-01T08:00:00", "2025-06-30T10:00:00"]
AMOUNTS = ["0.05", "100.00", "250.55", "4000000.00", "10000005.05"]
sale_st = st.tuples(st.sampled_from(PLATFORMS), st.sampled_from(DATASETS), st.sampled_from(BUYERS),
                    st.sampled_from(OWNERS), st.sampled_from(TIMES), st.sampled_from(AMOUNTS))
record_st = st.tuples(st.sampled_from(PLATFORMS + OWNERS + BUYERS), st.sampled_from(OWNERS + BUYERS),
                      st.sampled_from(["equity", "control"]), st.sampled_from([date(2024, 7, 1), None]))


@settings(max_examples=int(os.environ.get("SETTLE_BACKEND_EXAMPLES", "3")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sales=st.lists(sale_st, min_size=4, max_size=25), refunds=st.lists(st.tuples(st.integers(0, 24),
       st.booleans(), st.sampled_from(TIMES)), max_size=4), records=st.lists(record_st, max_size=3),
       retract_first=st.booleans(), owner_change=st.booleans(), prior=st.sampled_from([None, "10.00", "40000.00"]))
def test_generated_stores_are_identical_on_both(spark, sales, refunds, records, retract_first, owner_change, prior):
    folder = Path(tempfile.mkdtemp(prefix="settle-conf-"))
    con = new_store(folder)
    try:
        load_platforms(con, [("PF1", date(2023, 1, 1), None), ("PF2", date(2024, 7, 1), None)])
        rows = [("D1", "OW1", date(2023, 1, 1), None), ("D2", "OW2", date(2023, 1, 1), date(2025, 3, 31))]
        if owner_change:
            rows = [(*rows[0], None), ("D1", "OW2", date(2023, 1, 1), None, date(2024, 10, 15)), (*rows[1], None)]
        load_datasets(con, rows)
        load_affiliations(con, [(a, b, rel, "0.30" if rel == "equity" else None, vf, None, False)
                                for a, b, rel, vf in records if a != b])
        if prior:
            load_prior_awards(con, [("D1", 2024, prior)])
        trades = [dict(trade_id=f"T{i}", platform=p, dataset=d, buyer=b, seller=o, at=at, amount=a)
                  for i, (p, d, b, o, at, a) in enumerate(sales) if b != o]
        if not trades:
            return
        first = upload(con, trades[: len(trades) // 2 + 1])
        if trades[len(trades) // 2 + 1:]:
            upload(con, trades[len(trades) // 2 + 1:])
        for n, (i, full, at) in enumerate(refunds):
            t = trades[i % len(trades)]
            upload(con, [dict(t, trade_id=f"R{n}", at=at, kind="refund", ref=t["trade_id"],
                              amount=t["amount"] if full else "0.05")])
        if retract_first:
            retract(con, first)
        assert_same(con, spark, folder / "lake")
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)
