"""The DuckDB store: one file, opened here, migrated forward here.

Owns: connection settings (memory bound, spill directory), the schema version and the forward
migrations in ``settlement/migrations/NNNN_*.sql``. Must not import the API or the CLI.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import duckdb

from settlement.core.sql import transaction

DEFAULT_DB = "settlement.duckdb"
# Bounded memory for big uploads and runs: DuckDB spills to the temp directory beyond this.
DEFAULT_MEMORY_LIMIT = os.environ.get("SETTLE_MEMORY_LIMIT", "2GB")


def resolve_db_path(db: str | os.PathLike[str] | None) -> Path:
    """--db, else $SETTLE_DB, else ./settlement.duckdb (CONTRACT "Command line")."""
    return Path(db or os.environ.get("SETTLE_DB") or DEFAULT_DB)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file, in version order."""
    found = []
    for entry in resources.files("settlement.core.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def connect(path: str | os.PathLike[str], *, read_only: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the store with bounded memory (``memory_limit``, else ``DEFAULT_MEMORY_LIMIT``); does not create
    or migrate it (see ``init``)."""
    path = Path(path)
    config = {"memory_limit": memory_limit or DEFAULT_MEMORY_LIMIT}
    if not read_only:
        config["temp_directory"] = str(path.with_name(path.name + ".tmp"))
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    # P3: results never depend on the host's time zone. Local dates are derived explicitly in SQL; pinning
    # the session zone of every connection (cursors too: GLOBAL) to UTC also fixes how instants print.
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    return con


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """First column of the first row. Always fetchall(): duckdb 2 refuses new work after a partial fetch."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = scalar(
        con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version' AND schema_name = 'main'"
    )
    if not exists:
        return 0
    return scalar(con, "SELECT coalesce(max(version), 0) FROM schema_version")


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration newer than the store, each in its own transaction. Returns versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    con.execute("COMMENT ON TABLE schema_version IS 'Applied schema migrations, one row each.'")
    con.execute("COMMENT ON COLUMN schema_version.version IS 'Migration number.'")
    con.execute("COMMENT ON COLUMN schema_version.name IS 'Migration file name.'")
    con.execute("COMMENT ON COLUMN schema_version.applied_at IS 'When it was applied.'")
    # Apply every migration not yet recorded (not only those above the highest): a migration merged
    # from a parallel branch with a lower number must still run on a store that has a higher one.
    done = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        with transaction(con):
            con.execute(sql)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
        applied.append(version)
    return applied


def init(path: str | os.PathLike[str]) -> tuple[int, list[int]]:
    """Create the store if missing and migrate it forward. Returns (version, versions applied)."""
    con = connect(path)
    try:
        applied = migrate(con)
        return schema_version(con), applied
    finally:
        con.close()


class StoreNotInitialised(Exception):
    """The database file does not exist or has no schema: run `settle init`."""


def open_store(path: str | os.PathLike[str], *, read_only: bool = False,
               memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open an initialised store, migrating it forward when opened for writing."""
    path = Path(path)
    if not path.exists():
        raise StoreNotInitialised(f"no database at {path}: run `settle init --db {path}` first")
    con = connect(path, read_only=read_only, memory_limit=memory_limit)
    if read_only:
        if schema_version(con) == 0:
            con.close()
            raise StoreNotInitialised(f"{path} has no schema: run `settle init --db {path}` first")
        return con
    if schema_version(con) == 0:
        con.close()
        raise StoreNotInitialised(f"{path} has no schema: run `settle init --db {path}` first")
    migrate(con)
    return con
