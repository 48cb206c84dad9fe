"""What the trade-file ingest modules share (CONTRACT "Trades"): the contract columns and limits, the row
error and upload report types, the process-wide writer lock and the names of one ingest's TEMP tables
(SQL rendering, literals and the store transaction are ``settlement.core.sql``'s).

Imported through ``settlement.inputs.ingest``, which re-exports every public name here. Must not import
``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Callable, Iterator

import duckdb

from settlement.core.sql import literal, temp_tables

REQUIRED = ("trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at", "amount")
OPTIONAL = ("currency", "kind", "ref_trade_id")
REPORT_ERROR_LIMIT = 1000  # CONTRACT: the first 1,000 bad rows in full, the rest counted
MAX_AMOUNT = "999999999999.99"
TEXT_ID_MAX = 64

# Issue 15 item 5: a cell starting with one of these is run as a formula by Excel and LibreOffice when an
# export is opened (CSV injection). Ids are refused at load, after NFKC and trimming like every check, so
# no stored id can reach a payouts or ledger CSV as a formula.
FORMULA_STARTS = {"=": "'='", "+": "'+'", "-": "'-'", "@": "'@'", "\t": "a tab", "\r": "a carriage return"}


def formula_sql(col: str) -> str:
    """SQL: true when the (normalised, trimmed) id in ``col`` starts like a spreadsheet formula."""
    return f"(left({col}, 1) IN ({', '.join(f'chr({ord(char)})' for char in FORMULA_STARTS)}))"


def formula_reason_sql(col: str, name: str) -> str:
    """SQL: the reason for a formula id in ``col``, naming its first character (tab and CR by name)."""
    first = "CASE left({c}, 1) " + " ".join(
        f"WHEN chr({ord(char)}) THEN {literal(shown)}" for char, shown in FORMULA_STARTS.items()) + " END"
    return (f"'{name} starts with ' || {first.replace('{c}', col)} || ': spreadsheets would run it as a "
            "formula when an export is opened; ids may not start with =, +, -, @, a tab or a carriage return'")


# One writer at a time inside a process: the checks and the insert must see the same store.
INGEST_LOCK = threading.Lock()

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RowError:
    row_number: int | None
    column: str | None
    value: str | None
    reason: str


_TAIL = ("errors", "errors_total", "warnings", "file_error")


def report_json(report) -> dict:
    """A file report (upload or registry load) as JSON-ready data: lists, not tuples; the errors last."""
    data = asdict(report)
    tail = {name: data.pop(name) for name in _TAIL}
    return data | tail | {"errors": list(tail["errors"]), "warnings": list(tail["warnings"])}


@dataclass(frozen=True, kw_only=True)
class FileReport:
    """What every file report carries after its own counts: the errors of the first rows (``errors``, at most
    REPORT_ERROR_LIMIT rows' worth), how many errors in all, the normalisations applied, a whole-file error."""

    errors: tuple[RowError, ...] = ()
    errors_total: int = 0
    warnings: tuple[str, ...] = ()
    file_error: str | None = None

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"  # type: ignore[attr-defined]  (every report has a status)

    def to_json_dict(self) -> dict:
        return report_json(self)


@dataclass(frozen=True)
class UploadReport(FileReport):
    upload_id: int
    file_name: str
    sha256: str
    bytes: int
    file_format: str
    status: str  # stored | partial | rejected | duplicate (same bytes as a live upload, nothing stored)
    rows_read: int
    rows_stored: int
    rows_duplicate: int
    rows_rejected: int
    accept_valid: bool
    duplicate_of: int | None = None

    def to_json_dict(self) -> dict:
        return report_json(self) | {"errors_truncated": self.errors_total > len(self.errors)}


@dataclass(frozen=True)
class IngestTables:
    """The TEMP tables and views of one trade ingest (full path), unique to the call: the stages read and
    write these names, never fixed ones, so two ingests on one connection cannot see each other's rows.
    ``slots()`` fills the ``{staging_t}``-style slots of the stages' SQL."""

    staging_t: str  # parsed rows with ``ok`` and the raw text of the failed ones
    staging: str  # view: staging_t with the file row number ``rn``
    distinct_codes: str
    bad_codes: str
    row_errors: str  # row x column x reason of the row checks
    repeated_keys: str
    repeats: str
    stored_match: str
    set_errors: str  # errors found across rows: repeats, conflicts, refunds
    held_back: str
    candidates: str  # view: the rows to store
    refund_checks: str
    source_view: str  # the name an xlsx reader registers its frame under (``close_source`` unregisters it)

    def slots(self) -> dict[str, str]:
        return asdict(self)


@contextmanager
def ingest_tables(con: duckdb.DuckDBPyConnection) -> Iterator[IngestTables]:
    """The names of one ingest's TEMP tables (a fresh prefix), every one dropped on exit whatever happens."""
    with temp_tables(con, *(f.name for f in fields(IngestTables))) as names:
        yield IngestTables(**names)
