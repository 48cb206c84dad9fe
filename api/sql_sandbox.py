"""The DuckDB side of regulator SQL: the snapshot of the store, the sandbox over it, errors as refusals.

Wall 2 of ``api.sql_guard``: ``open_sandbox`` is a separate in-memory DuckDB instance that ATTACHes a
*snapshot* of the store READ_ONLY, then sets ``enable_external_access=false`` and
``lock_configuration=true``. It is opened by each SQL worker process (``api.sql_worker``), never by the
writer. ``build_snapshot`` runs on the writer instance. Must not import FastAPI, the routes or the app.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb

from api.sql_results import SqlRefusal, first_lines
from settlement.core.sql import literal, quote_ident, transaction

SNAPSHOT_CATALOG = "store"
# Columns never copied into the regulator's snapshot (secrets, even if hashed).
_SNAPSHOT_DROPS = (("api_tokens", "token_sha256"),)
TOO_BIG = "the query needed more memory than regulator SQL may use"


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


def refusal_for(exc: BaseException) -> SqlRefusal:
    """The 400 answer for an error the sandbox raised while running or fetching a query."""
    if isinstance(exc, (duckdb.OutOfMemoryException, MemoryError)):
        return SqlRefusal("sql_too_big", f"{TOO_BIG}: {first_lines(exc, 1)}", "too_big")
    if isinstance(exc, duckdb.InterruptException):
        return SqlRefusal("sql_timeout", "query stopped at the time limit", "timeout")
    if isinstance(exc, duckdb.PermissionException):
        return SqlRefusal(
            "sql_access_denied",
            "file, network, extension and configuration access is disabled for regulator SQL: " + first_lines(exc),
            "denied",
        )
    if isinstance(exc, duckdb.InvalidInputException):
        if "configuration has been locked" in str(exc):
            return SqlRefusal("sql_access_denied", first_lines(exc), "denied")
        return SqlRefusal("sql_error", first_lines(exc), "error")
    if isinstance(exc, duckdb.Error):
        return SqlRefusal("sql_error", f"{type(exc).__name__}: {first_lines(exc)}", "error")
    return SqlRefusal("sql_error", f"{type(exc).__name__}: {first_lines(exc)}", "error")
