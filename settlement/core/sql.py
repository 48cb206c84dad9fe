"""DuckDB plumbing, written once: literals, identifiers, SQL templates, transactions and TEMP table lifetimes.

Values from outside always travel as bound parameters (``$name`` / ``?``); ``literal`` is only for the
few places DuckDB cannot bind (file paths inside ``read_csv(...)``, ATTACH targets, table functions'
options) and for values the engine produced itself. ``render`` fills ``{name}`` slots of a SQL template
(plain replacement: SQL is full of braces, so ``str.format`` would not do). ``transaction`` is the one
BEGIN/COMMIT/ROLLBACK block; ``temp_tables`` gives a stage's TEMP tables a visible lifetime and a
per-use prefix, so two runs on two cursors never collide. Imports nothing of ours.
"""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator

import duckdb


def literal(value: object) -> str:
    """A SQL literal: NULL, a quoted string, a DATE, an exact DECIMAL (typed wide, P10.8) or an integer."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        raise TypeError("instants travel as bound parameters, never as literals")
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        return f"CAST('{value}' AS DECIMAL(38,{max(0, -value.as_tuple().exponent)}))"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def quote_ident(name: str) -> str:
    """A quoted identifier: any column name a file brings, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def render(template: str, slots: dict[str, str]) -> str:
    """Fill the ``{name}`` slots of a SQL template with SQL text (plain replacement, braces elsewhere stay)."""
    for key, value in slots.items():
        template = template.replace("{" + key + "}", value)
    return template


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """True inside the caller's explicit transaction. Probing with BEGIN would abort that transaction on
    failure, so compare two transaction ids: in autocommit mode every statement gets a new one."""
    first = con.execute("SELECT txid_current()").fetchall()[0][0]
    return con.execute("SELECT txid_current()").fetchall()[0][0] == first


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, *, join: bool = False) -> Iterator[None]:
    """All or nothing: a crash (even SIGKILL) before COMMIT leaves the store as it was (DuckDB WAL).

    ``join=True``: inside a caller's own transaction run in it (the caller commits), else open one."""
    if join and in_transaction(con):
        yield
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:  # a failed COMMIT or a conflict already ended it
            pass
        raise
    con.execute("COMMIT")


@contextmanager
def temp_tables(con: duckdb.DuckDBPyConnection, *names: str, prefix: str | None = None) -> Iterator[dict[str, str]]:
    """Names for a stage's TEMP tables and views, unique to this use (``_<prefix>_<name>``, a fresh random
    prefix per call), dropped on exit whatever happens. Yields {name: unique name}. TEMP objects belong to
    one connection, so the prefix is what keeps two uses on the same connection apart."""
    tag = prefix or uuid.uuid4().hex[:8]
    tables = {name: f"_{tag}_{name}" for name in names}
    try:
        yield tables
    finally:
        for table in tables.values():
            _drop_temp(con, table)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, frame: object, role: str = "frame") -> Iterator[str]:
    """A polars / Arrow / pandas frame visible to SQL under a name of this use's own (``_<8 hex>_<role>``),
    unregistered on exit whatever happens. Yields the name."""
    name = f"_{uuid.uuid4().hex[:8]}_{role}"
    con.register(name, frame)
    try:
        yield name
    finally:
        unregister(con, name)


def unregister(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Unregister frames. In a transaction that a failed statement aborted DuckDB refuses, and the caller's
    ROLLBACK removes them: raising here would hide the error that aborted it."""
    for name in names:
        try:
            con.unregister(name)
        except duckdb.TransactionException:
            pass


def _drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop TEMP table or view ``name`` if it exists (DuckDB refuses DROP TABLE on a view and vice versa)."""
    try:
        con.execute(f"DROP TABLE IF EXISTS temp.{name}")
    except duckdb.CatalogException:  # it is a view
        try:
            con.execute(f"DROP VIEW IF EXISTS temp.{name}")
        except duckdb.Error:
            pass
    except duckdb.Error:  # an aborted transaction: the rollback drops them
        pass
