"""Reading an uploaded tabular file (CSV, Parquet, JSON Lines, .xlsx) into a DuckDB staging table.

Owns the first stage of every load: format detection, header matching (case-insensitive, trimmed,
CONTRACT "Input files"), and the file-level errors (empty, binary, not UTF-8, missing column). Every
value is staged as text with its file row number, so validation can name the row and show the value as
the user wrote it. Must not import ``api`` or ``settlement.cli``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

SNIFF_BYTES = 64 * 1024
HASH_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileFacts:
    """What we know of the bytes before reading them as a table."""

    path: Path
    sha256: str
    bytes: int
    file_format: str  # csv | parquet | jsonl | xlsx


@dataclass(frozen=True)
class StagedFile:
    """A file read into ``table``: one VARCHAR column per contract column, rows in file order."""

    table: str
    rows: int
    warnings: tuple[str, ...]
    # Row number of the first data row: 2 for CSV/xlsx (the header is row 1, as a spreadsheet counts),
    # 1 for JSON Lines (line number) and Parquet (row index from 1).
    first_row_number: int
    rowid_base: int  # rowid of the first data row (temp tables do not number from 0)

    @property
    def row_number_sql(self) -> str:
        """SQL for the file row number of a staged row: rowid follows file order (insertion order kept)."""
        return f"(rowid - {self.rowid_base} + {self.first_row_number})"


@dataclass(frozen=True)
class FileError:
    """The whole file is refused; ``column`` names the missing or duplicated column when that is why."""

    reason: str
    column: str | None = None


@dataclass(frozen=True)
class Source:
    """A readable file as one SELECT of every contract column as text, in file order (not yet read)."""

    select_sql: str
    warnings: tuple[str, ...]
    first_row_number: int
    registered_view: str | None = None  # xlsx: a polars frame registered on the connection


def file_facts(path: Path) -> FileFacts:
    """Hash and size the file in chunks (never the whole file in memory) and detect its format."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        digest.update(head)
        size += len(head)
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileFacts(path=path, sha256=digest.hexdigest(), bytes=size, file_format=_detect_format(path, head))


