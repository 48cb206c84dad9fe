"""The clauses stage's named results (issue 9 item 2): each run names them its own way (``_<tag>_<role>``,
``staged_targets``), so two runs on one connection never read each other's tables, and leaving the stage
drops every one of them, whether it finished or failed half-way."""

from __future__ import annotations

import re

import pytest

from settlement.clauses import targets as clauses
from settlement.clauses.relations import STAGE_ROLES
from settlement.clauses.targets import staged_targets
from settlement.core.params import load_params
from settlement.run import run_settlement
from tests.support.world import retract

PARAMS = load_params()


def temp_objects(con) -> list[str]:
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal").fetchall()
    return sorted(name for (name,) in tables + views)


def payouts_text(t) -> list[tuple]:
    return list(t.targets.iter_rows())


def test_two_runs_on_one_connection_keep_their_own_tables(sample):
    with staged_targets(sample, 2024, params=PARAMS) as alone:
        expected_2024 = payouts_text(alone), alone.datasets.rows()
    with staged_targets(sample, 2025, params=PARAMS) as alone:
        expected_2025 = payouts_text(alone), alone.datasets.rows()
    assert expected_2024 != expected_2025  # the sample pays differently in the two years

    with staged_targets(sample, 2024, params=PARAMS) as first:
        with staged_targets(sample, 2025, params=PARAMS) as second:
            assert set(first.names) == set(second.names) == set(STAGE_ROLES)
            assert not set(first.names.values()) & set(second.names.values())
            for names in (first.names, second.names):
                tag = names["status"].removesuffix("_status")
                assert re.fullmatch(r"_[0-9a-f]{8}", tag)
                assert all(name == f"{tag}_{role}" for role, name in names.items())
            # the first run's staged rows were not replaced by the second's
            callers_2024 = sample.execute(f"SELECT DISTINCT year FROM {first.callers_table}").fetchall()
            callers_2025 = sample.execute(f"SELECT DISTINCT year FROM {second.callers_table}").fetchall()
            assert (callers_2024, callers_2025) == ([(2024,)], [(2025,)])
            first_excl = sample.execute(f"SELECT count(*) FROM ({first.exclusions_sql})").fetchall()
        assert (payouts_text(first), first.datasets.rows()) == expected_2024
        assert (payouts_text(second), second.datasets.rows()) == expected_2025
        # the second run's tables are gone, the first's still answer the same
        assert sample.execute(f"SELECT count(*) FROM ({first.exclusions_sql})").fetchall() == first_excl
        assert first_excl[0][0] > 0
    assert temp_objects(sample) == []


def test_a_failure_half_way_leaves_no_named_result(sample, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(clauses, "platform_results", broken)  # after sales, callers and clause 6 are staged
    with pytest.raises(RuntimeError, match="disk full"):
        with staged_targets(sample, 2024, params=PARAMS):
            pass
    assert temp_objects(sample) == []


def test_a_failure_inside_the_block_drops_them_too(sample):
    with pytest.raises(KeyError):
        with staged_targets(sample, 2024, params=PARAMS) as t:
            assert len([n for n in temp_objects(sample) if n.startswith(t.names["status"][:10])]) >= 8
            raise KeyError("the caller failed")
    assert temp_objects(sample) == []


def test_a_settlement_run_leaves_nothing_behind(sample):
    retract(sample, sample.execute("SELECT min(id) FROM uploads").fetchall()[0][0])  # new inputs: a real run
    result = run_settlement(sample, 2024, params=PARAMS, started_by="test")
    stored = sample.execute("SELECT count(*) FROM run_dataset_results WHERE run_id = ?", [result.run_id]).fetchall()
    assert stored[0][0] > 0  # computed and stored, not the unchanged-inputs shortcut
    assert temp_objects(sample) == []
