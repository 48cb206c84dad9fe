"""run_exclusion_counts (issues 12 and 14, migration 0013): every run's counts equal counting the regulator view
`exclusions`; the migration backfills runs made before it; explain and the lifecycle statement read the
counts and the one-dataset / one-platform derivation, and answer exactly what the view answers."""

from __future__ import annotations

from datetime import date
from pathlib import Path


from settlement import explain
from settlement.clauses.exclusions import counts_view_sql
from settlement.core import store
from settlement.core.params import load_params
from settlement.lifecycle.statement import MINE_SQL, statement
from settlement.run import settle_all
from tests.support.world import (change_sample_later, load_datasets, load_platforms, new_store, refund, sale,
                                 upload)

MIGRATION = Path(store.__file__).parent / "migrations" / "0013_exclusion_counts.sql"
PARAMS = load_params()
KEYS = "run_id, year, clause, dataset_id, platform_id, reason, kind"


def view_counts(con) -> list[tuple]:
    return con.execute(f"SELECT {KEYS}, count(*) FROM exclusions GROUP BY ALL ORDER BY ALL").fetchall()


def stored_counts(con) -> list[tuple]:
    return con.execute(f"SELECT {KEYS}, sum(trades) FROM run_exclusion_counts GROUP BY ALL ORDER BY ALL").fetchall()


def all_counts(con) -> list[tuple]:
    return con.execute("SELECT * FROM run_exclusion_counts ORDER BY ALL").fetchall()


def view_list(con, run_id: int, clause: int, column: str, value: str, limit: int) -> list[tuple]:
    return con.execute(f"SELECT platform_id, trade_id, kind, reason, detail FROM exclusions WHERE run_id = ? "
                       f"AND clause = ? AND {column} = ? ORDER BY reason, platform_id, trade_id, upload_id LIMIT ?",
                       [run_id, clause, value, limit]).fetchall()


def view_by_reason(con, run_id: int, clause: int, column: str, value: str) -> dict[str, int]:
    return dict(con.execute(f"SELECT reason, count(*) FROM exclusions WHERE run_id = ? AND clause = ? "
                            f"AND {column} = ? GROUP BY reason ORDER BY reason", [run_id, clause, value]).fetchall())


def listed(found) -> list[tuple]:
    return [(t.platform_id, t.trade_id, t.kind, t.reason, t.detail) for t in found.excluded]


def test_the_migration_holds_the_backfill_the_code_makes():
    assert counts_view_sql().strip() + ";" in MIGRATION.read_text()


def test_every_runs_counts_equal_the_view(sample):
    assert stored_counts(sample) == view_counts(sample)
    assert [(r, n) for r, n in sample.execute(
        "SELECT run_id, sum(trades) FROM run_exclusion_counts GROUP BY 1 ORDER BY 1").fetchall()] == [
        (1, 5), (2, 25), (3, 5), (4, 2)]
    # counting once more in a later run (retraction, registry loads) keeps every earlier run's counts
    change_sample_later(sample)
    assert sample.execute("SELECT count(DISTINCT run_id) FROM run_exclusion_counts").fetchall()[0][0] == 8
    assert stored_counts(sample) == view_counts(sample)


def test_the_migration_backfills_runs_made_before_it(sample):
    before = all_counts(sample)
    assert len(before) > 10
    sample.execute("DROP TABLE run_exclusion_counts")
    sample.execute("DELETE FROM schema_version WHERE version = 13")
    assert store.migrate(sample) == [13]
    assert all_counts(sample) == before


