"""Trade-file ingestion (CONTRACT "Trades"): stage → validate → classify → store, all set-based in DuckDB.

Owns the tables ``uploads``, ``trade_rows`` (read through the ``trades`` view) and ``rejected_rows``, and the
two store transactions of an upload. A clean plain UTF-8 CSV takes the typed fast path (``fast.py``: read
once straight into ``trade_rows``, the set checks on the inserted rows, all in one transaction); anything
else, or a file the fast path finds unclean (it rolls back), takes the full diagnostic path: ``parse.py``
(rows parsed and normalised into temp tables, row errors), ``classify.py`` (repeats, duplicates, conflicts,
refunds), then one transaction. Either way a crash or a rejection leaves the trades exactly as they were.
The modules' public names are re-exported here (``ingest.ingest_file``, ``ingest.UploadReport``,
``ingest.list_uploads`` ...). Must not import ``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from settlement.core.sql import render, transaction
from settlement.inputs import digests, fast
from settlement.inputs.classify import classify_rows, first_errors, upload_counts
from settlement.inputs.common import (  # noqa: F401  (re-exported for importers of ingest)
    INGEST_LOCK, MAX_AMOUNT, OPTIONAL, REPORT_ERROR_LIMIT, REQUIRED, TEXT_ID_MAX, IngestTables, Progress, RowError,
    UploadReport, ingest_tables, report_json,
)
from settlement.inputs.parse import Parsed, parse_and_check_rows  # noqa: F401
from settlement.inputs.tabular import (
    NO_DATA_ROWS, READ_ERRORS, FileError, FileFacts, Source, close_source, file_facts, open_source,
    read_error_reason,
)
from settlement.inputs.uploads import UploadSummary, get_upload, list_uploads, retract_upload  # noqa: F401

_INGEST_LOCK = INGEST_LOCK

_STORE_TRADES_SQL = """
INSERT INTO trade_rows (trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at, local_date, amount,
                        currency, kind, ref_trade_id, upload_id, row_number)
SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at, local_date, amount,
       currency, kind, ref_trade_id, ?, rn
