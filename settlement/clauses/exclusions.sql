-- P12: one row per (trade, clause) of the run's year that earns nothing, with its reason and detail (the columns of the
-- regulator view `exclusions`). A refund carries the reason of the sale it reverses (P9); a
-- refund whose sale has no live trade is RETRACTED; refunds of an earning sale are not listed.
-- The sale_reasons placeholder is sale_reasons.sql, inlined twice. Portable (DuckDB and Spark SQL).
SELECT sr.run_id, sr.year, c.clause, sr.platform_id, sr.trade_id,
       CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END AS reason,
       CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END AS detail,
       sr.dataset_id, 'sale' AS kind, sr.upload_id
FROM (${sale_reasons}) sr
CROSS JOIN (SELECT 6 AS clause UNION ALL SELECT 7 AS clause) c
WHERE (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
UNION ALL
SELECT r.run_id, r.year, c.clause, r.platform_id, r.trade_id,
       CASE WHEN r.retracted OR NOT r.has_live_sale THEN 'RETRACTED'
            ELSE CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END END AS reason,
       CASE WHEN r.retracted THEN 'upload ' || CAST(r.upload_id AS STRING) || ' was retracted (P9)'
            WHEN NOT r.has_live_sale THEN 'refunded sale ' || r.ref_trade_id || ' has no live trade (P9)'
            ELSE 'refund of sale ' || r.ref_trade_id || ': '
                 || CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END END AS detail,
       coalesce(sr.dataset_id, r.dataset_id) AS dataset_id, 'refund' AS kind, r.upload_id
FROM ${refunds} r
CROSS JOIN (SELECT 6 AS clause UNION ALL SELECT 7 AS clause) c
LEFT JOIN (${sale_reasons}) sr ON r.has_live_sale AND sr.run_id = r.run_id AND sr.platform_id = r.platform_id
      AND sr.trade_id = r.ref_trade_id AND sr.upload_id = r.sale_upload_id
WHERE r.retracted OR NOT r.has_live_sale
   OR (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
