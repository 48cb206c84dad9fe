"""Normalisations of real exports (CONTRACT "What real exports may contain"): column names and cells.

Owns the column-name aliases (English spellings and the Chinese names listed in docs/contract.md), the
SQL of the cell normalisations (NFKC, amounts with ``¥``/``CNY`` and thousands separators, Excel's
``YYYY/M/D H:MM`` date-times) and the wording of their report warnings. Every normalisation keeps a
value's meaning; anything ambiguous is left as written, for the row checks to refuse. Set-based: the SQL
runs inside the parse statement; only NFKC of non-ASCII cells calls Python (``unicodedata``). Must not
import ``api`` or ``settlement.cli``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

import duckdb

# Chinese column names (and their registry equivalents) → contract column. One map for every file kind:
# a name that maps to a column the kind does not have is an unknown column, warned as usual.
CHINESE_NAMES: dict[str, str] = {
    # trades
    "交易编号": "trade_id", "交易号": "trade_id", "交易id": "trade_id",
    "平台": "platform_id", "平台编号": "platform_id", "平台代码": "platform_id",
    "数据集": "dataset_id", "数据集编号": "dataset_id",
    "卖方": "seller_id", "卖方编号": "seller_id",
    "买方": "buyer_id", "买方编号": "buyer_id",
    "交易时间": "traded_at",
    "金额": "amount", "交易金额": "amount",
    "币种": "currency",
    "类型": "kind", "交易类型": "kind",
    "原交易编号": "ref_trade_id",
    # datasets and platforms
    "所有方": "owner_id", "所有方编号": "owner_id",
    "名称": "name", "数据集名称": "name", "平台名称": "name",
    "认定日期": "certified_on", "认定截止日期": "certified_until", "所有方起始日期": "owner_from",
    # affiliations
    "甲方": "a_id", "乙方": "b_id", "关系": "relation", "持股比例": "share",
    "起始日期": "valid_from", "截止日期": "valid_to", "豁免": "exempt",
    # prior awards
    "年度": "year", "来源": "source",
}

_SEPARATORS = re.compile(r"[\s\-_]+")


def column_key(name: str) -> str:
    """A header name as compared: NFKC, BOM and outer spaces dropped, case folded, spaces/-/_ alike."""
    text = unicodedata.normalize("NFKC", name.replace("\ufeff", "")).strip().casefold()
    text = _SEPARATORS.sub("_", text)
    return CHINESE_NAMES.get(text, text)


def closest(wanted: str, names: list[str]) -> str | None:
    """The header name most like ``wanted`` (difflib), for the missing-column message."""
    keys = {column_key(n): n for n in names}
    match = difflib.get_close_matches(wanted, list(keys), n=1, cutoff=0.5)
    return keys[match[0]] if match else None


# --- cell normalisation in SQL --------------------------------------------------------------------------

_UDF = "settle_nfkc_py"


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the NFKC function and the macro on this connection (idempotent). The Python function is
    visible to every cursor of the database once registered, but a TEMP macro belongs to one connection:
    another cursor of the same server (each API request has its own) must create its own macro."""
    if not con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [_UDF]).fetchall()[0][0]:
        con.create_function(_UDF, lambda s: unicodedata.normalize("NFKC", s), ["VARCHAR"],
                            "VARCHAR", side_effects=False)
    con.execute(NFKC_MACRO)


# ASCII is its own NFKC form: Python sees only the cells with other characters.
NFKC_MACRO = f"""
CREATE OR REPLACE TEMP MACRO settle_nfkc(x) AS
  CASE WHEN x IS NULL OR strlen(x) = length(x) THEN x ELSE {_UDF}(x) END
"""

# Amounts (after NFKC and trim): a leading ¥ (￥ is ¥ after NFKC) or CNY, then thousands separators only in
# well-formed groups of three. Anything else is left as written for the checks to refuse.
AMOUNT_SQL = r"""(CASE
  WHEN regexp_full_match({t}, '(¥|CNY)? ?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?')
    THEN replace(regexp_replace({t}, '^(¥|CNY) ?', ''), ',', '')
  WHEN regexp_full_match({t}, '(¥|CNY) ?[0-9.]+') THEN regexp_replace({t}, '^(¥|CNY) ?', '')
  ELSE {t} END)"""

