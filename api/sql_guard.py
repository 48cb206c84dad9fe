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

Time limit: a timer thread calls ``interrupt()`` on the query's cursor. Row cap: ``fetchmany(cap + 1)``
on the streaming result, so a 10M-row query never materialises. Every query, refused or not, is logged in
``sql_log`` through the writer (regulators read it like any table).

Must not import the routes or FastAPI: the app wires this to HTTP.
"""

from __future__ import annotations

import base64
import logging
import datetime as dt
import itertools
import math
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import duckdb

from settlement.core.sql import literal, quote_ident, transaction

log = logging.getLogger("settle.api.sql")

SNAPSHOT_CATALOG = "store"
# Columns never copied into the regulator's snapshot (secrets, even if hashed).
_SNAPSHOT_DROPS = (("api_tokens", "token_sha256"),)


class SnapshotUnavailable(RuntimeError):
    """No snapshot of the store could be built (a bug or a full disk): logged, answered 503."""


@dataclass(frozen=True)
class SqlRefusal:
    """A query the server will not (or could not) answer: HTTP 400 with this code and message."""

    code: str  # sql_empty | sql_syntax | sql_not_read_only | sql_access_denied | sql_timeout | sql_error
    message: str
    outcome: str  # the sql_log outcome

    @property
    def details(self) -> list[dict]:
        return [{"outcome": self.outcome}]


@dataclass(frozen=True)
class SqlResult:
    columns: list[dict]  # [{"name": ..., "type": ...}]
    rows: list[list]
    truncated: bool
    row_cap: int
    ms: float
    snapshot_at: str

    def to_json_dict(self) -> dict:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "row_cap": self.row_cap,
            "ms": round(self.ms, 3),
            "snapshot_at": self.snapshot_at,
        }


# --- wall 1: DuckDB's parser -------------------------------------------------------------------------


def check_read_only(sql: str, parser: duckdb.DuckDBPyConnection) -> SqlRefusal | None:
    """None when ``sql`` is exactly one SELECT-type statement per DuckDB's own parser, else why not."""
    try:
        statements = parser.extract_statements(sql)
    except duckdb.Error as exc:
        return SqlRefusal("sql_syntax", f"SQL syntax error: {_first_lines(exc)}", "refused")
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


def build_snapshot(writer: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Copy the store into ``target`` (a new DuckDB file) from one consistent MVCC read on the writer instance.

    Schema first (tables, views, comments, sequences), then secret columns are dropped from the empty
    copy, then every table's data in ONE transaction (a consistent cut across tables; writers are not
    blocked). The sandbox can read its own snapshot file's bytes (DuckDB allows access to attached
    database files), so secrets must never be written into it, not even into blocks freed later.
    """
    cur = writer.cursor()
    try:
        source = cur.execute("SELECT current_database()").fetchall()[0][0]
        alias = "sqlsnap_" + uuid.uuid4().hex[:12]
        cur.execute(f"ATTACH {literal(str(target))} AS {alias}")
        try:
            cur.execute(f'COPY FROM DATABASE "{source}" TO {alias} (SCHEMA)')
            for table, column in _SNAPSHOT_DROPS:
                has = cur.execute(
                    "SELECT count(*) FROM duckdb_columns() WHERE database_name = ? AND table_name = ? AND column_name = ?",
                    [alias, table, column],
                ).fetchall()[0][0]
                if has:
                    cur.execute(f'ALTER TABLE {alias}.main."{table}" DROP COLUMN "{column}"')
            columns = cur.execute(
                "SELECT schema_name, table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
                "WHERE database_name = ? AND NOT internal GROUP BY ALL ORDER BY ALL",
                [alias],
            ).fetchall()
            tables = {(r[0], r[1]) for r in cur.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [alias]).fetchall()}
            with transaction(cur):  # one MVCC cut across every table
                for schema, table, cols in columns:
                    if (schema, table) not in tables:  # views come with the schema
                        continue
                    col_list = ", ".join(quote_ident(c) for c in cols)
                    cur.execute(f"INSERT INTO {alias}.{quote_ident(schema)}.{quote_ident(table)} ({col_list}) "
                                f"SELECT {col_list} FROM {quote_ident(source)}.{quote_ident(schema)}.{quote_ident(table)}")
        finally:
            cur.execute(f"DETACH {alias}")
    finally:
        cur.close()


def open_sandbox(snapshot: Path, *, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A separate in-memory DuckDB instance reading ``snapshot`` READ_ONLY, with no file/network/config access."""
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": memory_limit,
            "threads": threads,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        },
    )
    con.execute(f"ATTACH {literal(str(snapshot))} AS {SNAPSHOT_CATALOG} (READ_ONLY)")
    con.execute("SET GLOBAL TimeZone = 'UTC'")  # P3: instants print in UTC whatever the host's TZ
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")  # last: nothing can be changed back
    return con


