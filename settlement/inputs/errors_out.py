"""The rejected rows of an upload, back in the operator's own columns (`settle ingest --errors-out`).

Owns one export: every row of the uploaded file that has an entry in ``rejected_rows``, with the file's
own columns (all of them, as written, in file order) plus ``error_column`` and ``error_reason`` (a row with
several errors lists them joined by "; "). CSV is written as UTF-8 with a BOM (Excel's "CSV UTF-8"), xlsx
with xlsxwriter, every cell a string (never a formula, never a number that Excel could round). Must not
import ``api`` or ``settlement.cli``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import duckdb
import polars as pl

from settlement.core.errors import UserError
from settlement.core.sql import literal, temp_tables
from settlement.inputs.common import FORMULA_STARTS, UploadReport
from settlement.inputs.encoding import as_utf8
from settlement.inputs.tabular import check_zip, file_facts

EXTRA_COLUMNS = ("error_column", "error_reason")


def _original_rows(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], str, int]:
    """Temp table ``table`` (c0..cn as text, file order) and the header names; its first row number."""
    facts = file_facts(path)
    cleanup = None
    if facts.file_format == "csv":
        decoded = as_utf8(path, facts.text)
        if isinstance(decoded, str):
            raise UserError(decoded)
        cleanup = decoded
        with decoded.path.open("r", encoding="utf-8-sig", newline="") as handle:
            names = next(csv.reader(handle))
        columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
        source = (f"read_csv({literal(str(decoded.path))}, header=true, auto_detect=false, columns={columns}, "
                  "delim=',', quote='\"', escape='\"', strict_mode=false, null_padding=true)")
        first = 2
    elif facts.file_format == "xlsx":
        refused = check_zip(path)
        if refused:
            raise UserError(refused)
        frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0)
        names = list(frame.columns)
        frame = frame.select([pl.col(n).cast(pl.Utf8).alias(f"c{i}") for i, n in enumerate(names)])
        source, first = f"{table}_frame", 2
        con.register(source, frame)
    else:
        reader = "read_parquet" if facts.file_format == "parquet" else "read_json"
        opts = "" if facts.file_format == "parquet" else ", format='newline_delimited', records=true"
        source = f"{reader}({literal(str(path))}{opts})"
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        cols = ", ".join(f'CAST("{n.replace(chr(34), chr(34) * 2)}" AS VARCHAR) AS c{i}' for i, n in enumerate(names))
        source, first = f"(SELECT {cols} FROM {source})", 1
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {source}")
    finally:
        if facts.file_format == "xlsx":
            con.unregister(source)
        if cleanup is not None:
            cleanup.remove()
    base = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {table}").fetchall()[0][0]
    return names, f"(rowid - {base} + {first})", len(names)


def write_rejected_rows(con: duckdb.DuckDBPyConnection, upload_id: int, path: Path, out: Path) -> int:
    """Write the rejected rows of upload ``upload_id`` (read again from ``path``) to ``out``; returns rows."""
    with temp_tables(con, "errors_out_src") as t:  # this export's own copy of the file, dropped after
        names, rn, width = _original_rows(con, path, t["errors_out_src"])
        rows = con.execute(
            f"""
            WITH e AS (SELECT row_number, string_agg(coalesce(column_name, ''), '; ' ORDER BY column_name, reason)
                              AS error_column,
                              string_agg(reason, '; ' ORDER BY column_name, reason) AS error_reason
                       FROM rejected_rows WHERE upload_id = ? AND row_number IS NOT NULL GROUP BY row_number)
            SELECT {', '.join(f's.c{i}' for i in range(width))}, e.error_column, e.error_reason
            FROM (SELECT {rn} AS rn, * FROM {t["errors_out_src"]}) s JOIN e ON e.row_number = s.rn ORDER BY s.rn
            """, [upload_id]).fetchall()
    header = [n.replace("\ufeff", "") for n in names] + list(EXTRA_COLUMNS)
    if out.suffix.lower() == ".xlsx":
        _write_xlsx(out, header, rows)
    else:
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([_inert(value) for value in row] for row in rows)
    return len(rows)


def _inert(value: str | None) -> str | None:
    """A CSV cell Excel would run as a formula (issue 15 item 5: the rejected rows are exactly where a refused
    ``=...`` id sits, and the API serves them to regulators too) gets a leading apostrophe (OWASP's advice);
    xlsx needs none: its cells are strings."""
    if value and value[0] in FORMULA_STARTS:
        return "'" + value
    return value


def kept_rejected_rows_path(folder: Path, upload_id: int, file_format: str) -> Path:
    """Where a server keeps an upload's rejected rows: xlsx for an xlsx upload, else CSV (Excel opens both)."""
    return folder / f"upload-{upload_id}-rejected-rows{'.xlsx' if file_format == 'xlsx' else '.csv'}"


def find_kept_rejected_rows(folder: Path, upload_id: int) -> Path | None:
    for file_format in ("xlsx", "csv"):
        kept = kept_rejected_rows_path(folder, upload_id, file_format)
        if kept.is_file():
            return kept
    return None


def keep_rejected_rows(con: duckdb.DuckDBPyConnection, report: UploadReport, path: Path, folder: Path,
                       file_format: str | None = None) -> Path | None:
    """Server side, while the spooled upload of ``report`` still exists: write its rejected rows next to the
    store so the report can link to them (the spooled file itself is removed), as ``file_format`` (default:
    the upload's). None when the upload rejected no row (stored or duplicate; a whole-file error has no rows
    to give back) or the file cannot be read again."""
    if report.status not in ("rejected", "partial"):
        return None
    upload_id, file_format = report.upload_id, file_format or report.file_format
    has_rows = con.execute("SELECT count(*) FROM rejected_rows WHERE upload_id = ? AND row_number IS NOT NULL",
                           [upload_id]).fetchall()[0][0]
    if not has_rows:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    out = kept_rejected_rows_path(folder, upload_id, file_format)
    partial = out.with_name("." + out.name)  # same suffix: the writer picks the format from it
    try:
        write_rejected_rows(con, upload_id, path, partial)
    except UserError:
        partial.unlink(missing_ok=True)
        return None
    os.replace(partial, out)  # a reader never sees half a file
    return out


def _write_xlsx(out: Path, header: list[str], rows: list[tuple]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(out), {"strings_to_formulas": False, "strings_to_numbers": False,
                                              "strings_to_urls": False})
    try:
        sheet = workbook.add_worksheet("rejected rows")
        text = workbook.add_format({"num_format": "@"})  # the columns stay Text when the operator edits them
        for col, name in enumerate(header):
            sheet.write_string(0, col, name)
            sheet.set_column(col, col, 20, text)
        for r, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
                if value is not None:
                    sheet.write_string(r, col, str(value), text)
    finally:
        workbook.close()
