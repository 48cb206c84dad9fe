-- P10.3: eligible sales per (dataset, owner, year-graph caller group, buyer) of ${year}; a buyer absent from
-- affiliate_groups is its own group. A buyer is a caller of the owner it bought from (P10.1).
-- group_counted: the group's net sum for the (dataset, owner) is > 0 (P10.3). Every eligible sale has net > 0
-- (P10.2: sales.sql gives a sale of net <= 0 the reason FULLY_REFUNDED), so every group's sum of them is > 0:
-- the column is true, not summed per group (a GROUP BY of 4.5M rows on three strings joined back, 4 of the 8 s
-- of this statement on 10M trades, issue 14). clause6.stage_callers checks the premise on every run.
-- Sales are summed per buyer before the buyer's group is looked up (hashing the group text into every sale's
-- key cost most of this statement's CPU on 10M trades, issue 14). Portable (DuckDB and Spark SQL).
WITH b AS (
    SELECT s.dataset_id, s.owner_id, s.buyer_id, count(*) AS eligible_sales,
           CAST(sum(s.net) AS DECIMAL(38,2)) AS net_amount
    FROM ${status} s
    WHERE s.c6_reason IS NULL
    GROUP BY s.dataset_id, s.owner_id, s.buyer_id
)
SELECT ${year} AS year, b.dataset_id, b.owner_id, coalesce(CAST(ag.group_id AS STRING), 'own:' || b.buyer_id) AS group_id,
       b.buyer_id, b.eligible_sales, b.net_amount, true AS group_counted
FROM b
LEFT JOIN affiliate_groups ag ON ag.year = ${year} AND ag.party_id = b.buyer_id
