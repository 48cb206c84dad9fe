"""compute_flags names its TEMP tables and registered views per call (issue 9, ``core.sql.temp_tables``): two
calls on one connection, one nested inside the other, do not collide, and none is left behind, also when
a statement fails inside it (with or without the caller's transaction)."""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest

from settlement.integrity import flags, rings
from tests.integrity.support import buys, exchange, settle_with
from tests.support.scenario import PARAMS

THREE = ("B1", "B2", "B3")


def _ringed(tmp_path):
    """A settled year whose flags use every TEMP role: a ring (registered frames), callers, trades."""
    con = exchange(tmp_path, owners=("OWN1", "OWN2", "OWN3"))
    result = settle_with(con, buys("D1", "OWN1", THREE + ("OWN2",)) + buys("D2", "OWN2", ("C1", "C2", "C3", "OWN3"))
                         + buys("D3", "OWN3", ("E1", "E2", "E3", "OWN1")))
    return con, result.run_id


def _temp_objects(con) -> list[str]:
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal").fetchall()
    return sorted(name for (name,) in tables + views)


def _stored(con, run_id: int) -> Counter:
    rows = con.execute("SELECT code, flag_key, evidence_trade_ids, figures FROM integrity_flags WHERE run_id = ?",
                       [run_id]).fetchall()
    return Counter((code, key, tuple(ev), fig) for code, key, ev, fig in rows)


def test_a_call_nested_inside_another_on_the_same_connection_does_not_collide(tmp_path, monkeypatch):
    con, run_id = _ringed(tmp_path)
    once = _stored(con, run_id)
    assert {code for code, *_ in once} >= {"CALLER_RING"}
    real_rings = rings.caller_rings
    inner: list[int] = []
    nested: list[bool] = []

    def rings_with_a_nested_call(con_, ctx):
        if not nested:  # the outer call's tables exist now; the inner one must neither see nor drop them
            nested.append(True)
            inner.append(flags.compute_flags(con_, 2024, run_id, params=PARAMS))
        return real_rings(con_, ctx)

    monkeypatch.setattr(flags, "caller_rings", rings_with_a_nested_call)
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM integrity_flags WHERE run_id = ?", [run_id])
    outer = flags.compute_flags(con, 2024, run_id, params=PARAMS)
    both = _stored(con, run_id)
    con.execute("ROLLBACK")
    assert inner == [sum(once.values())] and outer == sum(once.values())
    assert both == once + once
    assert _temp_objects(con) == []


def test_no_temp_table_or_view_is_left_after_compute_flags(tmp_path):
    con, run_id = _ringed(tmp_path)
    assert _temp_objects(con) == []  # settle ran compute_flags
    con.execute("BEGIN TRANSACTION")
    assert flags.compute_flags(con, 2024, run_id, params=PARAMS) > 0
    assert _temp_objects(con) == []  # dropped before the caller's COMMIT, not by it
    con.execute("ROLLBACK")


@pytest.mark.parametrize("in_transaction", [False, True])
@pytest.mark.parametrize("where", ["code", "rings"])
def test_no_temp_table_or_view_is_left_after_a_failure_inside_compute_flags(tmp_path, monkeypatch, where,
                                                                            in_transaction):
    con, run_id = _ringed(tmp_path)
    before = _stored(con, run_id)
    if where == "code":  # after the groups are staged and the first codes inserted
        monkeypatch.setattr(flags, "SQL_CODES", flags.SQL_CODES[:3] + (lambda ctx: "SELECT no_such_column",))
    else:  # while the ring frames are registered
        monkeypatch.setattr(flags, "ring_flags_sql", lambda ctx: f"SELECT no_such_column FROM {ctx.table('rings')}")
    if in_transaction:
        con.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.BinderException, match="no_such_column"):
        flags.compute_flags(con, 2024, run_id, params=PARAMS)
    if in_transaction:
        con.execute("ROLLBACK")
    assert _temp_objects(con) == []
    assert _stored(con, run_id) == before  # nothing appended by the failed call
