"""Stage 3 of a trade upload (full diagnostic path): keys repeated in the file, duplicates and conflicts
against live trades, refund references and running totals; the counts and first errors of the report.
Every statement is one set operation over the temp tables that ``parse.py`` made, named by the caller's
``IngestTables`` (one set of names per ingest).
Must not import ``api``, ``settlement.cli`` or ``ledgers``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from settlement.core.sql import render
from settlement.inputs.common import IngestTables, RowError

# Live trades: the trades view already carries the retraction flag (one definition of "retracted").
_LIVE = "(SELECT * FROM trades WHERE NOT retracted)"

# Which of the rows that passed the row checks are new, duplicates, or conflicts (CONTRACT "Trades").
# Each statement is one set operation; keys repeated in the file are found first with a plain count so
# the costly comparison runs only on the (usually few) repeated keys.
_CLASSIFY_STATEMENTS = (
    """
    CREATE OR REPLACE TEMP TABLE {repeated_keys} AS
    WITH suspects AS (  -- grouping on a 64-bit hash is much cheaper than on two strings; collisions are
                        -- harmless because the real keys are compared next
      SELECT hash(platform_id, trade_id) AS h FROM {staging_t} WHERE ok GROUP BY h HAVING count(*) > 1)
    SELECT platform_id, trade_id FROM {staging_t} WHERE ok AND hash(platform_id, trade_id) IN (SELECT h FROM suspects)
    GROUP BY platform_id, trade_id HAVING count(*) > 1
    """,
    """
    CREATE OR REPLACE TEMP TABLE {repeats} AS
    SELECT s.platform_id, s.trade_id, min(s.rn) AS first_rn,
           count(DISTINCT (s.dataset_id, s.seller_id, s.buyer_id, s.traded_at, s.amount, s.kind, s.ref_trade_id))
             AS variants,
           list(s.rn ORDER BY s.rn)[1:5] AS sample_rows, count(*) AS n
    FROM {staging} s SEMI JOIN {repeated_keys} k ON k.platform_id = s.platform_id AND k.trade_id = s.trade_id
    WHERE s.ok GROUP BY s.platform_id, s.trade_id
    """,
    """
    CREATE OR REPLACE TEMP TABLE {stored_match} AS
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
    FROM {staging} s JOIN {live} t ON t.platform_id = s.platform_id AND t.trade_id = s.trade_id
    WHERE s.ok
    """,
    """
    CREATE OR REPLACE TEMP TABLE {set_errors} AS
    SELECT s.rn AS row_number, 'trade_id' AS column_name, s.trade_id AS value,
           'trade_id repeats in this file with different content (rows '
             || array_to_string(r.sample_rows, ', ') || CASE WHEN r.n > 5 THEN ', ...' ELSE '' END || ')' AS reason
    FROM {staging} s JOIN {repeats} r USING (platform_id, trade_id)
    WHERE s.ok AND r.variants > 1
    UNION ALL
    SELECT s.rn, 'trade_id', s.trade_id,
           'trade_id already stored by upload ' || m.upload_id || ' with different content ('
             || array_to_string(m.differing, ', ') || ')'
    FROM {staging} s JOIN {stored_match} m USING (rn)
    WHERE len(m.differing) > 0
    """,
    # Rows that will not be stored although they passed the row checks: errors so far and duplicates.
    """
    CREATE OR REPLACE TEMP TABLE {held_back} AS
    SELECT row_number AS rn FROM {set_errors}
    UNION SELECT rn FROM {stored_match}
    UNION SELECT s.rn FROM {staging} s JOIN {repeats} r USING (platform_id, trade_id)
          WHERE s.ok AND r.variants = 1 AND s.rn <> r.first_rn
    """,
    """
    CREATE OR REPLACE TEMP VIEW {candidates} AS
    SELECT * FROM {staging} s WHERE s.ok AND s.rn NOT IN (SELECT rn FROM {held_back})
    """,
)

# Refunds (P9): the sale must exist on the same platform (store or file) and refunds may not exceed it.
_REFUND_SQL = """
CREATE OR REPLACE TEMP TABLE {refund_checks} AS
WITH refunds AS (SELECT * FROM {candidates} WHERE kind = 'refund'),
stored_target AS (
  SELECT r.rn, t.kind AS target_kind, t.amount AS sale_amount
  FROM refunds r JOIN {live} t ON t.platform_id = r.platform_id AND t.trade_id = r.ref_trade_id
),
file_target AS (
  SELECT r.rn, f.kind AS target_kind, f.amount AS sale_amount, f.rn AS sale_rn, f.ok AS sale_ok,
         EXISTS (SELECT 1 FROM {candidates} c WHERE c.rn = f.rn) OR
         EXISTS (SELECT 1 FROM {stored_match} m WHERE m.rn = f.rn AND len(m.differing) = 0) AS sale_kept
  FROM refunds r JOIN {staging} f ON f.platform_id = r.platform_id AND f.trade_id = r.ref_trade_id
  QUALIFY row_number() OVER (PARTITION BY r.rn ORDER BY f.rn) = 1
),
stored_refunded AS (
  SELECT platform_id, ref_trade_id, sum(amount) AS refunded
  FROM {live} WHERE kind = 'refund' GROUP BY ALL
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

INSERT INTO {set_errors}
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
FROM {refund_checks}
WHERE target_kind IS DISTINCT FROM 'sale' OR NOT sale_found OR refunded_so_far > sale_amount;

INSERT INTO {held_back} SELECT row_number FROM {set_errors} EXCEPT SELECT rn FROM {held_back};
"""


def _sql(template: str, tables: IngestTables) -> str:
    return render(template, {**tables.slots(), "live": _LIVE})


def classify_rows(con: duckdb.DuckDBPyConnection, tables: IngestTables) -> None:
    """Stage 3: repeats in the file, conflicts and duplicates against the store, refund references and totals."""
    for statement in _CLASSIFY_STATEMENTS:
        con.execute(_sql(statement, tables))
    con.execute(_sql(_REFUND_SQL, tables))


@dataclass(frozen=True)
class Counts:
    rows_read: int
    rows_rejected: int
    rows_new: int
    error_total: int


def upload_counts(con: duckdb.DuckDBPyConnection, tables: IngestTables) -> Counts:
    row = con.execute(_sql(
        """
        WITH e AS (SELECT row_number FROM {row_errors} UNION ALL SELECT row_number FROM {set_errors})
        SELECT (SELECT count(*) FROM {staging}), (SELECT count(DISTINCT row_number) FROM e),
               (SELECT count(*) FROM {candidates}), (SELECT count(*) FROM e)
        """, tables)
    ).fetchall()[0]
    return Counts(*row)


def first_errors(con: duckdb.DuckDBPyConnection, tables: IngestTables, limit: int) -> tuple[RowError, ...]:
    rows = con.execute(_sql(
        """
        WITH e AS (SELECT * FROM {row_errors} UNION ALL SELECT * FROM {set_errors}),
        first_rows AS (SELECT DISTINCT row_number FROM e ORDER BY row_number LIMIT $limit)
        SELECT row_number, column_name, value, reason FROM e WHERE row_number IN (SELECT row_number FROM first_rows)
        ORDER BY row_number, column_name, reason
        """, tables), dict(limit=int(limit))
    ).fetchall()
    return tuple(RowError(*row) for row in rows)
