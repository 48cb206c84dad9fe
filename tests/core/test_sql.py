"""The one DuckDB plumbing module: literals, templates, transactions, TEMP table lifetimes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from settlement.core.sql import in_transaction, literal, quote_ident, render, temp_tables, transaction


def test_literals_are_exact_and_quoted():
    assert literal(None) == "NULL"
    assert literal("it's") == "'it''s'"
    assert literal(dt.date(2024, 2, 29)) == "DATE '2024-02-29'"
    assert literal(Decimal("0.10")) == "CAST('0.10' AS DECIMAL(38,2))"
    assert literal(3) == "3" and literal(True) == "true"
    with pytest.raises(TypeError):
        literal(0.1)  # P1: never a binary float
    con = duckdb.connect()
    quoted = literal("a'b")
    assert con.execute(f"SELECT {quoted}, {literal(Decimal('999999999999.99'))} * 10").fetchall() == [
        ("a'b", Decimal("9999999999999.90"))]
    assert quote_ident('we"ird') == '"we""ird"'


def test_render_fills_named_slots_only():
    assert render("SELECT {a} FROM t WHERE x = {b} AND s = {'k': 1}", {"a": "1", "b": "2"}) == \
        "SELECT 1 FROM t WHERE x = 2 AND s = {'k': 1}"


def test_a_failed_transaction_leaves_nothing_and_join_uses_the_callers():
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    con.execute("BEGIN TRANSACTION")
    assert in_transaction(con)
    with transaction(con, join=True):
        con.execute("INSERT INTO t VALUES (2)")
    con.execute("ROLLBACK")  # the caller's transaction decides: nothing stays
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    assert not in_transaction(con)


def test_temp_tables_are_unique_per_use_and_dropped():
    con = duckdb.connect()
    with temp_tables(con, "status", prefix="run7") as t:
        assert t == {"status": "_run7_status"}
        con.execute(f"CREATE TEMP TABLE {t['status']} AS SELECT 1 AS x")
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_run7_status'").fetchall() == [(0,)]
    with temp_tables(con, "a") as one, temp_tables(con, "a") as two:
        assert one["a"] != two["a"]


def test_registered_frames_have_their_own_names_and_keep_the_error_that_aborted_a_transaction():
    import polars as pl

    from settlement.core.sql import registered

    con = duckdb.connect()
    frame = pl.DataFrame({"x": [1, 2]})
    with registered(con, frame, "rows") as one, registered(con, frame, "rows") as two:
        assert one != two and one.endswith("_rows") and len(one) == len("_0123abcd_rows")
        assert con.execute(f"SELECT sum(x) FROM {one}").fetchall() == [(3,)]
    with pytest.raises(duckdb.CatalogException):
        con.execute(f"SELECT * FROM {one}")
    con.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.ConversionException, match="Could not convert"):
        with registered(con, frame, "rows"):
            con.execute("SELECT CAST('not a number' AS INTEGER)")  # aborts the transaction
    con.execute("ROLLBACK")
