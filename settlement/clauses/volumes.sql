-- P11.2, P11.3: per platform, the count and volume (Σ net, DECIMAL(38,2), P10.8) of eligible sales.
-- Portable (DuckDB and Spark SQL).
SELECT platform_id, count(*) AS eligible_sales, CAST(sum(net) AS DECIMAL(38,2)) AS volume
FROM ${status}
WHERE c7_reason IS NULL
GROUP BY platform_id
