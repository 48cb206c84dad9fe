"""Identical to the cent on DuckDB and Spark (issue 14): the sample store, golden scenarios and
hypothesis-generated stores settle to exactly the same payouts text, explanations and exclusions on both
backends; the lake's input checksums (count and Σ amount per year and platform) match the store's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgers.payouts import payouts, payouts_csv
from settlement.backends import lake
from settlement.backends.duckdb_backend import DuckDBBackend
from settlement.backends.spark_backend import SparkBackend
from settlement.core import store
from settlement.core.params import load_params
from settlement.inputs import ingest, registry
from settlement.run import settle_all
from settlement.tools import demo

SAMPLE = Path(__file__).resolve().parents[2] / "sample_trades"
PARAMS = load_params()
RESULT_TABLES = ("exclusions", "run_caller_buyers", "run_dataset_results", "run_platform_results")


def written(con) -> str:
    """Everything a settlement writes, as text: payouts (CONTRACT csv) and every run table."""
    out = [payouts_csv(payouts(con))]
    for table in RESULT_TABLES:
        out += [table, *(repr(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall())]
    return "\n".join(out)


def sample_store(folder: Path, backend_for):
    store.init(folder / "s.duckdb")
    con = store.open_store(folder / "s.duckdb")
    # load the sample files as settlement.tools.demo.load_and_settle does, then settle on the backend under test
    for kind, name in demo.REGISTRY_FILES:
        if (SAMPLE / name).exists():
            registry.load_registry(con, kind, SAMPLE / name, loaded_by="test")
    for path in demo.trade_files(SAMPLE):
        ingest.ingest_file(con, path, uploaded_by="test")
    settle_all(con, params=PARAMS, backend=backend_for(con, folder))
    return con


@pytest.fixture(scope="module")
def sample_pair(spark, tmp_path_factory):
    d, s = tmp_path_factory.mktemp("duck"), tmp_path_factory.mktemp("spark")
    duck = sample_store(d, lambda con, _f: DuckDBBackend(con))
    sparked = sample_store(s, lambda con, f: SparkBackend(spark, f / "lake"))
    yield duck, sparked, s / "lake"
    duck.close()
    sparked.close()


def test_the_sample_store_pays_the_same_text_on_both(sample_pair):
    duck, sparked, _lake = sample_pair
    assert payouts_csv(payouts(duck)) == payouts_csv(payouts(sparked))
    assert payouts(duck).height > 0


def test_the_sample_store_explains_and_excludes_the_same_on_both(sample_pair):
    duck, sparked, _lake = sample_pair
    assert written(duck) == written(sparked)


def test_lake_checksums_match_the_store(sample_pair, spark):
    _duck, sparked, folder = sample_pair
    want = lake.store_checksums(sparked)
    assert want and lake.manifest_checksums(folder) == want
    backend = SparkBackend(spark, folder)
    backend.read_lake()
    got = backend.fetch("SELECT sale_year, platform_id, count(*) AS n, CAST(sum(amount) AS DECIMAL(38,2)) AS a "
                        "FROM trades GROUP BY sale_year, platform_id ORDER BY sale_year, platform_id")
    assert [(y, p, n, str(a)) for y, p, n, a in (tuple(r.values()) for r in got.to_pylist())] == want


def test_export_lake_keeps_each_upload_immutable(sample_pair, tmp_path):
    _duck, sparked, _lake = sample_pair
    first = lake.export_lake(sparked, tmp_path / "lake")
    files = sorted((tmp_path / "lake" / "trades").rglob("*.parquet"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = lake.export_lake(sparked, tmp_path / "lake")
    assert first.uploads_written and not again.uploads_written
    assert set(again.uploads_kept) == set(first.uploads_written)
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "lake" / "trades").rglob("*.parquet"))] == stamps
    # a refund sits in its sale's year partition (P9): every partition folder names one upload
    assert all(f.parent.name.startswith("upload=") for f in files)