def test_owner_is_the_owner_of_the_sales_period_and_refunds_follow_their_sale(tmp_path):
    con = new_store(tmp_path)
    load_platforms(con, [("PLAT", date(2023, 1, 1), None)])
    load_datasets(con, [("D1", "OWN1", date(2023, 1, 1), None, None), ("D1", "OWN2", date(2023, 1, 1), None,
                                                                       date(2024, 7, 1)),
                        ("D2", "OWN1", None, None)])
    upload(con, [sale("S1", "B1", "10.00", "2024-03-01T10:00:00"), sale("S2", "B2", "10.00", "2024-08-01T10:00:00"),
                 sale("S3", "B3", "10.00", "2024-09-01T10:00:00", dataset="D2"),
                 refund("R1", "S2", "10.00", "2024-09-02T10:00:00", dataset="D2")])
    run = settle_all(con, params=PARAMS)[0].run_id
    assert all_counts(con) == [
        (run, 2024, 6, "D1", "OWN1", "PLAT", "BELOW_CALLER_THRESHOLD", "sale", 1),
        (run, 2024, 6, "D1", "OWN2", "PLAT", "FULLY_REFUNDED", "refund", 1),
        (run, 2024, 6, "D1", "OWN2", "PLAT", "FULLY_REFUNDED", "sale", 1),
        (run, 2024, 6, "D2", "OWN1", "PLAT", "NOT_CERTIFIED", "sale", 1),
        (run, 2024, 7, "D1", "OWN2", "PLAT", "FULLY_REFUNDED", "refund", 1),
        (run, 2024, 7, "D1", "OWN2", "PLAT", "FULLY_REFUNDED", "sale", 1),
    ]
    # the refund R1 (its own row says D2) is listed under its sale's dataset D1, not under D2
    d1 = explain.explain_dataset(con, "D1", 2024, params=PARAMS, owner_id="OWN2")
    assert d1.excluded_by_reason == {"BELOW_CALLER_THRESHOLD": 1, "FULLY_REFUNDED": 2} and d1.excluded_total == 3
    assert [(t.trade_id, t.kind, t.reason) for t in d1.excluded] == [
        ("S1", "sale", "BELOW_CALLER_THRESHOLD"), ("R1", "refund", "FULLY_REFUNDED"), ("S2", "sale", "FULLY_REFUNDED")]
    d2 = explain.explain_dataset(con, "D2", 2024, params=PARAMS)
    assert d2.excluded_by_reason == {"NOT_CERTIFIED": 1} and [t.trade_id for t in d2.excluded] == ["S3"]
    assert listed(d1) == view_list(con, run, 6, "dataset_id", "D1", 50)
    # derived together (the owner page), each dataset keeps its own rows: R1 stays D1's although its row says D2
    together = explain.batch(con, ["D2", "D1"], 2024, 50)
    assert together.excluded == {"D1": d1.excluded, "D2": d2.excluded}
    assert explain.explain_dataset(con, "D1", 2024, params=PARAMS, owner_id="OWN2", batch=together) == d1


def test_listings_derived_together_are_each_datasets_own(sample):
    """explain.batch: one derivation for many datasets gives each the first ``limit`` rows the view lists."""
    ids = [r[0] for r in sample.execute("SELECT DISTINCT dataset_id FROM trade_rows ORDER BY 1").fetchall()]
    compared = 0
    for (year,) in sample.execute("SELECT DISTINCT year FROM settlement_runs ORDER BY 1").fetchall():
        run = explain.latest_run(sample, year)
        for limit in (50, 2):
            together = explain.batch(sample, ids, year, limit)
            assert together.run_id == run and together.limit == limit
            for value in ids:
                assert [tuple(vars(t).values()) for t in together.excluded.get(value, ())] == view_list(
                    sample, run, 6, "dataset_id", value, limit), (year, value, limit)
                compared += len(together.excluded.get(value, ()))
            assert together.excluded_of(run + 1, ids[0], limit) is None
            assert together.excluded_of(run, ids[0], limit + 1) is None and together.buyers_of(run + 1, ids[0], None) is None
            # each dataset's explanation is the same read alone or from the batch (buyers, groups, merge paths)
            for value in ids:
                assert explain.explain_dataset(sample, value, year, limit=limit, params=PARAMS, batch=together) == \
                    explain.explain_dataset(sample, value, year, limit=limit, params=PARAMS), (year, value)
    # every listed row was compared: Σ over years, limits and datasets of min(rows in the view, limit)
    assert compared == sample.execute(
        "SELECT sum(least(n, 50) + least(n, 2)) FROM (SELECT count(*) AS n FROM exclusions x "
        "JOIN run_explanation_source r ON r.source_run_id = x.run_id AND r.run_id = (SELECT max(run_id) "
        "FROM settlement_runs s WHERE s.year = x.year) WHERE clause = 6 GROUP BY x.year, dataset_id)").fetchall()[0][0]
    assert compared == 41
    assert explain.batch(sample, [], 2024, 5).excluded == {}


