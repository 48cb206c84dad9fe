"""Stage 2 of a trade upload, the full diagnostic path: the file → typed ``staging`` (with ``ok``) and
``row_errors`` (row × column × reason), with the normalisations of real exports (``normalise.py``) when the
file may need them. Used when the typed fast path (``fast.py``) cannot store the file as it is.
Must not import ``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from settlement.core.identifiers import bad_identifiers_table
from settlement.core.localtime import local_date_sql
from settlement.core.sql import literal, render
from settlement.inputs import normalise
from settlement.inputs.common import (
    MAX_AMOUNT, TEXT_ID_MAX, IngestTables, formula_reason_sql, formula_sql,
)
from settlement.inputs.tabular import Source

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
CREATE OR REPLACE TEMP TABLE {staging_t} AS
SELECT * EXCLUDE (raw_trade_id, raw_platform_id, raw_dataset_id, raw_seller_id, raw_buyer_id, raw_traded_at, raw_amount, raw_currency, raw_kind, raw_ref_trade_id),
       CASE WHEN NOT ok THEN [raw_trade_id, raw_platform_id, raw_dataset_id, raw_seller_id, raw_buyer_id, raw_traded_at, raw_amount, raw_currency, raw_kind, raw_ref_trade_id] END AS raw
FROM (
WITH """ + _PARSED_CTE + """
SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at,
       {local_date} AS local_date,
       CAST(CASE WHEN amount_wide <= {max_amount} THEN amount_wide END AS DECIMAL(18,2)) AS amount,
       currency, kind, ref_trade_id,
       coalesce(trade_id IS NOT NULL AND length(trade_id) <= {id_max} AND NOT {formula_trade_id}
        AND platform_id IS NOT NULL AND dataset_id IS NOT NULL AND length(dataset_id) <= {id_max}
        AND NOT {formula_dataset_id} AND NOT coalesce({formula_ref_trade_id}, false)
        AND seller_id IS NOT NULL AND buyer_id IS NOT NULL AND seller_id <> buyer_id
        AND traded_at IS NOT NULL AND amount_wide > 0 AND amount_wide <= {max_amount}
        AND currency = 'CNY' AND kind IN ('sale', 'refund')
        AND (CASE WHEN kind = 'refund' THEN ref_trade_id IS NOT NULL AND length(ref_trade_id) <= {id_max}
                  ELSE ref_trade_id IS NULL END)
        AND ($scope IS NULL OR platform_id = $scope), false) AS ok,
       raw_trade_id, raw_platform_id, raw_dataset_id, raw_seller_id, raw_buyer_id, raw_traded_at, raw_amount,
       raw_currency, raw_kind, raw_ref_trade_id {norm_columns}
FROM parsed)
"""

# The raw text of the rejected rows, under the contract names, for the error report.
_BAD_RAW_SOURCE = """SELECT rn, raw[1] AS trade_id, raw[2] AS platform_id, raw[3] AS dataset_id, raw[4] AS seller_id,
    raw[5] AS buyer_id, raw[6] AS traded_at, raw[7] AS amount, raw[8] AS currency, raw[9] AS kind,
    raw[10] AS ref_trade_id FROM {staging} WHERE NOT ok"""

