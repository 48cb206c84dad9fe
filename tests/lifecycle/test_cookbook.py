"""Every query of docs/cookbook.md runs on a store walked through the lifecycle, and every column of the
regulator schema (migration 0009 included) carries a COMMENT."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from settlement.core import store
from settlement.core.params import load_params
from settlement.lifecycle.walkthrough import walk_year
from settlement.tools.demo import load_and_settle

ROOT = Path(__file__).resolve().parents[2]
QUERIES = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "cookbook.md").read_text(encoding="utf-8"), flags=re.S)
VIEWS = ("current_runs", "current_dataset_results", "current_platform_results", "current_exclusions",
         "current_callers", "entry_states", "run_states", "beneficiary_accounts", "key_accounts", "objections",
         "lifecycle_events")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("cookbook") / "c.duckdb"
    store.init(path)
    c = store.open_store(path)
    params = load_params()
    load_and_settle(c, ROOT / "sample_trades", params=params, by="demo:loader")
    walk_year(c, 2024, params=params)
    yield c
    c.close()


def test_the_cookbook_has_queries() -> None:
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
def test_cookbook_query_runs(con, sql: str) -> None:
    rel = con.sql(sql)
    rel.fetchall()


def test_the_results_in_force_are_one_row_per_key(con) -> None:
    assert con.execute("SELECT count(*) FROM current_dataset_results").fetchall()[0][0] > 0
    dupes = con.execute("SELECT count(*) FROM (SELECT year, clause, platform_id, trade_id, upload_id "
                        "FROM current_exclusions GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
    assert dupes == 0
    assert con.execute("SELECT * FROM beneficiary_accounts WHERE entitled <> proposed + approved "
                       "OR approved <> disbursed + outstanding").fetchall() == []


def test_every_lifecycle_view_and_column_is_commented(con) -> None:
    missing = con.execute(
        f"SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal AND table_name IN {VIEWS} "
        "AND (comment IS NULL OR comment = '')").fetchall()
    assert missing == []
    objects = con.execute(
        f"SELECT view_name FROM duckdb_views() WHERE view_name IN {VIEWS} AND (comment IS NULL OR comment = '') "
        f"UNION ALL SELECT table_name FROM duckdb_tables() WHERE table_name IN {VIEWS} AND comment IS NULL").fetchall()
    assert objects == []
    assert con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'settlement_runs' "
                       "AND column_name = 'started_by'").fetchall()[0][0]
