"""The regulator view `exclusions` derived on demand from each run's compact record (issue 14, migration
0011) gives the same rows as writing them row by row did, keeps every run's answers when inputs change
later, and shows the rows earlier runs wrote."""

from __future__ import annotations

from pathlib import Path


from settlement.clauses.relations import exclusions_view_sql
from settlement.clauses.targets import staged_targets
from settlement.core import store
from settlement.core.params import load_params
from tests.support.world import change_sample_later

# the view's newest text (0011 holds the first)
MIGRATION = Path(store.__file__).parent / "migrations" / "0014_exclusions_year_range.sql"
PARAMS = load_params()
COLUMNS = "run_id, year, clause, platform_id, trade_id, reason, detail, dataset_id, kind, upload_id"


def view_rows(con, run_id: int) -> list[tuple]:
    return con.execute(f"SELECT {COLUMNS} FROM exclusions WHERE run_id = ? ORDER BY ALL", [run_id]).fetchall()


def test_the_migration_holds_the_view_the_sql_files_make():
    assert exclusions_view_sql().strip() in MIGRATION.read_text()


def test_the_view_equals_the_rows_a_run_computes(sample):
    """Before/after: the rows the run-time statement yields (what runs used to INSERT) == the view's rows."""
    runs = sample.execute("SELECT run_id, year FROM exclusion_runs ORDER BY run_id").fetchall()
    assert len(runs) >= 3
    for run_id, year in runs:
        with staged_targets(sample, year, params=PARAMS) as t:
            computed = sample.execute(f"SELECT {run_id}, * EXCLUDE (run_id) FROM ({t.exclusions_sql}) ORDER BY ALL"
                                      ).fetchall()
        assert computed == view_rows(sample, run_id), year
    assert sum(len(view_rows(sample, r)) for r, _ in runs) > 20


def test_a_run_writes_no_exclusion_rows(sample):
    assert sample.execute("SELECT count(*) FROM exclusion_rows").fetchall()[0][0] == 0
    assert sample.execute("SELECT count(*) FROM exclusions").fetchall()[0][0] > 0


def test_later_retractions_and_registry_loads_do_not_change_a_runs_answers(sample):
    runs = [r for (r,) in sample.execute("SELECT run_id FROM exclusion_runs ORDER BY run_id").fetchall()]
    before = {r: view_rows(sample, r) for r in runs}
    change_sample_later(sample)
    assert {r: view_rows(sample, r) for r in runs} == before
    newer = sample.execute("SELECT max(run_id) FROM exclusion_runs").fetchall()[0][0]
    assert newer > max(runs) and view_rows(sample, newer) != before[max(runs)]


def test_rows_written_before_the_migration_stay_in_the_view(sample):
    sample.execute("INSERT INTO exclusion_rows VALUES (999, 2022, 6, 'PF', 'OLD-1', 'OUT_OF_WINDOW', 'old', 'D', "
                   "'sale', 1)")
    assert view_rows(sample, 999) == [(999, 2022, 6, "PF", "OLD-1", "OUT_OF_WINDOW", "old", "D", "sale", 1)]
