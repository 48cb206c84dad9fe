-- P10.3: eligible sales per (dataset, owner, year-graph caller group, buyer) of ${year}; a buyer absent from
-- affiliate_groups is its own group. A buyer is a caller of the owner it bought from (P10.1).
-- group_counted: the group's net sum for the (dataset, owner) is > 0. Portable (DuckDB and Spark SQL).
WITH b AS (
    SELECT s.dataset_id, s.owner_id, coalesce(CAST(ag.group_id AS STRING), 'own:' || s.buyer_id) AS group_id,
           s.buyer_id, count(*) AS eligible_sales, CAST(sum(s.net) AS DECIMAL(38,2)) AS net_amount
    FROM ${status} s
    LEFT JOIN affiliate_groups ag ON ag.year = ${year} AND ag.party_id = s.buyer_id
    WHERE s.c6_reason IS NULL
    GROUP BY s.dataset_id, s.owner_id, coalesce(CAST(ag.group_id AS STRING), 'own:' || s.buyer_id), s.buyer_id
)
SELECT ${year} AS year, b.dataset_id, b.owner_id, b.group_id, b.buyer_id, b.eligible_sales, b.net_amount,
       sum(b.net_amount) OVER (PARTITION BY b.dataset_id, b.owner_id, b.group_id) > 0 AS group_counted
FROM b
