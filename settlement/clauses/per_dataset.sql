-- P10.3–P10.5 inputs per (dataset, owner): eligible sales, base (Σ net of eligible sales, DECIMAL(38,2),
-- P10.8) and the number of counted caller groups. Portable (DuckDB and Spark SQL).
SELECT dataset_id, owner_id, CAST(sum(eligible_sales) AS BIGINT) AS eligible_sales,
       CAST(sum(net_amount) AS DECIMAL(38,2)) AS base,
       count(DISTINCT CASE WHEN group_counted THEN group_id END) AS caller_groups
FROM ${callers}
GROUP BY dataset_id, owner_id
