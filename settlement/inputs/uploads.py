"""Uploads already made: list, get, retract (P9). Must not import ``api``, ``settlement.cli`` or ``ledgers``."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from settlement.core.errors import UserError
from settlement.inputs.common import INGEST_LOCK


@dataclass(frozen=True)
class UploadSummary:
    id: int
    file_name: str
    sha256: str
    bytes: int
    status: str
    rows_read: int
    rows_stored: int
    rows_duplicate: int
    rows_rejected: int
    uploaded_by: str
    uploaded_at: str
    retracted_at: str | None = None
    platform_ids: tuple[str, ...] = field(default=())



_SUMMARY_SQL = """
SELECT u.id, u.file_name, u.sha256, u.bytes, u.status, u.rows_read, u.rows_stored, u.rows_duplicate,
       u.rows_rejected, u.uploaded_by, strftime(u.uploaded_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'),
       strftime(u.retracted_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'),
       coalesce((SELECT list(DISTINCT platform_id ORDER BY platform_id) FROM trade_rows t WHERE t.upload_id = u.id), [])
FROM uploads u
"""


def _summary(row: tuple) -> UploadSummary:
    return UploadSummary(*row[:12], platform_ids=tuple(row[12]))


def list_uploads(con: duckdb.DuckDBPyConnection) -> list[UploadSummary]:
    return [_summary(row) for row in con.execute(_SUMMARY_SQL + " ORDER BY u.id").fetchall()]


def get_upload(con: duckdb.DuckDBPyConnection, upload_id: int) -> UploadSummary:
    rows = con.execute(_SUMMARY_SQL + " WHERE u.id = ?", [upload_id]).fetchall()
    if not rows:
        raise UserError(f"no upload with id {upload_id}", code="not_found")
    return _summary(rows[0])


def retract_upload(con: duckdb.DuckDBPyConnection, upload_id: int, *, by: str) -> UploadSummary:
    """Mark an upload retracted (P9): its trades stay stored for audit and count for nothing."""
    with INGEST_LOCK:
        current = get_upload(con, upload_id)
        if current.status == "retracted":
            raise UserError(f"upload {upload_id} is already retracted", code="conflict")
        if current.status == "rejected":
            raise UserError(f"upload {upload_id} was rejected and stored no trades: nothing to retract",
                            code="conflict")
        con.execute(
            "UPDATE uploads SET status = 'retracted', retracted_at = now(), retracted_by = ? WHERE id = ?",
            [by, upload_id],
        )
    return get_upload(con, upload_id)
