"""Regulator SQL (`POST /v1/sql`): decide read-only with DuckDB's parser, run in a sandbox, cap, time out, log.

Two independent walls (issue 5):
1. DuckDB's own parser (``extract_statements``): exactly one statement, of type SELECT (which covers
   SELECT / FROM / WITH / VALUES / SHOW / DESCRIBE / SUMMARIZE). No regexes.
2. A sandbox: a separate in-memory DuckDB instance that ATTACHes a *snapshot* of the store READ_ONLY, then
   sets ``enable_external_access=false`` and ``lock_configuration=true``. read_csv / read_text / glob /
   COPY / EXPORT / ATTACH / INSTALL / LOAD / SET cannot succeed there even if wall 1 let them through,
   and the store file itself is never open in it.

Why a snapshot: inside one process DuckDB refuses to open the same file twice ("Unique file handle
conflict" for ATTACH, "different configuration" for connect, measured on duckdb 2.0.1), and a second
process cannot open a file another process writes. So the server's writer instance copies the store
into a snapshot file (schema, then every table's rows in one MVCC transaction: it blocks no writer;
~11 s for 10M trade rows on this shared machine) when data changed through the API (a generation
counter) or the snapshot is older than ``sql_snapshot_max_age_s``. The rebuild runs in the background:
a query waits for it at most ``sql_snapshot_wait_s``, then reads the previous snapshot (its answer's
``snapshot_at`` says how old). Token hashes are never written into a snapshot.

Where a query runs (issue 15): in a separate worker process (``api.sql_worker``, pooled by
``api.sql_pool``) that opens the snapshot file itself with the same sandbox and an OS memory cap
(``RLIMIT_AS``). DuckDB builds a whole vector before the first row comes back and checks ``interrupt()``
only between chunks, so an in-process sandbox could neither be stopped at the time limit nor bounded in
memory. The server SIGKILLs the worker at the time limit (``sql_timeout``); a worker that runs out of
memory answers ``sql_too_big``; the answer stops at the row cap or the byte cap (``truncated_by``). Every
query, refused or not, is logged in ``sql_log`` through the writer (regulators read it like any table).
Module map: ``api.sql_sandbox`` (snapshot, sandbox, errors), ``api.sql_results`` (answer, JSON values).

Must not import the routes or FastAPI: the app wires this to HTTP.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from api.sql_pool import WorkerPool, run_query
from api.sql_results import SqlRefusal, SqlResult, first_lines, jsonable
from api.sql_sandbox import SNAPSHOT_CATALOG, build_snapshot, open_sandbox

__all__ = ["SNAPSHOT_CATALOG", "SnapshotUnavailable", "SqlRefusal", "SqlResult", "SqlSandbox", "build_snapshot",
           "check_read_only", "jsonable", "log_query", "open_sandbox"]

log = logging.getLogger("settle.api.sql")
DEFAULT_BYTE_CAP = 16 * 1024 * 1024


class SnapshotUnavailable(RuntimeError):
    """No snapshot of the store could be built (a bug or a full disk): logged, answered 503."""


# --- wall 1: DuckDB's parser -------------------------------------------------------------------------


def check_read_only(sql: str, parser: duckdb.DuckDBPyConnection) -> SqlRefusal | None:
    """None when ``sql`` is exactly one SELECT-type statement per DuckDB's own parser, else why not."""
    try:
        statements = parser.extract_statements(sql)
    except duckdb.Error as exc:
        return SqlRefusal("sql_syntax", f"SQL syntax error: {first_lines(exc)}", "refused")
    if not statements:
        return SqlRefusal("sql_empty", "no SQL statement given", "refused")
    if len(statements) > 1:
        return SqlRefusal(
            "sql_not_read_only", f"exactly one statement is allowed, got {len(statements)}", "refused"
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        return SqlRefusal(
            "sql_not_read_only",
            f"only a read statement (SELECT, FROM, WITH, VALUES, SHOW, DESCRIBE) is allowed; "
            f"this is a {kind.name} statement",
            "refused",
        )
    return None


# --- wall 2: the sandbox over a snapshot ---------------------------------------------------------------


@dataclass
class _Snapshot:
    path: Path
    generation: int
    built_monotonic: float
    built_at: str
    users: int = 0
    retired: bool = False


@dataclass
class SqlSandbox:
    """Snapshots of the store for regulator SQL, rebuilt lazily; thread-safe."""

    writer: duckdb.DuckDBPyConnection
    snapshot_dir: Path
    memory_limit: str = "1GB"
    threads: int = 1
    max_age_s: float = 30.0
    wait_s: float = 2.0
    process_memory_bytes: int = 2 * 1024**3  # RLIMIT_AS of each worker process
    _lock: threading.Lock = field(default_factory=threading.Lock)  # guards _current, _rebuild, refcounts
    _current: _Snapshot | None = None
    _rebuild: threading.Thread | None = None
    _rebuild_done: threading.Event | None = None
    _counter: itertools.count = field(default_factory=itertools.count)
    # Parses only (wall 1 runs before any snapshot is taken); a cursor per call keeps it thread-safe.
    _parser: duckdb.DuckDBPyConnection = field(default_factory=lambda: duckdb.connect(":memory:"))

    def __post_init__(self) -> None:
        # Leftovers of an earlier server are stale by definition.
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        # Persistent worker processes (one started now, more while queries overlap), each with its own sandbox.
        self._pool = WorkerPool({"memory_limit": self.memory_limit, "threads": self.threads,
                                 "address_space_bytes": self.process_memory_bytes})

    def _fresh(self, snap: _Snapshot | None, generation: int) -> bool:
        return (
            snap is not None
            and snap.generation == generation
            and time.monotonic() - snap.built_monotonic <= self.max_age_s
        )

    def _start_rebuild(self, generation: int) -> threading.Event:
        """Under self._lock: the running rebuild's event, or a new background rebuild's."""
        if self._rebuild is not None and self._rebuild_done is not None:
            return self._rebuild_done
        done = threading.Event()
        self._rebuild_done = done
        self._rebuild = threading.Thread(target=self._rebuild_worker, args=(generation, done),
                                         name="sql-snapshot", daemon=True)
        self._rebuild.start()
        return done

    def _rebuild_worker(self, generation: int, done: threading.Event) -> None:
        try:
            path = self.snapshot_dir / f"snapshot-{next(self._counter)}-{uuid.uuid4().hex[:8]}.duckdb"
            build_snapshot(self.writer, path)
            built_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            new = _Snapshot(path, generation, time.monotonic(), built_at)  # the server never opens it: workers do
            with self._lock:
                old, self._current = self._current, new
                if old is not None:
                    old.retired = True
                    if old.users == 0:
                        _dispose(old)
        except Exception:  # keep serving the previous snapshot; the next stale query tries again
            log.exception("building the SQL snapshot failed")
        finally:
            with self._lock:
                self._rebuild = None
            done.set()

    def _acquire(self, generation: int) -> _Snapshot | None:
        """A snapshot to query (refcounted), rebuilt in the background when stale.

        A stale query waits up to ``wait_s`` for the rebuild (small stores: it sees its own writes), then
        reads the previous snapshot (``snapshot_at`` tells how old): a rebuild of a big store (~11 s for
        10M trades on this machine) never holds a query beyond ``wait_s``. None only before the first
        snapshot could be built.
        """
        with self._lock:
            snap = self._current
            if self._fresh(snap, generation):
                snap.users += 1
                return snap
            done = self._start_rebuild(generation)
        done.wait(None if snap is None else self.wait_s)
        with self._lock:
            snap = self._current
            if snap is None:
                return None
            snap.users += 1
            return snap

    def _release(self, snap: _Snapshot) -> None:
        with self._lock:
            snap.users -= 1
            if snap.retired and snap.users == 0:
                _dispose(snap)

    def close(self) -> None:
        rebuild = self._rebuild
        if rebuild is not None:
            rebuild.join()  # it uses the writer, which closes next
        with self._lock:
            if self._current is not None:
                self._current.retired = True
                if self._current.users == 0:
                    _dispose(self._current)
                self._current = None
        self._parser.close()
        self._pool.close()

    def checkout_snapshot(self, generation: int) -> tuple[Path, str, Callable[[], None]]:
        """(file, built_at, release): a consistent snapshot file for download; call release() when done."""
        snap = self._acquire(generation)
        if snap is None:
            raise SnapshotUnavailable("the SQL snapshot could not be built; see the server log")
        return snap.path, snap.built_at, lambda: self._release(snap)

    def run(self, sql: str, *, row_cap: int, time_limit_s: float, generation: int,
            byte_cap: int = DEFAULT_BYTE_CAP) -> SqlResult | SqlRefusal:
        """Parse-check, then run ``sql`` in a worker process; a refusal is a value, never an exception."""
        started = time.perf_counter()
        parser = self._parser.cursor()
        try:
            refusal = check_read_only(sql, parser)
        finally:
            parser.close()
        if refusal:
            return refusal
        snap = self._acquire(generation)
        if snap is None:
            return SqlRefusal("sql_unavailable", "the SQL snapshot could not be built; see the server log", "error")
        try:  # the snapshot file stays while the worker reads it (refcount)
            answer = run_query(self._pool, snap.path, sql, row_cap=row_cap, byte_cap=byte_cap,
                               time_limit_s=time_limit_s)
        finally:
            self._release(snap)
        if isinstance(answer, SqlRefusal):
            return answer
        return SqlResult(answer.columns, answer.rows_json, answer.row_count, answer.truncated_by is not None,
                         answer.truncated_by, row_cap, (time.perf_counter() - started) * 1000, snap.built_at)


def _dispose(snap: _Snapshot) -> None:
    snap.path.unlink(missing_ok=True)
    snap.path.with_name(snap.path.name + ".wal").unlink(missing_ok=True)


def log_query(
    writer: duckdb.DuckDBPyConnection, *, who: str, sql: str, row_count: int | None, ms: float, outcome: str,
    message: str | None,
) -> None:
    """One sql_log row per query (a tiny table: a single-row insert is fine)."""
    cur = writer.cursor()
    try:
        cur.execute(
            "INSERT INTO sql_log (log_id, who, queried_at, sql, row_count, ms, outcome, message) "
            "VALUES (nextval('sql_log_id_seq'), ?, now(), ?, ?, ?, ?, ?)",
            [who, sql, row_count, ms, outcome, message],
        )
    finally:
        cur.close()
