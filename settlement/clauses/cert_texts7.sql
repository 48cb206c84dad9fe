-- P11.1, P12: why a sale's platform was not certified on its date. Portable (DuckDB and Spark SQL).
SELECT run_id, platform_id,
       CASE WHEN certified_on IS NULL THEN 'platform listed but never certified (empty certified_on, P11.1)'
            ELSE 'platform certified ' || CAST(certified_on AS STRING) || '..'
                 || coalesce(CAST(certified_until AS STRING), 'open') || ', not on the trade date (P11.1)'
       END AS text
FROM ${platforms} pf
