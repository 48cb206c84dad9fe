"""API settings (pydantic-settings, environment prefix ``SETTLE_``).

Owns only configuration values; must not import the app, the routes or any settlement module.
``SETTLE_DB`` is the same variable the CLI reads (CONTRACT "Command line").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETTLE_", extra="ignore")

    db: Path = Field(Path("settlement.duckdb"), description="DuckDB file the server owns (the one writer).")
    memory_limit: str = Field(
        "2GB", description="DuckDB memory limit of the store (uploads, runs); beyond it DuckDB spills to <db>.tmp."
    )
    upload_max_bytes: int = Field(4 * 1024**3, gt=0, description="Largest accepted upload body; beyond it 413.")
    upload_dir: Path | None = Field(
        None, description="Where uploads are spooled before ingest (default: <db>.uploads next to the database)."
    )
    upload_chunk_bytes: int = Field(1024 * 1024, gt=0, description="Read/write chunk size of upload streaming.")
    sql_time_limit_s: float = Field(10.0, gt=0, description="A regulator query is interrupted after this long.")
    sql_row_cap: int = Field(10_000, gt=0, description="At most this many rows are returned; more sets truncated.")
    sql_memory_limit: str = Field("1GB", description="Memory limit of the SQL sandbox (a separate DuckDB instance).")
    sql_threads: int = Field(1, gt=0, description="Threads of the SQL sandbox, so one query cannot take every core.")
    sql_byte_cap: int = Field(
        16 * 1024**2, gt=0, description="At most this many bytes of rows (their JSON) are returned; more sets truncated."
    )
    sql_process_memory_bytes: int = Field(
        2 * 1024**3, gt=0,
        description="Address-space cap (RLIMIT_AS) of each regulator-SQL worker process; beyond it 400 sql_too_big.",
    )
    sql_max_concurrent: int = Field(
        2, gt=0, description="Regulator queries running at once; more wait up to the time limit, then 429."
    )
    sql_snapshot_max_age_s: float = Field(
        30.0, ge=0, description="The SQL snapshot is rebuilt when data changed through the API, or when older than this."
    )

    sql_snapshot_wait_s: float = Field(
        2.0, ge=0, description="How long a query waits for a snapshot rebuild before reading the previous one."
    )

    session_lifetime_s: float = Field(
        8 * 3600, gt=0, description="Web console: a session ends this long after sign-in (server-side, in memory)."
    )
    session_idle_s: float = Field(
        30 * 60, gt=0, description="Web console: a session also ends after this long without a request."
    )
    login_max_attempts: int = Field(
        10, gt=0, description="Web console: sign-in attempts allowed per client address within login_window_s."
    )
    login_window_s: float = Field(60.0, gt=0, description="Web console: the window of login_max_attempts.")
    console_page_rows: int = Field(100, gt=0, description="Web console: SQL result rows shown per page.")

    def resolved_upload_dir(self) -> Path:
        return self.upload_dir or self.db.with_name(self.db.name + ".uploads")

    def rejected_rows_dir(self) -> Path:
        """Rejected rows of API uploads, in the file's own columns, kept for the report's link (issue 10)."""
        return self.resolved_upload_dir() / "rejected-rows"

    def snapshot_dir(self) -> Path:
        return self.db.with_name(self.db.name + ".sqlsnap")
