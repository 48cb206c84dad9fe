"""P12 exclusions: why each stored trade earns nothing under a clause, with the path of records for
RELATED_PARTY (P7, P8).

``stage_related_paths`` explains the related (a, b, date) pairs of the year (TEMP ``_s_related``);
``exclusions_sql`` returns the SELECT of one row per (trade, clause) that earns nothing (TEMP tables
``_s_cert6``, ``_s_cert7``, ``_s_refunds``), inserted under the run id by ``settlement.run``.
Imports ``settlement.core`` and ``settlement.affiliates``.
"""

from __future__ import annotations

import duckdb
import polars as pl

from settlement.affiliates.pairs import explain_pairs
from settlement.clauses.year_params import YearParams


def stage_related_paths(con: duckdb.DuckDBPyConnection, yp: YearParams, path_budget: int) -> None:
    """_s_related: the path of records (P7) for each distinct related pair on its trade date.

    Clause 6 pair: (buyer, owner). Clause 7: the first related of (buyer, seller), (platform, buyer),
    (platform, seller). Pairs of one enterprise with itself need no path ("same enterprise").
    Paths are built for at most ``path_budget`` distinct (a, b, date) pairs (in a_id, b_id, date order):
    building one costs a small graph search, and a pathological affiliation set (one giant group) can
    relate millions of distinct pairs. Beyond the budget the detail names the shared day group and the
    command that prints the path (`settle affiliates explain A B --on D`), so every verdict stays
    explainable on demand (P7).
    """
    con.execute("""
CREATE OR REPLACE TEMP TABLE _s_pairs AS
SELECT DISTINCT a_id, b_id, on_date FROM (
    SELECT buyer_id AS a_id, owner_id AS b_id, local_date AS on_date FROM _s_status
    WHERE c6_reason = 'RELATED_PARTY' AND buyer_id <> owner_id
    UNION ALL
    SELECT CASE WHEN rel_buyer_seller THEN buyer_id ELSE platform_id END,
           CASE WHEN rel_buyer_seller THEN seller_id WHEN rel_platform_buyer THEN buyer_id ELSE seller_id END,
           local_date
    FROM _s_status WHERE c7_reason = 'RELATED_PARTY'
)
WHERE a_id <> b_id
""")
    pairs = con.sql(f"SELECT a_id, b_id, on_date FROM _s_pairs ORDER BY ALL LIMIT {int(path_budget)}").pl()
    if pairs.height:
        explained = explain_pairs(con, pairs, equity_threshold=yp.equity_threshold)
        paths = explained.select(
            pl.col("a_id"), pl.col("b_id"), pl.col("on_date"), pl.col("path").cast(pl.String)
        )
    else:
        paths = pl.DataFrame(schema={"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date, "path": pl.String})
    con.register("_s_paths_view", paths)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _s_related AS SELECT * FROM _s_paths_view")
    finally:
        con.unregister("_s_paths_view")
    con.execute("DROP TABLE _s_pairs")


# Detail text per reason. Millions of rows can be excluded, so per-row string building is avoided:
# constants, per-registry-entry texts joined from small tables (_s_cert6/_s_cert7), and the record path
# of _s_related for RELATED_PARTY. The trade's own columns (date, amount, upload) are in the row.
NO_PATH = ("'same affiliate group on the trade date; for the record path run: "
           "settle affiliates explain A B --on DATE'")


def _window_text(yp: YearParams) -> str:
    return f"{yp.window_start}..{yp.window_end}" if yp.first_day else "none in this year"


def _detail6_sql(yp: YearParams) -> str:
    """The P12 detail of a clause-6 reason (P2, P9, P10.1, P10.2, P10.4)."""
    window, no_path = _window_text(yp), NO_PATH
    return f"""CASE s.c6_final
        WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
        WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window {window} (P2)'
        WHEN 'NOT_CERTIFIED' THEN coalesce(ce.text, 'dataset not in the dataset registry (P10.1)')
        WHEN 'RELATED_PARTY' THEN CASE WHEN s.buyer_id = s.owner_id THEN 'buyer is the owner itself (P10.2)'
                 ELSE 'buyer related to owner (P8, P10.2): ' || coalesce(r6.path, {no_path}) END
        WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
        WHEN 'BELOW_CALLER_THRESHOLD' THEN s.below_text
    END"""


def _detail7_sql(yp: YearParams) -> str:
    """The P12 detail of a clause-7 reason (P2, P9, P11.1, P11.2)."""
    window, no_path = _window_text(yp), NO_PATH
    return f"""CASE s.c7_reason
        WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
        WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window {window} (P2)'
        WHEN 'PLATFORM_NOT_CERTIFIED' THEN coalesce(cp.text, 'platform not in the platform registry (P11.1)')
        WHEN 'RELATED_PARTY' THEN
            CASE WHEN s.rel_buyer_seller THEN 'buyer related to seller (P8, P11.2): '
                 WHEN s.rel_platform_buyer THEN 'platform related to buyer (P8, P11.2): '
                 ELSE 'platform related to seller (P8, P11.2): ' END
            || CASE WHEN (s.rel_platform_buyer AND NOT s.rel_buyer_seller AND s.platform_id = s.buyer_id)
                      OR (s.rel_platform_seller AND NOT s.rel_buyer_seller AND NOT s.rel_platform_buyer
                          AND s.platform_id = s.seller_id)
                    THEN 'same enterprise' ELSE coalesce(r7.path, {no_path}) END
        WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
    END"""


def _stage_certification_texts(con: duckdb.DuckDBPyConnection) -> None:
    """_s_cert6 / _s_cert7: why a sale's dataset or platform was not certified on its date, per period."""
    con.execute("""
CREATE OR REPLACE TEMP TABLE _s_cert6 AS
SELECT dataset_id, coalesce(owner_from, DATE '0001-01-01') AS period,
       CASE WHEN certified_on IS NULL THEN 'dataset listed but never certified (empty certified_on, P10.1)'
            ELSE 'dataset certified ' || certified_on::VARCHAR || '..' || coalesce(certified_until::VARCHAR, 'open')
                 || ', not on the trade date (P10.1)' END AS text
FROM datasets
UNION ALL  -- a sale dated before a dataset's first owner_from has no owner (P10.1)
SELECT dataset_id, NULL, 'no owner registered before ' || min(owner_from)::VARCHAR
       || ', the first owner_from of the dataset (P10.1)'
FROM datasets GROUP BY dataset_id HAVING bool_and(owner_from IS NOT NULL)
""")
    con.execute("""
CREATE OR REPLACE TEMP TABLE _s_cert7 AS
SELECT platform_id,
       CASE WHEN certified_on IS NULL THEN 'platform listed but never certified (empty certified_on, P11.1)'
            ELSE 'platform certified ' || certified_on::VARCHAR || '..' || coalesce(certified_until::VARCHAR, 'open')
                 || ', not on the trade date (P11.1)' END AS text
FROM platforms
""")


def exclusions_sql(con: duckdb.DuckDBPyConnection, yp: YearParams) -> str:
    """The SELECT of one row per (trade, clause) that earns nothing, with its P12 reason and detail, over
    the TEMP tables of this connection (columns of ``exclusions`` without run_id). Stages _s_refunds."""
    y = yp.year
    thr = yp.c6_threshold if yp.c6_threshold is not None else 0
    detail6, detail7 = _detail6_sql(yp), _detail7_sql(yp)
    _stage_certification_texts(con)
    # Refunds belong to their sale's year (P9): the live sale's date when there is one, else their own.
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _s_refunds AS
WITH live_sales AS (
    SELECT platform_id, trade_id, local_date, upload_id FROM trades WHERE kind = 'sale' AND NOT retracted
)
SELECT r.platform_id, r.trade_id, r.upload_id, r.ref_trade_id, r.retracted, r.dataset_id,
       ls.trade_id IS NOT NULL AS has_live_sale, ls.upload_id AS sale_upload_id
FROM trades r
LEFT JOIN live_sales ls ON ls.platform_id = r.platform_id AND ls.trade_id = r.ref_trade_id
WHERE r.kind = 'refund' AND year(coalesce(ls.local_date, r.local_date)) = {y}
""")
    # The sale reasons as an inlined (never materialised) CTE: the exclusions are written straight into
    # the run's table by one INSERT ... SELECT (settlement.run), millions of rows never copied twice.
    sale_reasons = f"""
SELECT s.platform_id, s.trade_id, s.upload_id, s.dataset_id, s.c6_final AS c6_reason_final, s.c7_reason,
       {detail6} AS detail6,
       {detail7} AS detail7
FROM (
    SELECT s.*,  -- P12: an eligible sale of a dataset that does not qualify (P10.4)
           coalesce(s.c6_reason, CASE WHEN NOT coalesce(d.qualifies, false) THEN 'BELOW_CALLER_THRESHOLD' END)
               AS c6_final,
           d.below_text
    FROM _s_status s LEFT JOIN (
        SELECT dataset_id, owner_id, qualifies,
               caller_groups || ' unrelated caller group(s); needs more than {thr} (P10.4)' AS below_text
        FROM _s_datasets
    ) d ON d.dataset_id = s.dataset_id AND d.owner_id = s.owner_id
) s
LEFT JOIN _s_cert6 ce ON s.c6_final = 'NOT_CERTIFIED' AND ce.dataset_id = s.dataset_id
      AND ce.period IS NOT DISTINCT FROM s.ds_period
LEFT JOIN _s_cert7 cp ON s.c7_reason = 'PLATFORM_NOT_CERTIFIED' AND cp.platform_id = s.platform_id
LEFT JOIN _s_related r6 ON s.c6_reason = 'RELATED_PARTY' AND r6.a_id = s.buyer_id AND r6.b_id = s.owner_id
      AND r6.on_date = s.local_date
LEFT JOIN _s_related r7 ON s.c7_reason = 'RELATED_PARTY' AND r7.on_date = s.local_date
      AND r7.a_id = CASE WHEN s.rel_buyer_seller THEN s.buyer_id ELSE s.platform_id END
      AND r7.b_id = CASE WHEN s.rel_buyer_seller THEN s.seller_id WHEN s.rel_platform_buyer THEN s.buyer_id
                         ELSE s.seller_id END
"""
    return f"""
WITH sr AS NOT MATERIALIZED ({sale_reasons})
SELECT {y} AS year, c.clause, sr.platform_id, sr.trade_id,
       CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END AS reason,
       CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END AS detail,
       sr.dataset_id, 'sale' AS kind, sr.upload_id
FROM sr CROSS JOIN (VALUES (6), (7)) AS c(clause)
WHERE (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
UNION ALL
SELECT {y}, c.clause, r.platform_id, r.trade_id,
       CASE WHEN r.retracted OR NOT r.has_live_sale THEN 'RETRACTED'
            ELSE CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END END AS reason,
       CASE WHEN r.retracted THEN 'upload ' || r.upload_id || ' was retracted (P9)'
            WHEN NOT r.has_live_sale THEN 'refunded sale ' || r.ref_trade_id || ' has no live trade (P9)'
            ELSE 'refund of sale ' || r.ref_trade_id || ': '
                 || CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END END AS detail,
       coalesce(sr.dataset_id, r.dataset_id), 'refund', r.upload_id
FROM _s_refunds r
CROSS JOIN (VALUES (6), (7)) AS c(clause)
LEFT JOIN sr ON r.has_live_sale AND sr.platform_id = r.platform_id
      AND sr.trade_id = r.ref_trade_id AND sr.upload_id = r.sale_upload_id
WHERE r.retracted OR NOT r.has_live_sale
   OR (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
"""
