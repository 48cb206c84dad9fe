"""Trade-file ingestion (CONTRACT "Trades"): stage → validate → classify → store, all set-based in DuckDB.

Owns the tables ``uploads``, ``trade_rows`` (read through the ``trades`` view) and ``rejected_rows``.
Every check is one SQL statement over the whole staged file; credit codes are checked in Python on
DISTINCT values only. Deduplication against the store is an anti-join on (platform_id, trade_id) over
live trades (no index). The upload is stored in ONE transaction, so a crash or a rejection leaves the
trades exactly as they were. Must not import ``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from settlement.core.errors import UserError
from settlement.core.identifiers import bad_identifiers_table
from settlement.core.localtime import local_date_sql
from settlement.inputs import digests, normalise
from settlement.inputs.tabular import (
    NO_DATA_ROWS, READ_ERRORS, FileError, FileFacts, Source, close_source, file_facts, open_source,
    read_error_reason,
)

REQUIRED = ("trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at", "amount")
OPTIONAL = ("currency", "kind", "ref_trade_id")
REPORT_ERROR_LIMIT = 1000  # CONTRACT: the first 1,000 bad rows in full, the rest counted
MAX_AMOUNT = "999999999999.99"
TEXT_ID_MAX = 64

# One writer at a time inside a process: the checks and the insert must see the same store.
_INGEST_LOCK = threading.Lock()

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RowError:
    row_number: int | None
    column: str | None
    value: str | None
    reason: str


def report_json(report) -> dict:
    """A file report (upload or registry load) as JSON-ready data: lists, not tuples."""
    data = asdict(report)
    data["errors"] = list(data["errors"])
    data["warnings"] = list(data["warnings"])
    return data


@dataclass(frozen=True)
class UploadReport:
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
    errors: tuple[RowError, ...] = ()
    errors_total: int = 0
    warnings: tuple[str, ...] = ()
    file_error: str | None = None
    duplicate_of: int | None = None

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    def to_json_dict(self) -> dict:
        return report_json(self) | {"errors_truncated": self.errors_total > len(self.errors)}


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


# --- stage 2: parse and row-level checks -------------------------------------------------------------

# Parsed, normalised columns plus raw text for reports. Timestamps: no offset = Asia/Shanghai (P3).
# {nfkc}, {amount_norm}, {ts_norm} are the identity on the fast path; on the slow path (a file that is not
# pure ASCII, was transcoded, or failed the fast parse) they apply the normalisations of
# settlement.inputs.normalise (CONTRACT "What real exports may contain").
_PARSED_CTE = r"""
s0 AS (
  SELECT {rn} AS rn, trade_id AS raw_trade_id, platform_id AS raw_platform_id, dataset_id AS raw_dataset_id,
         seller_id AS raw_seller_id, buyer_id AS raw_buyer_id, traded_at AS raw_traded_at, amount AS raw_amount,
         currency AS raw_currency, kind AS raw_kind, ref_trade_id AS raw_ref_trade_id,
         {nfkc}(trade_id) AS n_trade_id, {nfkc}(platform_id) AS n_platform_id, {nfkc}(dataset_id) AS n_dataset_id,
         {nfkc}(seller_id) AS n_seller_id, {nfkc}(buyer_id) AS n_buyer_id, {nfkc}(traded_at) AS n_traded_at,
         {nfkc}(amount) AS n_amount, {nfkc}(currency) AS n_currency, {nfkc}(kind) AS n_kind,
         {nfkc}(ref_trade_id) AS n_ref_trade_id {blank_col}
  FROM ({source})
), s1 AS (
  SELECT *, nullif(trim(n_traded_at), '') AS ts_given, nullif(trim(n_amount), '') AS amount_given FROM s0
), s AS (
  SELECT *,
         nullif(trim(n_trade_id), '') AS trade_id, {code_platform_id} AS platform_id,
         nullif(trim(n_dataset_id), '') AS dataset_id, {code_seller_id} AS seller_id,
         {code_buyer_id} AS buyer_id, {ts_norm} AS ts_text,
         {amount_norm} AS amount_text,
         coalesce(upper(nullif(trim(n_currency), '')), 'CNY') AS currency,
         coalesce(lower(nullif(trim(n_kind), '')), 'sale') AS kind,
         nullif(trim(n_ref_trade_id), '') AS ref_trade_id
  FROM s1
), p AS (
  SELECT *,
    regexp_full_match(ts_text, '\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?')
      AS ts_form,
    regexp_full_match(amount_text, '[0-9]{1,15}(\.[0-9]{1,2})?') AS amount_form
  FROM s
), parsed AS (
  SELECT *,
    -- P3: Asia/Shanghai is UTC+08:00 all year (no DST), so local = UTC + 8 hours exactly.
    -- After the minutes (16 characters) a '+', '-' or 'Z' can only start an offset.
    CASE WHEN NOT ts_form THEN NULL
         WHEN suffix(ts_text, 'Z') OR suffix(ts_text, 'z') OR contains(substr(ts_text, 17), '+')
              OR contains(substr(ts_text, 17), '-') THEN TRY_CAST(ts_text AS TIMESTAMPTZ)
         -- an explicit offset, never a cast from TIMESTAMP: that would read the session (host) time zone
         ELSE TRY_CAST(replace(ts_text, ' ', 'T') || '+08:00' AS TIMESTAMPTZ) END AS traded_at,
    CASE WHEN amount_form THEN CAST(amount_text AS DECIMAL(38,2)) END AS amount_wide
  FROM p
)
"""

# The slow path's counters, kept per row in staging_t for the report's warnings.
_NORM_COLUMNS = """, blank,
       (coalesce(n_trade_id <> raw_trade_id, false)::INTEGER + coalesce(n_platform_id <> raw_platform_id, false)::INTEGER
        + coalesce(n_dataset_id <> raw_dataset_id, false)::INTEGER + coalesce(n_seller_id <> raw_seller_id, false)::INTEGER
        + coalesce(n_buyer_id <> raw_buyer_id, false)::INTEGER + coalesce(n_traded_at <> raw_traded_at, false)::INTEGER
        + coalesce(n_amount <> raw_amount, false)::INTEGER + coalesce(n_currency <> raw_currency, false)::INTEGER
        + coalesce(n_kind <> raw_kind, false)::INTEGER + coalesce(n_ref_trade_id <> raw_ref_trade_id, false)::INTEGER)
         AS n_nfkc,
       coalesce(amount_text <> amount_given, false) AS amount_normalised,
       coalesce(ts_text <> ts_given, false) AS ts_normalised"""

# Read and parse in one pass straight from the file (no raw copy of good rows). Rows keep file order, so the
# file row number is derived from rowid in the ``staging`` view; bad rows keep their raw text in ``raw``.
_PARSE_SQL = """
CREATE OR REPLACE TEMP TABLE staging_t AS
SELECT * EXCLUDE (raw_trade_id, raw_platform_id, raw_dataset_id, raw_seller_id, raw_buyer_id, raw_traded_at, raw_amount, raw_currency, raw_kind, raw_ref_trade_id),
       CASE WHEN NOT ok THEN [raw_trade_id, raw_platform_id, raw_dataset_id, raw_seller_id, raw_buyer_id, raw_traded_at, raw_amount, raw_currency, raw_kind, raw_ref_trade_id] END AS raw
