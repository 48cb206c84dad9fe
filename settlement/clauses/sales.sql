-- Sale status (P2, P3, P8, P9, P10.1, P10.2, P11.1, P11.2): every stored sale dated in the run's year, one row
-- each, with its net amount, scope, owner and certification on the sale date, the four trade-date relations
-- and the first P12 reason per clause. Every relation carries run_id (the run being computed, or each stored
-- run in the regulator view `exclusions`, settlement/clauses/relations.py). Portable (DuckDB and Spark SQL).
WITH live_refunds AS (  -- P9: refunds from non-retracted uploads reduce their sale, whatever their date
    SELECT run_id, platform_id, ref_trade_id AS trade_id, sum(amount) AS refunded
    FROM ${trades} rt WHERE kind = 'refund' AND NOT retracted
    GROUP BY run_id, platform_id, ref_trade_id
), s AS (
    SELECT p.run_id, p.year, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date,
           t.retracted, t.upload_id,
           CAST(t.amount - coalesce(r.refunded, 0) AS DECIMAL(18,2)) AS net,
           p.in_scope AND t.local_date BETWEEN p.window_start AND p.window_end AS in_window,        -- P2
           d.owner_id,                                       -- P10.1: the owner of the period of the sale date
           CASE WHEN d.dataset_id IS NOT NULL THEN coalesce(d.owner_from, DATE '0001-01-01') END
               AS ds_period,                                 -- NULL: no registration period covers the date
           d.dataset_id IS NOT NULL AND d.certified_on IS NOT NULL AND d.certified_on <= t.local_date
               AND coalesce(t.local_date <= d.certified_until, true) AS ds_certified,         -- P10.1
           pf.platform_id IS NOT NULL AND pf.certified_on IS NOT NULL AND pf.certified_on <= t.local_date
               AND coalesce(t.local_date <= pf.certified_until, true) AS pf_certified         -- P11.1
    FROM ${params} p
    JOIN ${trades} t ON t.run_id = p.run_id
    LEFT JOIN live_refunds r ON NOT t.retracted AND r.run_id = t.run_id AND r.platform_id = t.platform_id
           AND r.trade_id = t.trade_id
    LEFT JOIN ${datasets} d ON d.run_id = t.run_id AND d.dataset_id = t.dataset_id
           AND t.local_date BETWEEN coalesce(d.owner_from, DATE '0001-01-01')
                                AND coalesce(d.owner_until, DATE '9999-12-31')
    LEFT JOIN ${platforms} pf ON pf.run_id = t.run_id AND pf.platform_id = t.platform_id
    WHERE t.kind = 'sale' AND ${sale_in_year}
), f AS (  -- P8: related on the trade date = same day group; a party without a row is its own group
    SELECT s.*,
           s.buyer_id = s.owner_id OR coalesce(gb.group_id = go.group_id, false) AS rel_owner,
           coalesce(gb.group_id = gs.group_id, false) AS rel_buyer_seller,
           s.platform_id = s.buyer_id OR coalesce(gp.group_id = gb.group_id, false) AS rel_platform_buyer,
           s.platform_id = s.seller_id OR coalesce(gp.group_id = gs.group_id, false) AS rel_platform_seller
    FROM s
    LEFT JOIN ${day_groups} gb ON NOT s.retracted AND s.in_window AND gb.run_id = s.run_id
           AND gb.party_id = s.buyer_id AND s.local_date BETWEEN gb.day_from AND gb.day_to
    LEFT JOIN ${day_groups} go ON NOT s.retracted AND s.in_window AND go.run_id = s.run_id
           AND go.party_id = s.owner_id AND s.local_date BETWEEN go.day_from AND go.day_to
    LEFT JOIN ${day_groups} gs ON NOT s.retracted AND s.in_window AND gs.run_id = s.run_id
           AND gs.party_id = s.seller_id AND s.local_date BETWEEN gs.day_from AND gs.day_to
    LEFT JOIN ${day_groups} gp ON NOT s.retracted AND s.in_window AND gp.run_id = s.run_id
           AND gp.party_id = s.platform_id AND s.local_date BETWEEN gp.day_from AND gp.day_to
)
SELECT f.*,
       CASE WHEN retracted THEN 'RETRACTED' WHEN NOT in_window THEN 'OUT_OF_WINDOW'
            WHEN NOT ds_certified THEN 'NOT_CERTIFIED' WHEN rel_owner THEN 'RELATED_PARTY'
            WHEN net <= 0 THEN 'FULLY_REFUNDED' END AS c6_reason,                           -- P10.2
       CASE WHEN retracted THEN 'RETRACTED' WHEN NOT in_window THEN 'OUT_OF_WINDOW'
            WHEN NOT pf_certified THEN 'PLATFORM_NOT_CERTIFIED'
            WHEN rel_buyer_seller OR rel_platform_buyer OR rel_platform_seller THEN 'RELATED_PARTY'
            WHEN net <= 0 THEN 'FULLY_REFUNDED' END AS c7_reason                            -- P11.2
FROM f
