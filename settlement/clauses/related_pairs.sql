-- P7, P12: the first (budget) distinct related (a, b, date) pairs of the year, in (a, b, date) order, whose
-- record path is explained. Clause 6 pair: (buyer, owner); clause 7: the first related of (buyer, seller),
-- (platform, buyer), (platform, seller). Pairs of one enterprise with itself need no path.
SELECT a_id, b_id, on_date FROM (
    SELECT DISTINCT a_id, b_id, on_date FROM (
        SELECT buyer_id AS a_id, owner_id AS b_id, local_date AS on_date FROM ${status}
        WHERE c6_reason = 'RELATED_PARTY' AND buyer_id <> owner_id
        UNION ALL
        SELECT CASE WHEN rel_buyer_seller THEN buyer_id ELSE platform_id END AS a_id,
               CASE WHEN rel_buyer_seller THEN seller_id WHEN rel_platform_buyer THEN buyer_id
                    ELSE seller_id END AS b_id,
               local_date AS on_date
        FROM ${status} WHERE c7_reason = 'RELATED_PARTY'
    ) x
    WHERE a_id <> b_id
) p
ORDER BY a_id, b_id, on_date
LIMIT ${budget}