FROM (
WITH """ + _PARSED_CTE + """
SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at,
       {local_date} AS local_date,
       CAST(CASE WHEN amount_wide <= {max_amount} THEN amount_wide END AS DECIMAL(18,2)) AS amount,
       currency, kind, ref_trade_id,
       coalesce(trade_id IS NOT NULL AND length(trade_id) <= {id_max}
        AND platform_id IS NOT NULL AND dataset_id IS NOT NULL AND length(dataset_id) <= {id_max}
        AND seller_id IS NOT NULL AND buyer_id IS NOT NULL AND seller_id <> buyer_id
        AND traded_at IS NOT NULL AND amount_wide > 0 AND amount_wide <= {max_amount}
        AND currency = 'CNY' AND kind IN ('sale', 'refund')
        AND (CASE WHEN kind = 'refund' THEN ref_trade_id IS NOT NULL AND length(ref_trade_id) <= {id_max}
                  ELSE ref_trade_id IS NULL END)
        AND ({scope} IS NULL OR platform_id = {scope}), false) AS ok,
       raw_trade_id, raw_platform_id, raw_dataset_id, raw_seller_id, raw_buyer_id, raw_traded_at, raw_amount,
       raw_currency, raw_kind, raw_ref_trade_id {norm_columns}
FROM parsed)
"""

# The raw text of the rejected rows, under the contract names, for the error report.
_BAD_RAW_SOURCE = """SELECT rn, raw[1] AS trade_id, raw[2] AS platform_id, raw[3] AS dataset_id, raw[4] AS seller_id,
    raw[5] AS buyer_id, raw[6] AS traded_at, raw[7] AS amount, raw[8] AS currency, raw[9] AS kind,
    raw[10] AS ref_trade_id FROM staging WHERE NOT ok"""

# One row per (row, column, reason) for rows that failed a row-level check (re-parsed: they are few).
_ROW_ERRORS_SQL = """
CREATE OR REPLACE TEMP TABLE row_errors AS
WITH """ + _PARSED_CTE + r""",
checks AS (
  SELECT rn, unnest(list_filter([
    CASE WHEN trade_id IS NULL THEN {'c': 'trade_id', 'v': raw_trade_id, 'r': 'missing value'}
         WHEN length(trade_id) > {id_max} THEN {'c': 'trade_id', 'v': raw_trade_id, 'r': 'longer than {id_max} characters'} END,
    CASE WHEN platform_id IS NULL THEN {'c': 'platform_id', 'v': raw_platform_id, 'r': 'missing value'}
         WHEN {scope} IS NOT NULL AND platform_id <> {scope}
         THEN {'c': 'platform_id', 'v': raw_platform_id, 'r': 'not the platform this operator acts for (' || {scope} || ')'} END,
    CASE WHEN dataset_id IS NULL THEN {'c': 'dataset_id', 'v': raw_dataset_id, 'r': 'missing value'}
         WHEN length(dataset_id) > {id_max} THEN {'c': 'dataset_id', 'v': raw_dataset_id, 'r': 'longer than {id_max} characters'} END,
    CASE WHEN seller_id IS NULL THEN {'c': 'seller_id', 'v': raw_seller_id, 'r': 'missing value'} END,
    CASE WHEN buyer_id IS NULL THEN {'c': 'buyer_id', 'v': raw_buyer_id, 'r': 'missing value'}
         WHEN buyer_id = seller_id THEN {'c': 'buyer_id', 'v': raw_buyer_id, 'r': 'buyer_id equals seller_id'} END,
    CASE WHEN ts_text IS NULL THEN {'c': 'traded_at', 'v': raw_traded_at, 'r': 'missing value'}
         WHEN traded_at IS NULL THEN {'c': 'traded_at', 'v': raw_traded_at,
              'r': 'not an ISO-8601 date-time such as 2024-03-01T10:15:00 (local) or 2024-03-01T02:15:00Z'} END,
    CASE WHEN amount_text IS NULL THEN {'c': 'amount', 'v': raw_amount, 'r': 'missing value'}
         WHEN NOT amount_form AND regexp_matches(regexp_replace(amount_text, '^(¥|CNY) ?', ''), '[^0-9.,]')
         THEN {'c': 'amount', 'v': raw_amount,
              'r': 'not a decimal amount: ''' || regexp_extract(regexp_replace(amount_text, '^(¥|CNY) ?', ''),
                   '[^0-9.,]') || ''' is not allowed (only digits, one ''.'' and '','' between groups of three, '
                   || 'as in 1,234,567.50)'}
         WHEN NOT amount_form AND contains(amount_text, ',') THEN {'c': 'amount', 'v': raw_amount,
              'r': 'not a decimal amount: '','' must separate groups of three digits before the ''.'' '
                   || '(as in 1,234,567.50)'}
         WHEN NOT amount_form THEN {'c': 'amount', 'v': raw_amount,
              'r': 'not a plain decimal with at most 2 decimals (digits and one ''.'')'}
         WHEN amount_wide <= 0 THEN {'c': 'amount', 'v': raw_amount, 'r': 'must be greater than 0'}
         WHEN amount_wide > {max_amount} THEN {'c': 'amount', 'v': raw_amount, 'r': 'exceeds 999999999999.99'} END,
    CASE WHEN currency <> 'CNY' THEN {'c': 'currency', 'v': raw_currency, 'r': 'currency must be CNY'} END,
    CASE WHEN kind NOT IN ('sale', 'refund') THEN {'c': 'kind', 'v': raw_kind, 'r': 'kind must be sale or refund'} END,
    CASE WHEN kind = 'refund' AND ref_trade_id IS NULL
         THEN {'c': 'ref_trade_id', 'v': raw_ref_trade_id, 'r': 'a refund must name the refunded sale'}
         WHEN kind = 'refund' AND length(ref_trade_id) > {id_max}
         THEN {'c': 'ref_trade_id', 'v': raw_ref_trade_id, 'r': 'longer than {id_max} characters'}
         WHEN kind = 'sale' AND ref_trade_id IS NOT NULL
         THEN {'c': 'ref_trade_id', 'v': raw_ref_trade_id, 'r': 'only a refund may name a ref_trade_id'} END
  ], lambda x: x IS NOT NULL)) AS e
  FROM parsed
)
SELECT rn AS row_number, e.c AS column_name, e.v AS value, e.r AS reason FROM checks
"""

# Live trades: the trades view already carries the retraction flag (one definition of "retracted").
_LIVE_TRADES = "(SELECT * FROM trades WHERE NOT retracted)"

# Which of the rows that passed the row checks are new, duplicates, or conflicts (CONTRACT "Trades").
# Each statement is one set operation; keys repeated in the file are found first with a plain count so
# the costly comparison runs only on the (usually few) repeated keys.
_CLASSIFY_STATEMENTS = (
    """
    CREATE OR REPLACE TEMP TABLE repeated_keys AS
    WITH suspects AS (  -- grouping on a 64-bit hash is much cheaper than on two strings; collisions are
                        -- harmless because the real keys are compared next
      SELECT hash(platform_id, trade_id) AS h FROM staging_t WHERE ok GROUP BY h HAVING count(*) > 1)
    SELECT platform_id, trade_id FROM staging_t WHERE ok AND hash(platform_id, trade_id) IN (SELECT h FROM suspects)
    GROUP BY platform_id, trade_id HAVING count(*) > 1
    """,
    """
    CREATE OR REPLACE TEMP TABLE repeats AS
    SELECT s.platform_id, s.trade_id, min(s.rn) AS first_rn,
           count(DISTINCT (s.dataset_id, s.seller_id, s.buyer_id, s.traded_at, s.amount, s.kind, s.ref_trade_id))
             AS variants,
           list(s.rn ORDER BY s.rn)[1:5] AS sample_rows, count(*) AS n
    FROM staging s SEMI JOIN repeated_keys k ON k.platform_id = s.platform_id AND k.trade_id = s.trade_id
    WHERE s.ok GROUP BY s.platform_id, s.trade_id
    """,
    f"""
    CREATE OR REPLACE TEMP TABLE stored_match AS
    SELECT s.rn, t.upload_id,
      list_filter([
        CASE WHEN t.dataset_id <> s.dataset_id THEN 'dataset_id' END,
        CASE WHEN t.seller_id <> s.seller_id THEN 'seller_id' END,
        CASE WHEN t.buyer_id <> s.buyer_id THEN 'buyer_id' END,
        CASE WHEN t.traded_at <> s.traded_at THEN 'traded_at' END,
        CASE WHEN t.amount <> s.amount THEN 'amount' END,
        CASE WHEN t.kind <> s.kind THEN 'kind' END,
        CASE WHEN t.ref_trade_id IS DISTINCT FROM s.ref_trade_id THEN 'ref_trade_id' END
      ], lambda x: x IS NOT NULL) AS differing
    FROM staging s JOIN {_LIVE_TRADES} t ON t.platform_id = s.platform_id AND t.trade_id = s.trade_id
    WHERE s.ok
    """,
    """
    CREATE OR REPLACE TEMP TABLE set_errors AS
    SELECT s.rn AS row_number, 'trade_id' AS column_name, s.trade_id AS value,
           'trade_id repeats in this file with different content (rows '
             || array_to_string(r.sample_rows, ', ') || CASE WHEN r.n > 5 THEN ', ...' ELSE '' END || ')' AS reason
    FROM staging s JOIN repeats r USING (platform_id, trade_id)
    WHERE s.ok AND r.variants > 1
    UNION ALL
    SELECT s.rn, 'trade_id', s.trade_id,
           'trade_id already stored by upload ' || m.upload_id || ' with different content ('
             || array_to_string(m.differing, ', ') || ')'
    FROM staging s JOIN stored_match m USING (rn)
    WHERE len(m.differing) > 0
    """,
    # Rows that will not be stored although they passed the row checks: errors so far and duplicates.
    """
    CREATE OR REPLACE TEMP TABLE held_back AS
    SELECT row_number AS rn FROM set_errors
    UNION SELECT rn FROM stored_match
    UNION SELECT s.rn FROM staging s JOIN repeats r USING (platform_id, trade_id)
          WHERE s.ok AND r.variants = 1 AND s.rn <> r.first_rn
    """,
    """
    CREATE OR REPLACE TEMP VIEW candidates AS
    SELECT * FROM staging s WHERE s.ok AND s.rn NOT IN (SELECT rn FROM held_back)
    """,
)

# Refunds (P9): the sale must exist on the same platform (store or file) and refunds may not exceed it.
_REFUND_SQL = f"""
CREATE OR REPLACE TEMP TABLE refund_checks AS
WITH refunds AS (SELECT * FROM candidates WHERE kind = 'refund'),
stored_target AS (
  SELECT r.rn, t.kind AS target_kind, t.amount AS sale_amount
  FROM refunds r JOIN {_LIVE_TRADES} t ON t.platform_id = r.platform_id AND t.trade_id = r.ref_trade_id
),
file_target AS (
  SELECT r.rn, f.kind AS target_kind, f.amount AS sale_amount, f.rn AS sale_rn, f.ok AS sale_ok,
         EXISTS (SELECT 1 FROM candidates c WHERE c.rn = f.rn) OR
         EXISTS (SELECT 1 FROM stored_match m WHERE m.rn = f.rn AND len(m.differing) = 0) AS sale_kept
  FROM refunds r JOIN staging f ON f.platform_id = r.platform_id AND f.trade_id = r.ref_trade_id
  QUALIFY row_number() OVER (PARTITION BY r.rn ORDER BY f.rn) = 1
),
stored_refunded AS (
  SELECT platform_id, ref_trade_id, sum(amount) AS refunded
  FROM {_LIVE_TRADES} WHERE kind = 'refund' GROUP BY ALL
)
SELECT r.rn, r.platform_id, r.ref_trade_id, r.amount,
       coalesce(st.target_kind, ft.target_kind) AS target_kind,
       coalesce(st.sale_amount, ft.sale_amount) AS sale_amount,
       ft.sale_rn, (st.rn IS NOT NULL OR coalesce(ft.sale_kept, false)) AS sale_found,
       coalesce(sr.refunded, 0) + sum(r.amount) OVER (
         PARTITION BY r.platform_id, r.ref_trade_id ORDER BY r.rn ROWS UNBOUNDED PRECEDING) AS refunded_so_far
FROM refunds r
LEFT JOIN stored_target st ON st.rn = r.rn
LEFT JOIN file_target ft ON ft.rn = r.rn
LEFT JOIN stored_refunded sr ON sr.platform_id = r.platform_id AND sr.ref_trade_id = r.ref_trade_id;

INSERT INTO set_errors
SELECT rn, 'ref_trade_id', ref_trade_id,
  CASE
    WHEN target_kind IS NULL THEN
      'refunds trade_id ' || ref_trade_id || ', which is no sale of platform ' || platform_id
      || ' in the store or this file'
    WHEN target_kind = 'refund' THEN 'refunds trade_id ' || ref_trade_id || ', which is a refund, not a sale'
    WHEN NOT sale_found THEN 'refunds the sale at row ' || sale_rn || ', which was rejected'
    ELSE 'refunds of sale ' || ref_trade_id || ' would total ' || refunded_so_far
      || ', more than its amount ' || sale_amount
  END
FROM refund_checks
WHERE target_kind IS DISTINCT FROM 'sale' OR NOT sale_found OR refunded_so_far > sale_amount;

INSERT INTO held_back SELECT row_number FROM set_errors EXCEPT SELECT rn FROM held_back;
"""

_STORE_TRADES_SQL = """
INSERT INTO trade_rows (trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at, local_date, amount,
                        currency, kind, ref_trade_id, upload_id, row_number)
SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at, local_date, amount,
       currency, kind, ref_trade_id, ?, rn
FROM candidates
"""


def _sql_literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _mode_params(slow: bool, normalise_codes: bool) -> dict[str, str]:
    """SQL fragments of one parse: the fast path reads the cells as written; the slow path normalises."""
    codes = {f"code_{c}": (f"nullif(upper(trim(n_{c})), '')" if normalise_codes else f"nullif(n_{c}, '')")
             for c in ("platform_id", "seller_id", "buyer_id")}
    if not slow:
        return {**codes, "nfkc": "", "blank_col": "", "norm_columns": "",
                "ts_norm": "ts_given", "amount_norm": "amount_given"}
    return {**codes, "nfkc": "settle_nfkc", "blank_col": ", all_blank AS blank", "norm_columns": _NORM_COLUMNS,
            "ts_norm": normalise.datetime_sql("ts_given"), "amount_norm": normalise.amount_sql("amount_given")}


@dataclass(frozen=True)
class Parsed:
    rows: int  # data rows read (rows with every cell empty not counted)
    warnings: tuple[str, ...]  # the normalisations applied, one line per kind with its count


def parse_and_check_rows(
    con: duckdb.DuckDBPyConnection, source: Source, *, platform_scope: str | None
) -> Parsed:
    """Stage 2: the file → typed ``staging`` (with ``ok``) and ``row_errors``.

    Fast path first for a pure-ASCII UTF-8 file: cells as written. The slow path (normalise.py: NFKC,
    ``¥``/thousands separators, ``YYYY/M/D H:MM``, empty rows skipped) runs when the file may need it (not
    ASCII, transcoded, not CSV) or when some row failed the fast parse; its row errors are the same.
    Raises one of ``tabular.READ_ERRORS`` when DuckDB cannot read the file's content."""
    params = {"max_amount": MAX_AMOUNT, "id_max": str(TEXT_ID_MAX), "scope": _sql_literal(platform_scope),
              "local_date": local_date_sql("traded_at")}
    slow = source.needs_normalising
    normalise_codes = slow
    while True:
        if slow:
            normalise.install(con)
        mode = _mode_params(slow, normalise_codes)
        select = source.select_with_blank_sql if slow else source.select_sql
        con.execute(render_sql(_PARSE_SQL, {**params, **mode, "source": select, "rn": "NULL"}))
        if not slow and con.execute("SELECT count(*) FROM (SELECT 1 FROM staging_t WHERE NOT ok LIMIT 1)"
                                    ).fetchall()[0][0]:
            slow = normalise_codes = True  # some row failed: perhaps an export form the slow path reads
            continue
        con.execute("CREATE OR REPLACE TEMP TABLE distinct_codes AS SELECT platform_id AS code FROM staging_t "
                    "UNION SELECT seller_id FROM staging_t UNION SELECT buyer_id FROM staging_t")
        # Codes stored as written unless some distinct code is not canonical (P4: trimmed, upper-case).
        if normalise_codes or not con.execute(
                "SELECT count(*) FROM distinct_codes WHERE code <> upper(trim(code)) OR trim(code) = ''"
        ).fetchall()[0][0]:
            break
        normalise_codes = True
    base = con.execute("SELECT coalesce(min(rowid), 0) FROM staging_t").fetchall()[0][0]
    warnings: tuple[str, ...] = ()
    if slow:
        blank, nfkc_cells, amounts, datetimes = con.execute(
            "SELECT count_if(blank), coalesce(sum(n_nfkc) FILTER (NOT blank), 0), "
            "count_if(amount_normalised AND NOT blank), count_if(ts_normalised AND NOT blank) FROM staging_t"
        ).fetchall()[0]
        if blank:  # rowids of the other rows do not move: row numbers stay those of the file
            con.execute("DELETE FROM staging_t WHERE blank")
            con.execute("CREATE OR REPLACE TEMP TABLE distinct_codes AS SELECT platform_id AS code FROM staging_t "
                        "UNION SELECT seller_id FROM staging_t UNION SELECT buyer_id FROM staging_t")
        warnings = normalise.warnings(nfkc_cells=int(nfkc_cells), amounts=amounts, datetimes=datetimes,
                                      blank_rows=blank)
    rows = con.execute("SELECT count(*) FROM staging_t").fetchall()[0][0]
    con.execute(f"CREATE OR REPLACE TEMP VIEW staging AS "
                f"SELECT rowid - {base} + {source.first_row_number} AS rn, * FROM staging_t")
    if rows == 0:
        return Parsed(0, warnings)
    # Credit codes (P4): python-stdnum over DISTINCT values, verdicts joined back.
    bad = bad_identifiers_table(con, "SELECT code FROM distinct_codes", "bad_codes")
    con.execute(render_sql(_ROW_ERRORS_SQL, {**params, **mode, "source": _BAD_RAW_SOURCE, "rn": "rn",
                                             "blank_col": ""}))
    if bad:
        con.execute(
            f"""
            INSERT INTO row_errors
            SELECT s.rn, c.col, c.code,
                   CASE WHEN {normalise.SCIENTIFIC_SQL.replace('{c}', 'c.code')}
                        THEN '{normalise.SCIENTIFIC_REASON}' ELSE b.reason END
            FROM staging s,
              LATERAL (VALUES ('platform_id', s.platform_id), ('seller_id', s.seller_id),
                              ('buyer_id', s.buyer_id)) c(col, code)
            JOIN bad_codes b ON b.code = c.code;
            UPDATE staging_t SET ok = false
            WHERE platform_id IN (SELECT code FROM bad_codes) OR seller_id IN (SELECT code FROM bad_codes)
               OR buyer_id IN (SELECT code FROM bad_codes);
            """
        )
    return Parsed(rows, warnings)


def render_sql(sql: str, params: dict[str, str]) -> str:
    # Plain replacement: the SQL is full of braces (struct literals), so str.format would not do.
    for key, value in params.items():
        sql = sql.replace("{" + key + "}", value)
    return sql


def classify_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Stage 3: repeats in the file, conflicts and duplicates against the store, refund references and totals."""
    for statement in _CLASSIFY_STATEMENTS:
        con.execute(statement)
    con.execute(_REFUND_SQL)


@dataclass(frozen=True)
class _Counts:
    rows_read: int
    rows_rejected: int
    rows_new: int
    error_total: int


def _counts(con: duckdb.DuckDBPyConnection) -> _Counts:
    row = con.execute(
        """
        WITH e AS (SELECT row_number FROM row_errors UNION ALL SELECT row_number FROM set_errors)
        SELECT (SELECT count(*) FROM staging), (SELECT count(DISTINCT row_number) FROM e),
               (SELECT count(*) FROM candidates), (SELECT count(*) FROM e)
        """
    ).fetchall()[0]
    return _Counts(*row)


def _first_errors(con: duckdb.DuckDBPyConnection, limit: int) -> tuple[RowError, ...]:
    rows = con.execute(
        f"""
        WITH e AS (SELECT * FROM row_errors UNION ALL SELECT * FROM set_errors),
        first_rows AS (SELECT DISTINCT row_number FROM e ORDER BY row_number LIMIT {int(limit)})
        SELECT row_number, column_name, value, reason FROM e WHERE row_number IN (SELECT row_number FROM first_rows)
        ORDER BY row_number, column_name, reason
        """
    ).fetchall()
    return tuple(RowError(*row) for row in rows)


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
    # slow); the lock keeps other writers of this process out until the store transaction commits.
    with _INGEST_LOCK:
        try:
            report = _ingest_locked(con, facts, file_name, uploaded_by, accept_valid, platform_scope, step)
        finally:
            _drop_temp_tables(con)
    step("done")
    return report


_TEMP_VIEWS = ("candidates", "staging")
_TEMP_TABLES = ("staging_t", "distinct_codes", "row_errors", "bad_codes", "repeated_keys", "repeats", "stored_match",
                "set_errors", "held_back", "refund_checks")


def _drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    for view in _TEMP_VIEWS:
        con.execute(f"DROP VIEW IF EXISTS temp.{view}")
    for table in _TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _reject_file(con, facts: FileFacts, file_name: str, uploaded_by: str, accept_valid: bool,
                 error: FileError) -> UploadReport:
    with store_transaction(con):
        upload_id = _next_upload_id(con)
        _insert_upload_row(con, upload_id, facts, file_name, "rejected", (0, 0, 0, 0), uploaded_by, accept_valid,
                           error.reason)
        con.execute("INSERT INTO rejected_rows VALUES (?, NULL, ?, NULL, ?)", [upload_id, error.column, error.reason])
    return UploadReport(upload_id, file_name, facts.sha256, facts.bytes, facts.file_format, "rejected",
                        0, 0, 0, 0, accept_valid, file_error=error.reason)


def _ingest_locked(con, facts: FileFacts, file_name: str, uploaded_by: str, accept_valid: bool,
                   platform_scope: str | None, step: Progress) -> UploadReport:
    earlier = _find_live_upload_by_hash(con, facts.sha256, platform_scope)
    if earlier is not None:
        row = con.execute(
            "SELECT rows_read, rows_stored, rows_duplicate, rows_rejected FROM uploads WHERE id = ?", [earlier]
        ).fetchall()[0]
        return UploadReport(earlier, file_name, facts.sha256, facts.bytes, facts.file_format, "duplicate",
                            *row, accept_valid=accept_valid, duplicate_of=earlier)
    step("reading")
    source = open_source(con, facts, required=REQUIRED, optional=OPTIONAL)
    rows_read = 0
    parse_warnings: tuple[str, ...] = ()
    if not isinstance(source, FileError):
        try:
            parsed = parse_and_check_rows(con, source, platform_scope=platform_scope)
            rows_read, parse_warnings = parsed.rows, parsed.warnings
        except READ_ERRORS as exc:
            source = FileError(read_error_reason(facts, exc))
        finally:
            if not isinstance(source, FileError):
                close_source(con, source)
        if rows_read == 0 and not isinstance(source, FileError):
            source = FileError(NO_DATA_ROWS)
    if isinstance(source, FileError):
        return _reject_file(con, facts, file_name, uploaded_by, accept_valid, source)
    step("validating")
    classify_rows(con)
    counts = _counts(con)
    rows_duplicate = counts.rows_read - counts.rows_rejected - counts.rows_new
    errors = _first_errors(con, REPORT_ERROR_LIMIT)
    if counts.rows_rejected and not accept_valid:
        status, rows_stored, rows_duplicate = "rejected", 0, 0
    else:
        status, rows_stored = ("partial" if counts.rows_rejected else "stored"), counts.rows_new
    step("storing")
    with store_transaction(con):
        upload_id = _next_upload_id(con)
        _insert_upload_row(con, upload_id, facts, file_name, status,
                           (counts.rows_read, rows_stored, rows_duplicate, counts.rows_rejected), uploaded_by,
                           accept_valid, None)
        con.execute(
            "INSERT INTO rejected_rows SELECT ?, row_number, column_name, value, reason FROM "
            "(SELECT * FROM row_errors UNION ALL SELECT * FROM set_errors) ORDER BY row_number, column_name",
            [upload_id],
        )
        if status != "rejected":
            con.execute(_STORE_TRADES_SQL, [upload_id])
            con.execute(_UPLOAD_PLATFORM_SQL, [upload_id])
        digests.record(con, "upload", upload_id)  # issue 15: the rows it stored, covered by the runs' chain
    return UploadReport(
        upload_id, file_name, facts.sha256, facts.bytes, facts.file_format, status, counts.rows_read, rows_stored,
        rows_duplicate, counts.rows_rejected, accept_valid, errors=errors, errors_total=counts.error_total,
        warnings=source.warnings + parse_warnings,
    )


# uploads.platform_id (migration 0008): the one platform of the stored trades, else NULL.
_UPLOAD_PLATFORM_SQL = """
UPDATE uploads SET platform_id = (
  SELECT CASE WHEN count(DISTINCT platform_id) = 1 THEN min(platform_id) END FROM candidates)
WHERE id = $1
"""


@contextmanager
def store_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a crash (even SIGKILL) before COMMIT leaves the store as it was (DuckDB WAL)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# --- uploads: list, get, retract ------------------------------------------------------------------------

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
    with _INGEST_LOCK:
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