@dataclass
class _Snapshot:
    path: Path
    con: duckdb.DuckDBPyConnection
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
            con = open_sandbox(path, memory_limit=self.memory_limit, threads=self.threads)
            built_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            new = _Snapshot(path, con, generation, time.monotonic(), built_at)
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

    def checkout_snapshot(self, generation: int) -> tuple[Path, str, Callable[[], None]]:
        """(file, built_at, release): a consistent snapshot file for download; call release() when done."""
        snap = self._acquire(generation)
        if snap is None:
            raise SnapshotUnavailable("the SQL snapshot could not be built; see the server log")
        return snap.path, snap.built_at, lambda: self._release(snap)

    def run(self, sql: str, *, row_cap: int, time_limit_s: float, generation: int) -> SqlResult | SqlRefusal:
        """Parse-check, then run ``sql`` in the sandbox; a refusal is a value, never an exception."""
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
        try:
            cur = snap.con.cursor()
            timer = threading.Timer(time_limit_s, cur.interrupt)
            try:
                cur.execute(f"USE {SNAPSHOT_CATALOG}")
                query_started = time.perf_counter()
                timer.start()
                result = cur.execute(sql)
                description = result.description or []
                fetched = result.fetchmany(row_cap + 1)
                timer.cancel()
            except duckdb.InterruptException:
                return SqlRefusal(
                    "sql_timeout",
                    f"query stopped after the {time_limit_s:g} s time limit "
                    f"({time.perf_counter() - query_started:.1f} s)",
                    "timeout",
                )
            except duckdb.PermissionException as exc:
                return SqlRefusal(
                    "sql_access_denied",
                    "file, network, extension and configuration access is disabled for regulator SQL: "
                    + _first_lines(exc),
                    "denied",
                )
            except duckdb.InvalidInputException as exc:
                outcome = "denied" if "configuration has been locked" in str(exc) else "error"
                code = "sql_access_denied" if outcome == "denied" else "sql_error"
                return SqlRefusal(code, _first_lines(exc), outcome)
            except duckdb.Error as exc:
                return SqlRefusal("sql_error", f"{type(exc).__name__}: {_first_lines(exc)}", "error")
            finally:
                timer.cancel()
                cur.close()
            truncated = len(fetched) > row_cap
            rows = [[jsonable(v) for v in row] for row in fetched[:row_cap]]
            columns = [{"name": d[0], "type": str(d[1])} for d in description]
            return SqlResult(columns, rows, truncated, row_cap, (time.perf_counter() - started) * 1000, snap.built_at)
        finally:
            self._release(snap)


def _dispose(snap: _Snapshot) -> None:
    try:
        snap.con.close()
    finally:
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


def jsonable(value: object) -> object:
    """A DuckDB value as JSON: exact decimals as strings (P1), instants/dates in ISO-8601."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def _first_lines(exc: BaseException, limit: int = 3) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:limit])[:500]