def _detect_format(path: Path, head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "csv"


def normalise_name(name: str) -> str:
    return name.replace("\ufeff", "").strip().lower()


def _match_columns(
    names: list[str], required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[dict[str, str], tuple[str, ...]] | FileError:
    """Map contract column -> name in the file; list unknown columns as warnings."""
    known = set(required) | set(optional)
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for name in names:
        norm = normalise_name(name)
        if norm in mapping:
            return FileError(f"column {norm!r} appears more than once in the header", column=norm)
        if norm in known:
            mapping[norm] = name
        else:
            unknown.append(name)
    missing = [col for col in required if col not in mapping]
    if missing:
        listed = ", ".join(missing)
        word = "column" if len(missing) == 1 else "columns"
        return FileError(f"missing required {word}: {listed}", column=missing[0])
    warnings = tuple(f"unknown column ignored: {name!r}" for name in unknown)
    return mapping, warnings


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _short(exc: Exception) -> str:
    """DuckDB's messages carry hints and dumps after the first lines; keep what names the problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = [line for line in lines[:4] if not line.startswith(("Possible Solution", "*", "Original Line"))]
    return " ".join(kept)[:500]


def open_source(
    con: duckdb.DuckDBPyConnection,
    facts: FileFacts,
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    name: str = "source",
) -> Source | FileError:
    """Match the header and describe how to read the file; reading errors surface when it is read."""
    if facts.bytes == 0:
        return FileError("file is empty (0 bytes)")
    openers = {"csv": _open_csv, "parquet": _open_parquet, "jsonl": _open_jsonl, "xlsx": _open_xlsx}
    try:
        return openers[facts.file_format](con, facts.path, name, required, optional)
    except duckdb.Error as exc:
        return FileError(read_error_reason(facts, exc))


def close_source(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    if source.registered_view:
        con.unregister(source.registered_view)


def read_error_reason(facts: FileFacts, exc: Exception) -> str:
    return f"cannot read the file as {facts.file_format}: {_short(exc)}"


# DuckDB raises these for malformed file content (bad UTF-8, ragged rows, corrupt Parquet); binder
# and parser errors are bugs in our SQL and must not be reported as the user's fault.
READ_ERRORS = (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException)


def stage_file(
    con: duckdb.DuckDBPyConnection,
    facts: FileFacts,
    *,
    table: str,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> StagedFile | FileError:
    """Read the file into temp table ``table`` (one VARCHAR column per contract column, in file order)."""
    source = open_source(con, facts, required=required, optional=optional, name=table)
    if isinstance(source, FileError):
        return source
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {source.select_sql}")
    except READ_ERRORS as exc:
        return FileError(read_error_reason(facts, exc))
    finally:
        close_source(con, source)
    rows, base = con.execute(f"SELECT count(*), coalesce(min(rowid), 0) FROM {table}").fetchall()[0]
    if rows == 0:
        return FileError(NO_DATA_ROWS)
    return StagedFile(table=table, rows=rows, warnings=source.warnings,
                      first_row_number=source.first_row_number, rowid_base=base)


NO_DATA_ROWS = "file has a header but no data rows"


def _select_list(mapping: dict[str, str], required: tuple[str, ...], optional: tuple[str, ...]) -> str:
    """Contract columns in contract order, as text; optional columns absent from the file are NULL."""
    parts = []
    for col in (*required, *optional):
        if col in mapping:
            parts.append(f"CAST({_quote_ident(mapping[col])} AS VARCHAR) AS {col}")
        else:
            parts.append(f"CAST(NULL AS VARCHAR) AS {col}")
    return ", ".join(parts)


def _source(source_sql: str, select_list: str, first_row_number: int, warnings: tuple[str, ...],
            registered_view: str | None = None) -> Source:
    return Source(f"SELECT {select_list} FROM {source_sql}", warnings, first_row_number, registered_view)


def _open_csv(con, path: Path, name: str, required, optional) -> Source | FileError:
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\x00" in head:
        return FileError("binary data, not CSV text (a NUL byte in the first 64 KiB)")
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    if first_line.startswith(b"\xef\xbb\xbf"):
        first_line = first_line[3:]
    try:
        header_text = first_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return FileError(f"row 1 (header) is not UTF-8 text: byte 0x{first_line[exc.start]:02x} at offset {exc.start}")
    if not header_text.strip():
        return FileError("row 1 (header) is empty")
    names = next(csv.reader(io.StringIO(header_text)))
    matched = _match_columns(names, required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    # Each header name gets a unique positional alias so odd names cannot clash inside DuckDB.
    aliases = {name: f"c{i}" for i, name in enumerate(names)}
    columns = "{" + ", ".join(f"{_sql_str(aliases[n])}: 'VARCHAR'" for n in names) + "}"
    source = (
        f"read_csv({_sql_str(str(path))}, header=true, auto_detect=false, columns={columns}, delim=',', "
        "quote='\"', escape='\"', strict_mode=true, null_padding=false, encoding='utf-8')"
    )
    alias_mapping = {col: aliases[name] for col, name in mapping.items()}
    return _source(source, _select_list(alias_mapping, required, optional), 2, warnings)


def _open_parquet(con, path: Path, name: str, required, optional) -> Source | FileError:
    source = f"read_parquet({_sql_str(str(path))})"
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    matched = _match_columns(names, required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    return _source(source, _select_list(mapping, required, optional), 1, warnings)


def _open_jsonl(con, path: Path, name: str, required, optional) -> Source | FileError:
    probe = f"read_json({_sql_str(str(path))}, format='newline_delimited', records=true, sample_size=-1)"
    try:
        names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {probe}").fetchall()]
    except duckdb.Error as exc:
        return FileError(f"not JSON Lines (one JSON object per line): {_short(exc)}")
    matched = _match_columns(names, required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    # Read every used key as text so numbers keep the digits the operator wrote.
    columns = "{" + ", ".join(f"{_sql_str(name)}: 'VARCHAR'" for name in mapping.values()) + "}"
    source = f"read_json({_sql_str(str(path))}, format='newline_delimited', records=true, columns={columns})"
    return _source(source, _select_list(mapping, required, optional), 1, warnings)


def _open_xlsx(con, path: Path, name: str, required, optional) -> Source | FileError:
    try:
        frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0)
    except Exception as exc:  # calamine raises its own types for corrupt workbooks
        return FileError(f"cannot read the file as an .xlsx workbook: {str(exc).splitlines()[0][:300]}")
    matched = _match_columns(list(frame.columns), required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    frame = frame.select(
        [pl.col(mapping[col]).cast(pl.Utf8).alias(col) if col in mapping else pl.lit(None, pl.Utf8).alias(col)
         for col in (*required, *optional)]
    )
    view = f"{name}_xlsx"
    con.register(view, frame)
    return _source(view, ", ".join((*required, *optional)), 2, warnings, registered_view=view)
