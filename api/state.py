"""What the running app holds: the one writer connection, the SQL sandbox, the change counter.

One server process owns the DuckDB file (DuckDB admits one writing process). Every request works on its
own cursor of that connection (DuckDB cursors are independent connections to the same database: MVCC
transactions, temp tables per cursor), so uploads, runs and reads proceed side by side and block each
other only where DuckDB itself serialises a commit. Must not import the routes.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Iterator

import duckdb
from fastapi import Request

from api.settings import Settings
from api.sql_guard import SqlSandbox


@dataclass
class ApiState:
    settings: Settings
    writer: duckdb.DuckDBPyConnection
    sandbox: SqlSandbox
    _generation: int = 0
    _gen_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def generation(self) -> int:
        """Bumped by every write through the API; the SQL snapshot is rebuilt when it moved."""
        return self._generation

    def data_changed(self) -> None:
        with self._gen_lock:
            self._generation += 1

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.writer.cursor()

    def close(self) -> None:
        self.sandbox.close()
        self.writer.close()


def get_state(request: Request) -> ApiState:
    return request.app.state.api


def db_cursor(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """FastAPI dependency: a fresh cursor for this request, closed after it."""
    cur = get_state(request).cursor()
    try:
        yield cur
    finally:
        cur.close()
