"""The DuckDB backend: the portable statements run in the store connection itself (named results are
connection-local TEMP tables), so nothing is copied. The default (``SETTLE_BACKEND=duckdb``)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from settlement.backends.base import store_arrow


class DuckDBBackend:
    name = "duckdb"
    local = True

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def bind_inputs(self, con: duckdb.DuckDBPyConnection, year: int) -> None:
        # trades, datasets, platforms and the affiliate tables are the store's own views and tables
        if con is not self.con:
            raise ValueError("DuckDBBackend is bound to another connection")

    def register(self, name: str, data: pa.Table) -> None:
        store_arrow(self.con, name, data)

    def run(self, name: str, sql: str, *, reused: bool = False) -> None:  # always materialised
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def fetch(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def drop(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
