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

from settlement.core.sql import literal, quote_ident
from settlement.inputs import jsonl, normalise
from settlement.inputs.encoding import Decoded, TextFacts, TextTracker, as_utf8, not_text_reason
from settlement.inputs.xlsx_guard import check_zip  # also imported from here by errors_out

SNIFF_BYTES = 64 * 1024
HASH_CHUNK = 8 * 1024 * 1024
MAX_COLUMNS = 256  # a trade file has 10 columns; a header this wide is not one of ours
MAX_LINE_BYTES = 2_000_000  # DuckDB's max_line_size: a longer line is a damaged or binary file


@dataclass(frozen=True)
class FileFacts:
    """What we know of the bytes before reading them as a table."""

    path: Path
    sha256: str
    bytes: int
    file_format: str  # csv | parquet | jsonl | xlsx
    text: TextFacts | None = None  # CSV only: UTF-8 validity, ASCII, first NUL byte


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

    columns_sql: str
    from_sql: str
    blank_sql: str  # true when every cell of the file row is empty
    warnings: tuple[str, ...]
    first_row_number: int
    registered_view: str | None = None  # xlsx: a polars frame registered on the connection
    decoded: Decoded | None = None  # CSV: the UTF-8 file read (a transcoded temp copy for GB18030)
    needs_normalising: bool = False  # cells may need NFKC (not pure ASCII, or transcoded)

    @property
    def select_sql(self) -> str:
        return f"SELECT {self.columns_sql} FROM {self.from_sql}"

    @property
    def select_with_blank_sql(self) -> str:
        return f"SELECT {self.columns_sql}, {self.blank_sql} AS all_blank FROM {self.from_sql}"


