-- P10.1, P12: why a sale's dataset was not certified on its date, per registration period (period NULL: a
-- sale dated before the dataset's first owner_from has no owner). Portable (DuckDB and Spark SQL).
SELECT run_id, dataset_id, coalesce(owner_from, DATE '0001-01-01') AS period,
       CASE WHEN certified_on IS NULL THEN 'dataset listed but never certified (empty certified_on, P10.1)'
            ELSE 'dataset certified ' || CAST(certified_on AS STRING) || '..'
                 || coalesce(CAST(certified_until AS STRING), 'open') || ', not on the trade date (P10.1)'
       END AS text
FROM ${datasets} d
UNION ALL
SELECT run_id, dataset_id, CAST(NULL AS DATE) AS period,
       'no owner registered before ' || CAST(min(owner_from) AS STRING)
       || ', the first owner_from of the dataset (P10.1)' AS text
FROM ${datasets} d GROUP BY run_id, dataset_id HAVING bool_and(owner_from IS NOT NULL)
