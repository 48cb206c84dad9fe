-- P9, P12: the refunds of the run's year (a refund belongs to its live sale's year, else its own date's),
-- with whether that sale is live. Portable (DuckDB and Spark SQL).
SELECT p.run_id, p.year, r.platform_id, r.trade_id, r.upload_id, r.ref_trade_id, r.retracted, r.dataset_id,
       ls.trade_id IS NOT NULL AS has_live_sale, ls.upload_id AS sale_upload_id
FROM ${params} p
JOIN ${trades} r ON r.run_id = p.run_id
LEFT JOIN (
    SELECT run_id, platform_id, trade_id, local_date, upload_id FROM ${trades} lt
    WHERE kind = 'sale' AND NOT retracted${refunded_sales_only}
) ls ON ls.run_id = r.run_id AND ls.platform_id = r.platform_id AND ls.trade_id = r.ref_trade_id
WHERE r.kind = 'refund' AND year(coalesce(ls.local_date, r.local_date)) = ${run_year}