def file_facts(path: Path) -> FileFacts:
    """Hash and size the file in chunks (never the whole file in memory) and detect its format."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        file_format = _detect_format(path, head)
        # CSV text is checked in the same pass: strict UTF-8, pure ASCII (nothing to NFKC), NUL bytes.
        tracker = TextTracker() if file_format == "csv" else None
        digest.update(head)
        size += len(head)
        if tracker:
            tracker.feed(head)
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if tracker:
                tracker.feed(chunk)
        if tracker:
            tracker.feed(b"", final=True)
    return FileFacts(path=path, sha256=digest.hexdigest(), bytes=size, file_format=file_format,
                     text=tracker.facts() if tracker else None)


def _detect_format(path: Path, head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "csv"


def _match_columns(
    names: list[str], required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[dict[str, str], tuple[str, ...]] | FileError:
    """Map contract column -> name in the file; list unknown columns as warnings."""
    if len(names) > MAX_COLUMNS:
        return FileError(f"row 1 (header) has {len(names)} columns, more than {MAX_COLUMNS}: "
                         "not a file of this kind (check that the right sheet or file was exported)")
    known = set(required) | set(optional)
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for name in names:
        norm = normalise.column_key(name)  # NFKC, trimmed, case-folded, spaces/-/_ alike, Chinese names
        if norm in mapping:
            return FileError(f"column {norm!r} appears more than once in the header "
                             f"({mapping[norm]!r} and {name!r})", column=norm)
        if norm in known:
            mapping[norm] = name
        else:
            unknown.append(name)
    missing = [col for col in required if col not in mapping]
    if missing:
        listed = ", ".join(missing)
        word = "column" if len(missing) == 1 else "columns"
        found = ", ".join(name.replace("\ufeff", "").strip() or "(empty)" for name in names)
        reason = f"missing required {word} {listed}; found: {found}"
        near = normalise.closest(missing[0], unknown)
        if near is not None:
            reason += f"; closest: {near.strip()!r}"
        return FileError(reason, column=missing[0])
    warnings = tuple(f"unknown column ignored: {name!r}" for name in unknown)
    return mapping, warnings


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
    """Match the header and describe how to read the file; reading errors surface when it is read.
    The caller closes the source (``close_source``): it may hold a transcoded temp file."""
    if facts.bytes == 0:
        return FileError("file is empty (0 bytes)")
    openers = {"csv": _open_csv, "parquet": _open_parquet, "jsonl": _open_jsonl, "xlsx": _open_xlsx}
    try:
        return openers[facts.file_format](con, facts, name, required, optional)
    except duckdb.Error as exc:
        return FileError(read_error_reason(facts, exc))


def close_source(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    if source.registered_view:
        con.unregister(source.registered_view)
    if source.decoded is not None:
        source.decoded.remove()


def read_error_reason(facts: FileFacts, exc: Exception) -> str:
    text = str(exc)
    if "Maximum line size" in text:
        line = text.split("line ", 1)[1].split()[0].strip(".:,") if "line " in text else "?"
        return (f"line {line} is longer than {MAX_LINE_BYTES:,} bytes: a damaged or binary file, not a CSV "
                "export (re-export it from the spreadsheet)")
    if facts.text is not None and facts.text.mixed_line_ends and "state machine" in text:
        # DuckDB takes the header's CR LF as every row's end; rows ending in a bare LF then fail to parse
        return (f"the file mixes line ends: {facts.text.crlf_lines:,} lines end in CR LF (as Excel writes) and "
                f"{facts.text.lf_lines - facts.text.crlf_lines:,} in a bare LF (rows appended by another tool?): "
                "open it in Excel and save it again as 'CSV UTF-8'")
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
    # Registries are small: every cell goes through NFKC; rows with every cell empty are counted and dropped
    # (rowids of the other rows do not move, so row numbers stay those of the file).
    normalise.install(con)
    columns = ", ".join(f"settle_nfkc({col}) AS {col}, {col} AS raw_{col}" for col in (*required, *optional))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {columns}, all_blank "
                    f"FROM ({source.select_with_blank_sql})")
    except READ_ERRORS as exc:
        return FileError(read_error_reason(facts, exc))
    finally:
        close_source(con, source)
    base = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {table}").fetchall()[0][0]
    changed = " + ".join(f"(coalesce({col} <> raw_{col}, false))::INTEGER" for col in (*required, *optional))
    blank, nfkc_cells = con.execute(
        f"SELECT count_if(all_blank), coalesce(sum(CASE WHEN NOT all_blank THEN {changed} END), 0) FROM {table}"
    ).fetchall()[0]
    con.execute(f"DELETE FROM {table} WHERE all_blank")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    if rows == 0:
        return FileError(NO_DATA_ROWS)
    warnings = source.warnings + normalise.warnings(nfkc_cells=int(nfkc_cells), blank_rows=int(blank))
    return StagedFile(table=table, rows=rows, warnings=warnings,
                      first_row_number=source.first_row_number, rowid_base=base)


NO_DATA_ROWS = "file has a header but no data rows"


def _select_list(mapping: dict[str, str], required: tuple[str, ...], optional: tuple[str, ...]) -> str:
    """Contract columns in contract order, as text; optional columns absent from the file are NULL."""
    parts = []
    for col in (*required, *optional):
        if col in mapping:
            parts.append(f"CAST({quote_ident(mapping[col])} AS VARCHAR) AS {col}")
        else:
            parts.append(f"CAST(NULL AS VARCHAR) AS {col}")
    return ", ".join(parts)


def _blank_sql(columns: list[str]) -> str:
    return "(" + " AND ".join(f"coalesce(trim(CAST({c} AS VARCHAR)), '') = ''" for c in columns) + ")"


def _open_csv(con, facts: FileFacts, name: str, required, optional) -> Source | FileError:
    path, text = facts.path, facts.text
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16/32 (Excel's "Unicode Text"): NULs are its zeros
        return FileError(not_text_reason(path))
    if text.nul_line is not None:
        return FileError(f"binary data, not CSV text: a NUL byte in line {text.nul_line}")
    if text.long_line == 1:
        return FileError(f"row 1 (header) is longer than {MAX_LINE_BYTES:,} bytes: not a CSV export")
    if text.long_line is not None:
        return FileError(f"line {text.long_line} is longer than {MAX_LINE_BYTES:,} bytes: a damaged or binary "
                         "file, not a CSV export (re-export it from the spreadsheet)")
    if b"\n" not in head and len(head) == SNIFF_BYTES:
        return FileError(f"row 1 (header) is longer than {SNIFF_BYTES // 1024} KiB: not a CSV export")
    decoded = as_utf8(path, text)
    if isinstance(decoded, str):
        return FileError(decoded)
    try:
        return _open_decoded_csv(decoded, name, required, optional,
                                 needs_normalising=decoded.temporary or not text.ascii)
    except BaseException:
        decoded.remove()
        raise


def _open_decoded_csv(decoded: Decoded, name: str, required, optional, *,
                      needs_normalising: bool) -> Source | FileError:
    with decoded.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    if first_line.startswith(b"\xef\xbb\xbf"):
        first_line = first_line[3:]
    header_text = first_line.decode("utf-8")  # decoded: valid UTF-8 (a cut multibyte char cannot end a line)
    if not header_text.strip():
        decoded.remove()
        return FileError("row 1 (header) is empty")
    names = next(csv.reader(io.StringIO(header_text)))
    matched = _match_columns(names, required, optional)
    if isinstance(matched, FileError):
        decoded.remove()
        return matched
    mapping, warnings = matched
    # Each header name gets a unique positional alias so odd names cannot clash inside DuckDB.
    aliases = {name: f"c{i}" for i, name in enumerate(names)}
    columns = "{" + ", ".join(f"{literal(aliases[n])}: 'VARCHAR'" for n in names) + "}"
    source = (
        f"read_csv({literal(str(decoded.path))}, header=true, auto_detect=false, columns={columns}, delim=',', "
        "quote='\"', escape='\"', strict_mode=true, null_padding=false, encoding='utf-8', "
        f"max_line_size={MAX_LINE_BYTES})"
    )
    alias_mapping = {col: aliases[name] for col, name in mapping.items()}
    return Source(_select_list(alias_mapping, required, optional), source, _blank_sql(list(aliases.values())),
                  decoded.warnings + warnings, 2, decoded=decoded,
                  needs_normalising=needs_normalising)


def _open_parquet(con, facts: FileFacts, name: str, required, optional) -> Source | FileError:
    source = f"read_parquet({literal(str(facts.path))})"
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    matched = _match_columns(names, required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    quoted = [quote_ident(n) for n in mapping.values()]
    return Source(_select_list(mapping, required, optional), source, _blank_sql(quoted), warnings, 1,
                  needs_normalising=True)


def _open_jsonl(con, facts: FileFacts, name: str, required, optional) -> Source | FileError:
    try:
        names = jsonl.keys(con, facts.path)
    except duckdb.Error as exc:
        return FileError(f"not JSON Lines (one JSON object per line): {_short(exc)}")
    matched = _match_columns(names, required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    # Every used key read as the text written, numbers included (jsonl.py: never through a double), under a
    # positional alias so odd key names cannot clash inside DuckDB.
    aliases = {key: f"c{i}" for i, key in enumerate(mapping.values())}
    alias_mapping = {col: aliases[key] for col, key in mapping.items()}
    return Source(_select_list(alias_mapping, required, optional), jsonl.rows_sql(facts.path, aliases),
                  _blank_sql(list(aliases.values())), warnings, 1, needs_normalising=True)


def _open_xlsx(con, facts: FileFacts, name: str, required, optional) -> Source | FileError:
    refused = check_zip(facts.path)  # counts what really inflates, before calamine inflates anything
    if refused:
        return FileError(refused)
    try:
        frame = pl.read_excel(facts.path, sheet_id=1, infer_schema_length=0)
    except Exception as exc:  # calamine raises its own types for corrupt workbooks
        return FileError(f"cannot read the file as an .xlsx workbook: {str(exc).splitlines()[0][:300]}")
    matched = _match_columns(list(frame.columns), required, optional)
    if isinstance(matched, FileError):
        return matched
    mapping, warnings = matched
    blank = pl.all_horizontal([pl.col(c).cast(pl.Utf8).str.strip_chars().fill_null("") == "" for c in frame.columns])
    frame = frame.select(
        [pl.col(mapping[col]).cast(pl.Utf8).alias(col) if col in mapping else pl.lit(None, pl.Utf8).alias(col)
         for col in (*required, *optional)] + [blank.alias("__all_blank")]
    )
    view = f"{name}_xlsx"
    con.register(view, frame)
    return Source(", ".join((*required, *optional)), view, "__all_blank", warnings, 2, registered_view=view,
                  needs_normalising=True)
