"""The backend interface: register inputs, run a statement into a named result, fetch an Arrow table.

A statement handed to ``run`` / ``fetch`` is a portable SELECT (the subset DuckDB and Spark SQL both run
unchanged); wrapping it into a named result (a TEMP table, a cached Spark view) is the backend's own
business. Imports nothing of the engine.
"""

from __future__ import annotations

from typing import Protocol

import duckdb
import pyarrow as pa


class BackendError(RuntimeError):
    """A backend is misconfigured or unavailable (message says what to install or set)."""


class Backend(Protocol):
    name: str
    #: True when named results live in the store connection itself (no copy back needed)
    local: bool

    def bind_inputs(self, con: duckdb.DuckDBPyConnection, year: int) -> None:
        """Make ``trades``, ``datasets``, ``platforms``, ``affiliate_groups`` and ``affiliate_day_groups``
        (of ``year``) of the store ``con`` visible to the statements."""

    def register(self, name: str, data: pa.Table) -> None:
        """Make a small local table visible to the statements under ``name``."""

    def run(self, name: str, sql: str, *, reused: bool = False) -> None:
        """Make the SELECT ``sql`` the named result ``name`` (replacing an older one). ``reused``: later
        statements read it several times, so a backend that evaluates lazily should evaluate it once."""

    def fetch(self, sql: str) -> pa.Table:
        """The rows of the SELECT ``sql`` as an Arrow table."""

    def drop(self, names: tuple[str, ...]) -> None:
        """Forget the named results and registered tables ``names``."""


def to_local(con: duckdb.DuckDBPyConnection, backend: Backend, name: str, sql: str) -> None:
    """Run ``sql`` on the backend into ``name`` and make it a TEMP table of the store ``con`` too (a copy of
    the Arrow result when the backend is remote; nothing more when it is the store itself)."""
    backend.run(name, sql)
    if not backend.local:
        store_arrow(con, name, backend.fetch(f"SELECT * FROM {name}"))


def store_arrow(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """CREATE OR REPLACE TEMP TABLE ``name`` of ``con`` from an Arrow table."""
    view = f"_arrow_{name.strip('_')}"
    con.register(view, table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")
    finally:
        con.unregister(view)
