"""run_exclusion_counts (migration 0013) are the same whichever backend ran the trade-level SQL: on Spark the
run computes the grouped counts there and hands the few rows back (settlement.run._store_exclusion_counts)."""

from __future__ import annotations

import pytest

from settlement.backends.duckdb_backend import DuckDBBackend
from settlement.backends.spark_backend import SparkBackend
from tests.backends.test_conformance import sample_store


@pytest.fixture(scope="module")
def pair(spark, tmp_path_factory):
    d, s = tmp_path_factory.mktemp("duck"), tmp_path_factory.mktemp("spark")
    duck = sample_store(d, lambda con, _f: DuckDBBackend(con))
    sparked = sample_store(s, lambda con, f: SparkBackend(spark, f / "lake"))
    yield duck, sparked
    duck.close()
    sparked.close()


def counts(con) -> list[tuple]:
    return con.execute("SELECT * FROM run_exclusion_counts ORDER BY ALL").fetchall()


def test_spark_runs_store_the_same_counts_as_duckdb_runs(pair):
    duck, sparked = pair
    assert counts(sparked) == counts(duck)
    assert sum(r[-1] for r in counts(duck)) == 37


def test_the_counts_equal_the_view_on_both(pair):
    for con in pair:
        assert con.execute(
            "SELECT run_id, year, clause, dataset_id, platform_id, reason, kind, sum(trades) FROM run_exclusion_counts "
            "GROUP BY ALL ORDER BY ALL").fetchall() == con.execute(
            "SELECT run_id, year, clause, dataset_id, platform_id, reason, kind, count(*) FROM exclusions "
            "GROUP BY ALL ORDER BY ALL").fetchall()