# Date-times (after NFKC and trim): Excel zh-CN 'YYYY/M/D H:MM[:SS]' or 'YYYY-M-D H:MM[:SS]', local time (P3).
_DT_PARTS = r"(\d{4})SEP(\d{1,2})SEP(\d{1,2})[ T]+(\d{1,2}):(\d{2})(:(\d{2}))?"
DATETIME_SQL = r"""(CASE
  WHEN regexp_full_match({t}, '\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?')
    THEN {t}
  WHEN regexp_full_match({t}, 'SLASH') OR regexp_full_match({t}, 'DASH')
    THEN printf('%04d-%02d-%02d %02d:%02d:%02d',
      CAST(regexp_extract({t}, '^(\d{4})', 1) AS INTEGER),
      CAST(regexp_extract({t}, '^\d{4}[/-](\d{1,2})', 1) AS INTEGER),
      CAST(regexp_extract({t}, '^\d{4}[/-]\d{1,2}[/-](\d{1,2})', 1) AS INTEGER),
      CAST(regexp_extract({t}, '[ T](\d{1,2}):', 1) AS INTEGER),
      CAST(regexp_extract({t}, ':(\d{2})', 1) AS INTEGER),
      coalesce(TRY_CAST(regexp_extract({t}, ':\d{2}:(\d{2})$', 1) AS INTEGER), 0))
  ELSE {t} END)""".replace("SLASH", _DT_PARTS.replace("SEP", "/")).replace("DASH", _DT_PARTS.replace("SEP", "-"))

# Registry dates (after NFKC and trim): 'YYYY/M/D' or 'YYYY-M-D' as YYYY-MM-DD.
DATE_SQL = r"""(CASE
  WHEN regexp_full_match({t}, '\d{4}/\d{1,2}/\d{1,2}') OR regexp_full_match({t}, '\d{4}-\d{1,2}-\d{1,2}')
    THEN printf('%04d-%02d-%02d', CAST(regexp_extract({t}, '^(\d{4})', 1) AS INTEGER),
      CAST(regexp_extract({t}, '^\d{4}[/-](\d{1,2})', 1) AS INTEGER),
      CAST(regexp_extract({t}, '(\d{1,2})$', 1) AS INTEGER))
  ELSE {t} END)"""


def amount_sql(text: str) -> str:
    return AMOUNT_SQL.replace("{t}", text)


def datetime_sql(text: str) -> str:
    return DATETIME_SQL.replace("{t}", text)


def date_sql(text: str) -> str:
    return DATE_SQL.replace("{t}", text)


# A credit code that Excel turned into a number and wrote in scientific notation.
SCIENTIFIC_SQL = r"regexp_full_match(trim({c}), '(?i)[0-9](\.[0-9]+)?e\+?[0-9]+')"
SCIENTIFIC_REASON = "Excel stored this code as a number: format the column as Text and export again"


def warnings(*, nfkc_cells: int = 0, amounts: int = 0, datetimes: int = 0, dates: int = 0,
             blank_rows: int = 0) -> tuple[str, ...]:
    """One report line per kind of normalisation applied, with its count (never silent)."""
    lines = []
    if nfkc_cells:
        lines.append(f"{_count(nfkc_cells, 'cell had', 'cells had')} full-width or compatibility characters, read after "
                     "Unicode NFKC (e.g. '１２３' as '123')")
    if amounts:
        lines.append(f"{_count(amounts, 'amount had', 'amounts had')} a currency sign (¥, CNY) or thousands separators, "
                     "read as plain decimals (e.g. '¥1,234.50' as 1234.50)")
    if datetimes:
        lines.append(f"{_count(datetimes, 'date-time was', 'date-times were')} written as YYYY/M/D H:MM, "
                     "read as local time (P3)")
    if dates:
        lines.append(f"{_count(dates, 'date was', 'dates were')} written as YYYY/M/D, read as YYYY-MM-DD")
    if blank_rows:
        lines.append(_count(blank_rows, "row with every cell empty was", "rows with every cell empty were") + " skipped")
    return tuple(lines)


def _count(n: int, one: str, many: str) -> str:
    """'1 date was' / '2 dates were': report lines read as English for any count."""
    return f"{n} {one if n == 1 else many}"