# One row per (row, column, reason) for rows that failed a row-level check (re-parsed: they are few).
_ROW_ERRORS_SQL = """
CREATE OR REPLACE TEMP TABLE {row_errors} AS
WITH """ + _PARSED_CTE + r""",
checks AS (
  SELECT rn, unnest(list_filter([
    CASE WHEN trade_id IS NULL THEN {'c': 'trade_id', 'v': raw_trade_id, 'r': 'missing value'}
         WHEN length(trade_id) > {id_max} THEN {'c': 'trade_id', 'v': raw_trade_id, 'r': 'longer than {id_max} characters'}
         WHEN {formula_trade_id} THEN {'c': 'trade_id', 'v': raw_trade_id, 'r': {formula_reason_trade_id}} END,
    CASE WHEN platform_id IS NULL THEN {'c': 'platform_id', 'v': raw_platform_id, 'r': 'missing value'}
         WHEN $scope IS NOT NULL AND platform_id <> $scope
         THEN {'c': 'platform_id', 'v': raw_platform_id, 'r': 'not the platform this operator acts for (' || $scope || ')'} END,
    CASE WHEN dataset_id IS NULL THEN {'c': 'dataset_id', 'v': raw_dataset_id, 'r': 'missing value'}
         WHEN length(dataset_id) > {id_max} THEN {'c': 'dataset_id', 'v': raw_dataset_id, 'r': 'longer than {id_max} characters'}
         WHEN {formula_dataset_id} THEN {'c': 'dataset_id', 'v': raw_dataset_id, 'r': {formula_reason_dataset_id}} END,
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
         WHEN {formula_ref_trade_id}
         THEN {'c': 'ref_trade_id', 'v': raw_ref_trade_id, 'r': {formula_reason_ref_trade_id}}
         WHEN kind = 'sale' AND ref_trade_id IS NOT NULL
         THEN {'c': 'ref_trade_id', 'v': raw_ref_trade_id, 'r': 'only a refund may name a ref_trade_id'} END
  ], lambda x: x IS NOT NULL)) AS e
  FROM parsed
)
SELECT rn AS row_number, e.c AS column_name, e.v AS value, e.r AS reason FROM checks
"""


def _mode_params(slow: bool, normalise_codes: bool) -> dict[str, str]:
    """SQL fragments of one parse: the fast path reads the cells as written; the slow path normalises."""
    codes = {f"code_{c}": (f"nullif(upper(trim(n_{c})), '')" if normalise_codes else f"nullif(n_{c}, '')")
             for c in ("platform_id", "seller_id", "buyer_id")}
    if not slow:
        return {**codes, "nfkc": "", "blank_col": "", "norm_columns": "",
                "ts_norm": "ts_given", "amount_norm": "amount_given"}
    return {**codes, "nfkc": "settle_nfkc", "blank_col": ", all_blank AS blank", "norm_columns": _NORM_COLUMNS,
            "ts_norm": normalise.datetime_sql("ts_given"), "amount_norm": normalise.amount_sql("amount_given")}


# Free-text ids a spreadsheet would run as a formula (issue 15 item 5); credit codes fail their own check.
_FORMULA_PARAMS = {k: v for col in ("trade_id", "dataset_id", "ref_trade_id")
                   for k, v in ((f"formula_{col}", formula_sql(col)),
                                (f"formula_reason_{col}", formula_reason_sql(col, col)))}


@dataclass(frozen=True)
class Parsed:
    rows: int  # data rows read (rows with every cell empty not counted)
    warnings: tuple[str, ...]  # the normalisations applied, one line per kind with its count

