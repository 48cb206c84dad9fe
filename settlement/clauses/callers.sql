-- P10.3: eligible sales per (dataset, owner, year-graph caller group, buyer) of ${year}; a buyer absent from
-- affiliate_groups is its own group. A buyer is a caller of the owner it bought from (P10.1).
-- group_counted: the group's net sum for the (dataset, owner) is > 0. Portable (DuckDB and Spark SQL).
-- Sales are summed per buyer before the buyer's group is looked up, and the group sums are a GROUP BY joined
-- back, not a window: on 10M trades, hashing the group text into every sale's key and partitioning 4.5M rows
-- by three strings cost 18 of 22 CPU-seconds (issue 14).
WITH b AS (
    SELECT s.dataset_id, s.owner_id, s.buyer_id, count(*) AS eligible_sales,
           CAST(sum(s.net) AS DECIMAL(38,2)) AS net_amount
    FROM ${status} s
    WHERE s.c6_reason IS NULL
    GROUP BY s.dataset_id, s.owner_id, s.buyer_id
), g AS (
    SELECT b.dataset_id, b.owner_id, coalesce(CAST(ag.group_id AS STRING), 'own:' || b.buyer_id) AS group_id,
           b.buyer_id, b.eligible_sales, b.net_amount
    FROM b
    LEFT JOIN affiliate_groups ag ON ag.year = ${year} AND ag.party_id = b.buyer_id
), counted AS (
    SELECT g.dataset_id, g.owner_id, g.group_id, sum(g.net_amount) > 0 AS group_counted
    FROM g
    GROUP BY g.dataset_id, g.owner_id, g.group_id
)
SELECT ${year} AS year, g.dataset_id, g.owner_id, g.group_id, g.buyer_id, g.eligible_sales, g.net_amount,
       c.group_counted
FROM g
JOIN counted c ON c.dataset_id = g.dataset_id AND c.owner_id = g.owner_id AND c.group_id = g.group_id
