-- P12 counts of a run being computed (migration 0013): what COUNTS (settlement/clauses/exclusions.py) counts
-- over exclusions.sql, computed from the run's sale status and refunds without building a row or a detail
-- text per exclusion (issue 14: counting the 9M derived rows of a 10M-trade year cost 25 s). The owner is
-- the status row's (the owner of the sale's registration period, P10.1; a refund's: its live sale's, NULL
-- when it has none). tests/test_exclusion_counts.py holds both to the same rows. Portable (DuckDB and Spark SQL).
WITH sr AS (
    SELECT s.run_id, s.year, s.platform_id, s.trade_id, s.upload_id, s.dataset_id, s.owner_id,
           coalesce(s.c6_reason, CASE WHEN NOT coalesce(d.qualifies, false) THEN 'BELOW_CALLER_THRESHOLD' END)
               AS c6_reason_final,
           s.c7_reason
    FROM ${status} s
    LEFT JOIN ${qualifies} d ON d.run_id = s.run_id AND d.dataset_id = s.dataset_id AND d.owner_id = s.owner_id
), sales AS (
    SELECT sr.run_id, sr.year, sr.dataset_id, sr.owner_id, sr.platform_id,
           sum(CASE WHEN sr.c6_reason_final IS NULL THEN 0 ELSE 1 END) AS c6_trades,
           sum(CASE WHEN sr.c7_reason IS NULL THEN 0 ELSE 1 END) AS c7_trades,
           sr.c6_reason_final, sr.c7_reason
    FROM sr
    WHERE sr.c6_reason_final IS NOT NULL OR sr.c7_reason IS NOT NULL
    GROUP BY sr.run_id, sr.year, sr.dataset_id, sr.owner_id, sr.platform_id, sr.c6_reason_final, sr.c7_reason
), x AS (
    SELECT s.run_id, s.year, c.clause, s.dataset_id, s.owner_id, s.platform_id,
           CASE c.clause WHEN 6 THEN s.c6_reason_final ELSE s.c7_reason END AS reason, 'sale' AS kind,
           CASE c.clause WHEN 6 THEN s.c6_trades ELSE s.c7_trades END AS trades
    FROM sales s
    CROSS JOIN (SELECT 6 AS clause UNION ALL SELECT 7 AS clause) c
    UNION ALL
    SELECT r.run_id, r.year, c.clause, coalesce(sr.dataset_id, r.dataset_id) AS dataset_id, sr.owner_id,
           r.platform_id,
           CASE WHEN r.retracted OR NOT r.has_live_sale THEN 'RETRACTED'
                ELSE CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END END AS reason,
           'refund' AS kind, 1 AS trades
    FROM ${refunds} r
    CROSS JOIN (SELECT 6 AS clause UNION ALL SELECT 7 AS clause) c
    LEFT JOIN sr ON r.has_live_sale AND sr.run_id = r.run_id AND sr.platform_id = r.platform_id
          AND sr.trade_id = r.ref_trade_id AND sr.upload_id = r.sale_upload_id
)
SELECT x.run_id, x.year, x.clause, x.dataset_id, x.owner_id, x.platform_id, x.reason, x.kind,
       CAST(sum(x.trades) AS BIGINT) AS trades
FROM x
WHERE x.reason IS NOT NULL
GROUP BY x.run_id, x.year, x.clause, x.dataset_id, x.owner_id, x.platform_id, x.reason, x.kind
