"""What the running app holds: the one writer connection, the SQL sandbox, the change counter.

One server process owns the DuckDB file (DuckDB admits one writing process). Every request works on its
own cursor of that connection (DuckDB cursors are independent connections to the same database: MVCC
transactions, temp tables per cursor), so uploads, runs and reads proceed side by side and block each
other only where DuckDB itself serialises a commit. Must not import the routes, ``api.auth`` or ``api.deps``
(they import this module).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import AsyncIterator

import duckdb
from fastapi import Request

from api.settings import Settings
from api.sql_guard import SqlSandbox
from settlement.access.tokens import TokenTable


class LruCache:
    """A small thread-safe LRU map (answers keyed by a state version, so entries never go stale)."""

    def __init__(self, size: int = 4096) -> None:
        self._data: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


@dataclass
class ApiState:
    settings: Settings
    writer: duckdb.DuckDBPyConnection
    sandbox: SqlSandbox
    payouts_cache: LruCache = field(default_factory=LruCache)
    sql_slots: threading.BoundedSemaphore | None = None  # set by create_app from sql_max_concurrent
    token_table: TokenTable = field(default_factory=TokenTable)
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


async def db_cursor(request: Request) -> AsyncIterator[duckdb.DuckDBPyConnection]:
    """FastAPI dependency: a fresh cursor for this request, closed after it (opening one costs ~0.1 ms:
    done inline rather than on a thread-pool hop)."""
    cur = get_state(request).cursor()
    try:
        yield cur
    finally:
        cur.close()