FROM {candidates}
"""


def _find_live_upload_by_hash(con: duckdb.DuckDBPyConnection, sha256: str, platform_scope: str | None) -> int | None:
    """The first live upload of these bytes that the uploader may see (issue 16): with a platform scope (an
    operator), only an upload whose stored trades are all of that platform (``uploads.platform_id``); without
    one (regulator, CLI), any. Another platform's upload never matches: its file goes through the row checks,
    where every row of a foreign platform is an error, so a replayed file learns nothing of the other upload."""
    rows = con.execute(
        "SELECT id FROM uploads WHERE sha256 = $sha AND status IN ('stored', 'partial') AND retracted_at IS NULL "
        "AND ($scope IS NULL OR platform_id = $scope) ORDER BY id LIMIT 1",
        dict(sha=sha256, scope=platform_scope),
    ).fetchall()
    return rows[0][0] if rows else None


def _next_upload_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT nextval('upload_id_seq')").fetchall()[0][0]


def _peek_upload_id(con: duckdb.DuckDBPyConnection) -> int:
    """The id the next nextval will give, without taking it (a rolled-back fast path must not use one up)."""
    last, start, step = con.execute(
        "SELECT last_value, start_value, increment_by FROM duckdb_sequences() "
        "WHERE sequence_name = 'upload_id_seq' AND database_name = current_database()").fetchall()[0]
    return start if last is None else last + step


def _insert_upload_row(con, upload_id: int, facts: FileFacts, file_name: str, status: str, counts: tuple,
                       uploaded_by: str, accept_valid: bool, file_error: str | None) -> None:
    rows_read, rows_stored, rows_duplicate, rows_rejected = counts
    con.execute(
        """
        INSERT INTO uploads (id, file_name, sha256, bytes, file_format, rows_read, rows_stored, rows_duplicate,
                             rows_rejected, status, uploaded_by, uploaded_at, accept_valid, file_error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)
        """,
        [upload_id, file_name, facts.sha256, facts.bytes, facts.file_format, rows_read, rows_stored,
         rows_duplicate, rows_rejected, status, uploaded_by, accept_valid, file_error],
    )

def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    *,
    file_name: str | None = None,
    uploaded_by: str,
    accept_valid: bool = False,
    platform_scope: str | None = None,
    progress: Progress | None = None,
) -> UploadReport:
    """Load one trade file. Bad data comes back in the report; the store changes in one transaction or not at all."""
    path = Path(path)
    file_name = Path(file_name or path.name).name
    step = progress or (lambda _stage: None)
    step("hashing")
    facts = file_facts(path)
    # Staging and checks run on temp tables outside the transaction (transaction-local temp tables are
    # slow); the lock keeps other writers of this process out until the store transaction commits. The
    # tables' names are this call's own and ``ingest_tables`` drops them whatever happens.
    with INGEST_LOCK, ingest_tables(con) as tables:
        report = _ingest_locked(con, _Upload(facts, file_name, uploaded_by, accept_valid, platform_scope), tables,
                                step)
    step("done")
    return report


class _Upload:
    """What one ingest_file call was given."""

    def __init__(self, facts: FileFacts, file_name: str, uploaded_by: str, accept_valid: bool,
                 platform_scope: str | None) -> None:
        self.facts, self.file_name, self.uploaded_by = facts, file_name, uploaded_by
        self.accept_valid, self.platform_scope = accept_valid, platform_scope

    def report(self, upload_id: int, status: str, counts: tuple[int, int, int, int], **extra) -> UploadReport:
        f = self.facts
        return UploadReport(upload_id, self.file_name, f.sha256, f.bytes, f.file_format, status, *counts,
                            accept_valid=self.accept_valid, **extra)


def _reject_file(con, up: _Upload, error: FileError) -> UploadReport:
    with transaction(con):
        upload_id = _next_upload_id(con)
        _insert_upload_row(con, upload_id, up.facts, up.file_name, "rejected", (0, 0, 0, 0), up.uploaded_by,
                           up.accept_valid, error.reason)
        con.execute("INSERT INTO rejected_rows VALUES (?, NULL, ?, NULL, ?)", [upload_id, error.column, error.reason])
    return up.report(upload_id, "rejected", (0, 0, 0, 0), file_error=error.reason)


def _ingest_locked(con, up: _Upload, tables: IngestTables, step: Progress) -> UploadReport:
    facts = up.facts
    earlier = _find_live_upload_by_hash(con, facts.sha256, up.platform_scope)
    if earlier is not None:
        row = con.execute(
            "SELECT rows_read, rows_stored, rows_duplicate, rows_rejected FROM uploads WHERE id = ?", [earlier]
        ).fetchall()[0]
        return up.report(earlier, "duplicate", tuple(row), duplicate_of=earlier)
    step("reading")
    source = open_source(con, facts, required=REQUIRED, optional=OPTIONAL, name=tables.source_view)
    if isinstance(source, FileError):
        return _reject_file(con, up, source)
    try:
        if fast.qualifies(facts, source):
            report = _store_fast(con, up, source, step)
            if report is not None:
                return report
        parsed = _parse(con, facts, source, up.platform_scope, tables)
    finally:
        close_source(con, source)
    if isinstance(parsed, FileError):
        return _reject_file(con, up, parsed)
    return _classify_and_store(con, up, tables, source.warnings + parsed.warnings, step)


def _parse(con, facts: FileFacts, source: Source, platform_scope: str | None,
           tables: IngestTables) -> Parsed | FileError:
    try:
        parsed = parse_and_check_rows(con, source, platform_scope=platform_scope, tables=tables)
    except READ_ERRORS as exc:
        return FileError(read_error_reason(facts, exc))
    return parsed if parsed.rows else FileError(NO_DATA_ROWS)


def _store_fast(con, up: _Upload, source: Source, step: Progress) -> UploadReport | None:
    """The typed fast path in one transaction: stored, or rolled back (None) for the full path."""
    upload_id = _peek_upload_id(con)
    try:
        with transaction(con):
            rows = fast.insert_clean(con, source, upload_id, platform_scope=up.platform_scope, step=step)
            step("storing")
            if _next_upload_id(con) != upload_id:  # another writer took the id: let the full path number it
                raise fast.NotClean("upload id taken")
            _insert_upload_row(con, upload_id, up.facts, up.file_name, "stored", (rows, rows, 0, 0), up.uploaded_by,
                               up.accept_valid, None)
            con.execute("UPDATE uploads SET platform_id = ? WHERE id = ?",
                        [fast.upload_platform(con, upload_id), upload_id])
            digests.record(con, "upload", upload_id)  # issue 15: the rows it stored, covered by the runs' chain
    except fast.NotClean:
        return None
    return up.report(upload_id, "stored", (rows, rows, 0, 0), warnings=source.warnings)


def _classify_and_store(con, up: _Upload, tables: IngestTables, warnings: tuple[str, ...],
                        step: Progress) -> UploadReport:
    step("validating")
    classify_rows(con, tables)
    counts = upload_counts(con, tables)
    rows_duplicate = counts.rows_read - counts.rows_rejected - counts.rows_new
    errors = first_errors(con, tables, REPORT_ERROR_LIMIT)
    if counts.rows_rejected and not up.accept_valid:
        status, rows_stored, rows_duplicate = "rejected", 0, 0
    else:
        status, rows_stored = ("partial" if counts.rows_rejected else "stored"), counts.rows_new
    totals = (counts.rows_read, rows_stored, rows_duplicate, counts.rows_rejected)
    step("storing")
    with transaction(con):
        upload_id = _next_upload_id(con)
        _insert_upload_row(con, upload_id, up.facts, up.file_name, status, totals, up.uploaded_by,
                           up.accept_valid, None)
        con.execute(
            "INSERT INTO rejected_rows SELECT ?, row_number, column_name, value, reason FROM "
            f"(SELECT * FROM {tables.row_errors} UNION ALL SELECT * FROM {tables.set_errors}) "
            "ORDER BY row_number, column_name",
            [upload_id],
        )
        if status != "rejected":
            con.execute(render(_STORE_TRADES_SQL, tables.slots()), [upload_id])
            con.execute(render(_UPLOAD_PLATFORM_SQL, tables.slots()), [upload_id])
        digests.record(con, "upload", upload_id)  # issue 15: the rows it stored, covered by the runs' chain
    return up.report(upload_id, status, totals, errors=errors, errors_total=counts.error_total, warnings=warnings)


# uploads.platform_id (migration 0008): the one platform of the stored trades, else NULL.
_UPLOAD_PLATFORM_SQL = """
UPDATE uploads SET platform_id = (
  SELECT CASE WHEN count(DISTINCT platform_id) = 1 THEN min(platform_id) END FROM {candidates})
WHERE id = $1
"""