def test_explain_lists_exactly_what_the_view_lists(sample):
    checked = 0
    for (year,) in sample.execute("SELECT DISTINCT year FROM settlement_runs ORDER BY 1").fetchall():
        run = explain.latest_run(sample, year)
        for clause, column, ids in (
                (6, "dataset_id", sample.execute("SELECT DISTINCT dataset_id FROM trade_rows ORDER BY 1").fetchall()),
                (7, "platform_id", sample.execute("SELECT DISTINCT platform_id FROM trade_rows ORDER BY 1").fetchall())):
            for (value,) in ids:
                for limit in (50, 2):
                    found = (explain.explain_dataset(sample, value, year, limit=limit, params=PARAMS) if clause == 6
                             else explain.explain_platform(sample, value, year, limit=limit))
                    assert found.excluded_by_reason == view_by_reason(sample, run, clause, column, value)
                    assert found.excluded_total == sum(found.excluded_by_reason.values())
                    assert listed(found) == view_list(sample, run, clause, column, value, limit), (year, value)
                    checked += len(found.excluded)
    assert checked == 62


def test_explain_figures_of_the_sample(sample):
    refunded = explain.explain_dataset(sample, "XH-EDU-QA", 2024, params=PARAMS)
    assert refunded.excluded_by_reason == {"BELOW_CALLER_THRESHOLD": 3, "FULLY_REFUNDED": 2}
    assert [(t.trade_id, t.kind, t.reason) for t in refunded.excluded] == [
        ("BJM-0001", "sale", "BELOW_CALLER_THRESHOLD"), ("BJM-0002", "sale", "BELOW_CALLER_THRESHOLD"),
        ("BJM-0003", "sale", "BELOW_CALLER_THRESHOLD"), ("BJM-0004", "sale", "FULLY_REFUNDED"),
        ("BJM-0005", "refund", "FULLY_REFUNDED")]
    assert refunded.excluded[-1].detail == "refund of sale BJM-0004: refunded in full (P9)"
    cut = explain.explain_dataset(sample, "XH-EDU-QA", 2024, params=PARAMS, limit=1)
    assert cut.excluded_total == 5 and cut.excluded == refunded.excluded[:1]
    clean = explain.explain_dataset(sample, "BJ-SPEECH-ZH", 2024, params=PARAMS)
    assert clean.excluded_by_reason == {} and clean.excluded == () and clean.excluded_total == 0


# the statement's exclusion figures before migration 0013: counted on the view
VIEW_EXCLUSIONS_SQL = f"""
SELECT clause, CASE WHEN clause = 6 THEN dataset_id ELSE '' END, reason, count(*) FROM current_exclusions x
WHERE x.year = $y AND ((x.clause = 7 AND x.platform_id = $b) OR (x.clause = 6 AND x.dataset_id IN ({MINE_SQL})))
GROUP BY ALL ORDER BY ALL"""


def test_the_statement_counts_what_the_view_counts(sample):
    seen = 0
    for (year, beneficiary) in sample.execute(
            "SELECT DISTINCT year, beneficiary_id FROM ledger_entries UNION SELECT year, owner_id FROM "
            "run_dataset_results WHERE owner_id IS NOT NULL UNION SELECT year, platform_id FROM run_platform_results "
            "ORDER BY ALL").fetchall():
        st = statement(sample, year, beneficiary)
        want = sample.execute(VIEW_EXCLUSIONS_SQL, dict(y=year, b=beneficiary)).fetchall()
        per_reason: dict = {}
        per_dataset: dict = {}
        for clause, dataset_id, reason, n in want:
            per_reason[(clause, reason)] = per_reason.get((clause, reason), 0) + n
            per_dataset[dataset_id] = per_dataset.get(dataset_id, 0) + (n if clause == 6 else 0)
        assert st.exclusions == tuple((c, r, n) for (c, r), n in sorted(per_reason.items())), (year, beneficiary)
        assert {d.dataset_id: d.excluded_trades for d in st.datasets} == {
            d.dataset_id: per_dataset.get(d.dataset_id, 0) for d in st.datasets}
        seen += sum(n for _c, _r, n in st.exclusions)
    assert seen == 32