def parse_and_check_rows(
    con: duckdb.DuckDBPyConnection, source: Source, *, platform_scope: str | None, tables: IngestTables
) -> Parsed:
    """Stage 2: the file → typed ``tables.staging`` (with ``ok``) and ``tables.row_errors``.

    Fast path first for a pure-ASCII UTF-8 file: cells as written. The slow path (normalise.py: NFKC,
    ``¥``/thousands separators, ``YYYY/M/D H:MM``, empty rows skipped) runs when the file may need it (not
    ASCII, transcoded, not CSV) or when some row failed the fast parse; its row errors are the same.
    Raises one of ``tabular.READ_ERRORS`` when DuckDB cannot read the file's content."""
    t = tables
    params = {"max_amount": MAX_AMOUNT, "id_max": str(TEXT_ID_MAX), "local_date": local_date_sql("traded_at"),
              **_FORMULA_PARAMS, **t.slots()}
    scope = dict(scope=platform_scope)  # a bound parameter of the parse and the row checks
    distinct_codes = (f"CREATE OR REPLACE TEMP TABLE {t.distinct_codes} AS SELECT platform_id AS code FROM "
                      f"{t.staging_t} UNION SELECT seller_id FROM {t.staging_t} UNION SELECT buyer_id FROM {t.staging_t}")
    slow = source.needs_normalising
    normalise_codes = slow
    while True:
        if slow:
            normalise.install(con)
        mode = _mode_params(slow, normalise_codes)
        select = source.select_with_blank_sql if slow else source.select_sql
        con.execute(render(_PARSE_SQL, {**params, **mode, "source": select, "rn": "NULL"}), scope)
        if not slow and con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {t.staging_t} WHERE NOT ok LIMIT 1)"
                                    ).fetchall()[0][0]:
            slow = normalise_codes = True  # some row failed: perhaps an export form the slow path reads
            continue
        con.execute(distinct_codes)
        # Codes stored as written unless some distinct code is not canonical (P4: trimmed, upper-case).
        if normalise_codes or not con.execute(
                f"SELECT count(*) FROM {t.distinct_codes} WHERE code <> upper(trim(code)) OR trim(code) = ''"
        ).fetchall()[0][0]:
            break
        normalise_codes = True
    base = con.execute(f"SELECT coalesce(min(rowid), 0) FROM {t.staging_t}").fetchall()[0][0]
    warnings: tuple[str, ...] = ()
    if slow:
        blank, nfkc_cells, amounts, datetimes = con.execute(
            "SELECT count_if(blank), coalesce(sum(n_nfkc) FILTER (NOT blank), 0), "
            f"count_if(amount_normalised AND NOT blank), count_if(ts_normalised AND NOT blank) FROM {t.staging_t}"
        ).fetchall()[0]
        if blank:  # rowids of the other rows do not move: row numbers stay those of the file
            con.execute(f"DELETE FROM {t.staging_t} WHERE blank")
            con.execute(distinct_codes)
        warnings = normalise.warnings(nfkc_cells=int(nfkc_cells), amounts=amounts, datetimes=datetimes,
                                      blank_rows=blank)
    rows = con.execute(f"SELECT count(*) FROM {t.staging_t}").fetchall()[0][0]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {t.staging} AS "
                f"SELECT rowid - {int(base)} + {int(source.first_row_number)} AS rn, * FROM {t.staging_t}")
    if rows == 0:
        return Parsed(0, warnings)
    # Credit codes (P4): python-stdnum over DISTINCT values, verdicts joined back.
    bad = bad_identifiers_table(con, f"SELECT code FROM {t.distinct_codes}", t.bad_codes)
    con.execute(render(_ROW_ERRORS_SQL, {**params, **mode, "source": render(_BAD_RAW_SOURCE, t.slots()),
                                             "rn": "rn", "blank_col": ""}), scope)
    if bad:
        con.execute(render(_BAD_CODES_SQL, {"scientific": normalise.SCIENTIFIC_SQL.replace("{c}", "c.code"),
                                                "scientific_reason": literal(normalise.SCIENTIFIC_REASON),
                                                **t.slots()}))
    return Parsed(rows, warnings)


# Rows whose credit codes stdnum refused: one error per code cell, and the row no longer ok.
_BAD_CODES_SQL = """
INSERT INTO {row_errors}
SELECT s.rn, c.col, c.code, CASE WHEN {scientific} THEN {scientific_reason} ELSE b.reason END
FROM {staging} s,
  LATERAL (VALUES ('platform_id', s.platform_id), ('seller_id', s.seller_id),
                  ('buyer_id', s.buyer_id)) c(col, code)
JOIN {bad_codes} b ON b.code = c.code;
UPDATE {staging_t} SET ok = false
WHERE platform_id IN (SELECT code FROM {bad_codes}) OR seller_id IN (SELECT code FROM {bad_codes})
   OR buyer_id IN (SELECT code FROM {bad_codes});
"""
