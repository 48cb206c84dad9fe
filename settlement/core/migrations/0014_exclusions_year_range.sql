-- The regulator view `exclusions` (migration 0011) derived a whole run out of memory (issue 14): on a store of
-- 10M trades `SELECT count(*) FROM exclusions WHERE run_id = 1` needed more than 6 GB and failed. Its sales were
-- those with `year(local_date) = p.year`; DuckDB's planner judged that equality selective (~6,000 of 10M rows)
-- and built the four day-group joins' hash tables on the sales. The view now keeps the sales of the run's year
-- as a range of dates (`local_date BETWEEN make_date(p.year, 1, 1) AND make_date(p.year, 12, 31)`), the same
-- rows, which the planner estimates right: the same count took 14.4 s and 0.56 GB (BENCHMARKS, "The regulator
-- view exclusions on a whole 10M-trade run"). Columns, rows and comments are unchanged.
-- The view's SELECT is settlement/clauses/exclusions.sql over settlement.clauses.relations.view_relations()
-- (tests/backends/test_compact_exclusions.py checks this file holds exactly that text; 0011 keeps the first).

CREATE OR REPLACE VIEW exclusions AS
SELECT run_id, year, clause, platform_id, trade_id, reason, detail, dataset_id, kind, upload_id FROM exclusion_rows
UNION ALL
-- P12: one row per (trade, clause) of the run's year that earns nothing, with its reason and detail (the columns of the
-- regulator view `exclusions`). A refund carries the reason of the sale it reverses (P9); a
-- refund whose sale has no live trade is RETRACTED; refunds of an earning sale are not listed.
-- The sale_reasons placeholder is sale_reasons.sql, inlined twice. Portable (DuckDB and Spark SQL).
SELECT sr.run_id, sr.year, c.clause, sr.platform_id, sr.trade_id,
       CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END AS reason,
       CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END AS detail,
       sr.dataset_id, 'sale' AS kind, sr.upload_id
FROM (-- P12: every sale of the year with its final clause-6 reason (BELOW_CALLER_THRESHOLD for an eligible sale of
-- a dataset that does not qualify, P10.4), its clause-7 reason and both detail texts. Read twice by
-- exclusions.sql (inlined, never materialised: one row per sale). Portable (DuckDB and Spark SQL).
SELECT s.run_id, s.year, s.platform_id, s.trade_id, s.upload_id, s.dataset_id, s.c6_final AS c6_reason_final, s.c7_reason,
       CASE s.c6_final
           WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
           WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window ' || p.window_text || ' (P2)'
           WHEN 'NOT_CERTIFIED' THEN coalesce(ce.text, 'dataset not in the dataset registry (P10.1)')
           WHEN 'RELATED_PARTY' THEN CASE WHEN s.buyer_id = s.owner_id THEN 'buyer is the owner itself (P10.2)'
                ELSE 'buyer related to owner (P8, P10.2): ' || coalesce(r6.path, 'same affiliate group on the trade date; for the record path run: settle affiliates explain A B --on DATE') END
           WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
           WHEN 'BELOW_CALLER_THRESHOLD' THEN s.caller_groups_text || ' unrelated caller group(s); needs more than '
                || CAST(p.threshold AS STRING) || ' (P10.4)'
       END AS detail6,
       CASE s.c7_reason
           WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
           WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window ' || p.window_text || ' (P2)'
           WHEN 'PLATFORM_NOT_CERTIFIED' THEN coalesce(cp.text, 'platform not in the platform registry (P11.1)')
           WHEN 'RELATED_PARTY' THEN
               CASE WHEN s.rel_buyer_seller THEN 'buyer related to seller (P8, P11.2): '
                    WHEN s.rel_platform_buyer THEN 'platform related to buyer (P8, P11.2): '
                    ELSE 'platform related to seller (P8, P11.2): ' END
               || CASE WHEN (s.rel_platform_buyer AND NOT s.rel_buyer_seller AND s.platform_id = s.buyer_id)
                         OR (s.rel_platform_seller AND NOT s.rel_buyer_seller AND NOT s.rel_platform_buyer
                             AND s.platform_id = s.seller_id)
                       THEN 'same enterprise' ELSE coalesce(r7.path, 'same affiliate group on the trade date; for the record path run: settle affiliates explain A B --on DATE') END
           WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
       END AS detail7
FROM (
    SELECT s.*,
           coalesce(s.c6_reason, CASE WHEN NOT coalesce(d.qualifies, false) THEN 'BELOW_CALLER_THRESHOLD' END)
               AS c6_final,
           CAST(d.caller_groups AS STRING) AS caller_groups_text
    FROM (-- Sale status (P2, P3, P8, P9, P10.1, P10.2, P11.1, P11.2): every stored sale dated in the run's year, one row
-- each, with its net amount, scope, owner and certification on the sale date, the four trade-date relations
-- and the first P12 reason per clause. Every relation carries run_id (the run being computed, or each stored
-- run in the regulator view `exclusions`, settlement/clauses/relations.py). Portable (DuckDB and Spark SQL).
WITH live_refunds AS (  -- P9: refunds from non-retracted uploads reduce their sale, whatever their date
    SELECT run_id, platform_id, ref_trade_id AS trade_id, sum(amount) AS refunded
    FROM (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) rt WHERE kind = 'refund' AND NOT retracted
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
    FROM exclusion_runs p
    JOIN (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) t ON t.run_id = p.run_id
    LEFT JOIN live_refunds r ON NOT t.retracted AND r.run_id = t.run_id AND r.platform_id = t.platform_id
           AND r.trade_id = t.trade_id
    LEFT JOIN exclusion_datasets d ON d.run_id = t.run_id AND d.dataset_id = t.dataset_id
           AND t.local_date BETWEEN coalesce(d.owner_from, DATE '0001-01-01')
                                AND coalesce(d.owner_until, DATE '9999-12-31')
    LEFT JOIN exclusion_platforms pf ON pf.run_id = t.run_id AND pf.platform_id = t.platform_id
    WHERE t.kind = 'sale' AND t.local_date BETWEEN make_date(p.year, 1, 1) AND make_date(p.year, 12, 31)
), f AS (  -- P8: related on the trade date = same day group; a party without a row is its own group
    SELECT s.*,
           s.buyer_id = s.owner_id OR coalesce(gb.group_id = go.group_id, false) AS rel_owner,
           coalesce(gb.group_id = gs.group_id, false) AS rel_buyer_seller,
           s.platform_id = s.buyer_id OR coalesce(gp.group_id = gb.group_id, false) AS rel_platform_buyer,
           s.platform_id = s.seller_id OR coalesce(gp.group_id = gs.group_id, false) AS rel_platform_seller
    FROM s
    LEFT JOIN exclusion_day_groups gb ON NOT s.retracted AND s.in_window AND gb.run_id = s.run_id
           AND gb.party_id = s.buyer_id AND s.local_date BETWEEN gb.day_from AND gb.day_to
    LEFT JOIN exclusion_day_groups go ON NOT s.retracted AND s.in_window AND go.run_id = s.run_id
           AND go.party_id = s.owner_id AND s.local_date BETWEEN go.day_from AND go.day_to
    LEFT JOIN exclusion_day_groups gs ON NOT s.retracted AND s.in_window AND gs.run_id = s.run_id
           AND gs.party_id = s.seller_id AND s.local_date BETWEEN gs.day_from AND gs.day_to
    LEFT JOIN exclusion_day_groups gp ON NOT s.retracted AND s.in_window AND gp.run_id = s.run_id
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
) s
    LEFT JOIN (SELECT run_id, dataset_id, owner_id, qualifies, caller_groups FROM run_dataset_results WHERE owner_id IS NOT NULL) d ON d.run_id = s.run_id AND d.dataset_id = s.dataset_id AND d.owner_id = s.owner_id
) s
JOIN exclusion_runs p ON p.run_id = s.run_id
LEFT JOIN (-- P10.1, P12: why a sale's dataset was not certified on its date, per registration period (period NULL: a
-- sale dated before the dataset's first owner_from has no owner). Portable (DuckDB and Spark SQL).
SELECT run_id, dataset_id, coalesce(owner_from, DATE '0001-01-01') AS period,
       CASE WHEN certified_on IS NULL THEN 'dataset listed but never certified (empty certified_on, P10.1)'
            ELSE 'dataset certified ' || CAST(certified_on AS STRING) || '..'
                 || coalesce(CAST(certified_until AS STRING), 'open') || ', not on the trade date (P10.1)'
       END AS text
FROM exclusion_datasets d
UNION ALL
SELECT run_id, dataset_id, CAST(NULL AS DATE) AS period,
       'no owner registered before ' || CAST(min(owner_from) AS STRING)
       || ', the first owner_from of the dataset (P10.1)' AS text
FROM exclusion_datasets d GROUP BY run_id, dataset_id HAVING bool_and(owner_from IS NOT NULL)
) ce ON s.c6_final = 'NOT_CERTIFIED' AND ce.run_id = s.run_id AND ce.dataset_id = s.dataset_id
      AND ce.period IS NOT DISTINCT FROM s.ds_period
LEFT JOIN (-- P11.1, P12: why a sale's platform was not certified on its date. Portable (DuckDB and Spark SQL).
SELECT run_id, platform_id,
       CASE WHEN certified_on IS NULL THEN 'platform listed but never certified (empty certified_on, P11.1)'
            ELSE 'platform certified ' || CAST(certified_on AS STRING) || '..'
                 || coalesce(CAST(certified_until AS STRING), 'open') || ', not on the trade date (P11.1)'
       END AS text
FROM exclusion_platforms pf
) cp ON s.c7_reason = 'PLATFORM_NOT_CERTIFIED' AND cp.run_id = s.run_id
      AND cp.platform_id = s.platform_id
LEFT JOIN exclusion_paths r6 ON s.c6_reason = 'RELATED_PARTY' AND r6.run_id = s.run_id AND r6.a_id = s.buyer_id
      AND r6.b_id = s.owner_id AND r6.on_date = s.local_date
LEFT JOIN exclusion_paths r7 ON s.c7_reason = 'RELATED_PARTY' AND r7.run_id = s.run_id AND r7.on_date = s.local_date
      AND r7.a_id = CASE WHEN s.rel_buyer_seller THEN s.buyer_id ELSE s.platform_id END
      AND r7.b_id = CASE WHEN s.rel_buyer_seller THEN s.seller_id WHEN s.rel_platform_buyer THEN s.buyer_id
                         ELSE s.seller_id END
) sr
CROSS JOIN (SELECT 6 AS clause UNION ALL SELECT 7 AS clause) c
WHERE (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
UNION ALL
SELECT r.run_id, r.year, c.clause, r.platform_id, r.trade_id,
       CASE WHEN r.retracted OR NOT r.has_live_sale THEN 'RETRACTED'
            ELSE CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END END AS reason,
       CASE WHEN r.retracted THEN 'upload ' || CAST(r.upload_id AS STRING) || ' was retracted (P9)'
            WHEN NOT r.has_live_sale THEN 'refunded sale ' || r.ref_trade_id || ' has no live trade (P9)'
            ELSE 'refund of sale ' || r.ref_trade_id || ': '
                 || CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END END AS detail,
       coalesce(sr.dataset_id, r.dataset_id) AS dataset_id, 'refund' AS kind, r.upload_id
FROM (-- P9, P12: the refunds of the run's year (a refund belongs to its live sale's year, else its own date's),
-- with whether that sale is live. Portable (DuckDB and Spark SQL).
SELECT p.run_id, p.year, r.platform_id, r.trade_id, r.upload_id, r.ref_trade_id, r.retracted, r.dataset_id,
       ls.trade_id IS NOT NULL AS has_live_sale, ls.upload_id AS sale_upload_id
FROM exclusion_runs p
JOIN (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) r ON r.run_id = p.run_id
LEFT JOIN (
    SELECT run_id, platform_id, trade_id, local_date, upload_id FROM (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) lt
    WHERE kind = 'sale' AND NOT retracted
) ls ON ls.run_id = r.run_id AND ls.platform_id = r.platform_id AND ls.trade_id = r.ref_trade_id
WHERE r.kind = 'refund' AND year(coalesce(ls.local_date, r.local_date)) = p.year
) r
CROSS JOIN (SELECT 6 AS clause UNION ALL SELECT 7 AS clause) c
LEFT JOIN (-- P12: every sale of the year with its final clause-6 reason (BELOW_CALLER_THRESHOLD for an eligible sale of
-- a dataset that does not qualify, P10.4), its clause-7 reason and both detail texts. Read twice by
-- exclusions.sql (inlined, never materialised: one row per sale). Portable (DuckDB and Spark SQL).
SELECT s.run_id, s.year, s.platform_id, s.trade_id, s.upload_id, s.dataset_id, s.c6_final AS c6_reason_final, s.c7_reason,
       CASE s.c6_final
           WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
           WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window ' || p.window_text || ' (P2)'
           WHEN 'NOT_CERTIFIED' THEN coalesce(ce.text, 'dataset not in the dataset registry (P10.1)')
           WHEN 'RELATED_PARTY' THEN CASE WHEN s.buyer_id = s.owner_id THEN 'buyer is the owner itself (P10.2)'
                ELSE 'buyer related to owner (P8, P10.2): ' || coalesce(r6.path, 'same affiliate group on the trade date; for the record path run: settle affiliates explain A B --on DATE') END
           WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
           WHEN 'BELOW_CALLER_THRESHOLD' THEN s.caller_groups_text || ' unrelated caller group(s); needs more than '
                || CAST(p.threshold AS STRING) || ' (P10.4)'
       END AS detail6,
       CASE s.c7_reason
           WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
           WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window ' || p.window_text || ' (P2)'
           WHEN 'PLATFORM_NOT_CERTIFIED' THEN coalesce(cp.text, 'platform not in the platform registry (P11.1)')
           WHEN 'RELATED_PARTY' THEN
               CASE WHEN s.rel_buyer_seller THEN 'buyer related to seller (P8, P11.2): '
                    WHEN s.rel_platform_buyer THEN 'platform related to buyer (P8, P11.2): '
                    ELSE 'platform related to seller (P8, P11.2): ' END
               || CASE WHEN (s.rel_platform_buyer AND NOT s.rel_buyer_seller AND s.platform_id = s.buyer_id)
                         OR (s.rel_platform_seller AND NOT s.rel_buyer_seller AND NOT s.rel_platform_buyer
                             AND s.platform_id = s.seller_id)
                       THEN 'same enterprise' ELSE coalesce(r7.path, 'same affiliate group on the trade date; for the record path run: settle affiliates explain A B --on DATE') END
           WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
       END AS detail7
FROM (
    SELECT s.*,
           coalesce(s.c6_reason, CASE WHEN NOT coalesce(d.qualifies, false) THEN 'BELOW_CALLER_THRESHOLD' END)
               AS c6_final,
           CAST(d.caller_groups AS STRING) AS caller_groups_text
    FROM (-- Sale status (P2, P3, P8, P9, P10.1, P10.2, P11.1, P11.2): every stored sale dated in the run's year, one row
-- each, with its net amount, scope, owner and certification on the sale date, the four trade-date relations
-- and the first P12 reason per clause. Every relation carries run_id (the run being computed, or each stored
-- run in the regulator view `exclusions`, settlement/clauses/relations.py). Portable (DuckDB and Spark SQL).
WITH live_refunds AS (  -- P9: refunds from non-retracted uploads reduce their sale, whatever their date
    SELECT run_id, platform_id, ref_trade_id AS trade_id, sum(amount) AS refunded
    FROM (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) rt WHERE kind = 'refund' AND NOT retracted
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
    FROM exclusion_runs p
    JOIN (SELECT u.run_id, t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date, t.amount, t.kind, t.ref_trade_id, t.upload_id, u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id) t ON t.run_id = p.run_id
    LEFT JOIN live_refunds r ON NOT t.retracted AND r.run_id = t.run_id AND r.platform_id = t.platform_id
           AND r.trade_id = t.trade_id
    LEFT JOIN exclusion_datasets d ON d.run_id = t.run_id AND d.dataset_id = t.dataset_id
           AND t.local_date BETWEEN coalesce(d.owner_from, DATE '0001-01-01')
                                AND coalesce(d.owner_until, DATE '9999-12-31')
    LEFT JOIN exclusion_platforms pf ON pf.run_id = t.run_id AND pf.platform_id = t.platform_id
    WHERE t.kind = 'sale' AND t.local_date BETWEEN make_date(p.year, 1, 1) AND make_date(p.year, 12, 31)
), f AS (  -- P8: related on the trade date = same day group; a party without a row is its own group
    SELECT s.*,
           s.buyer_id = s.owner_id OR coalesce(gb.group_id = go.group_id, false) AS rel_owner,
           coalesce(gb.group_id = gs.group_id, false) AS rel_buyer_seller,
           s.platform_id = s.buyer_id OR coalesce(gp.group_id = gb.group_id, false) AS rel_platform_buyer,
           s.platform_id = s.seller_id OR coalesce(gp.group_id = gs.group_id, false) AS rel_platform_seller
    FROM s
    LEFT JOIN exclusion_day_groups gb ON NOT s.retracted AND s.in_window AND gb.run_id = s.run_id
           AND gb.party_id = s.buyer_id AND s.local_date BETWEEN gb.day_from AND gb.day_to
    LEFT JOIN exclusion_day_groups go ON NOT s.retracted AND s.in_window AND go.run_id = s.run_id
           AND go.party_id = s.owner_id AND s.local_date BETWEEN go.day_from AND go.day_to
    LEFT JOIN exclusion_day_groups gs ON NOT s.retracted AND s.in_window AND gs.run_id = s.run_id
           AND gs.party_id = s.seller_id AND s.local_date BETWEEN gs.day_from AND gs.day_to
    LEFT JOIN exclusion_day_groups gp ON NOT s.retracted AND s.in_window AND gp.run_id = s.run_id
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
) s
    LEFT JOIN (SELECT run_id, dataset_id, owner_id, qualifies, caller_groups FROM run_dataset_results WHERE owner_id IS NOT NULL) d ON d.run_id = s.run_id AND d.dataset_id = s.dataset_id AND d.owner_id = s.owner_id
) s
JOIN exclusion_runs p ON p.run_id = s.run_id
LEFT JOIN (-- P10.1, P12: why a sale's dataset was not certified on its date, per registration period (period NULL: a
-- sale dated before the dataset's first owner_from has no owner). Portable (DuckDB and Spark SQL).
SELECT run_id, dataset_id, coalesce(owner_from, DATE '0001-01-01') AS period,
       CASE WHEN certified_on IS NULL THEN 'dataset listed but never certified (empty certified_on, P10.1)'
            ELSE 'dataset certified ' || CAST(certified_on AS STRING) || '..'
                 || coalesce(CAST(certified_until AS STRING), 'open') || ', not on the trade date (P10.1)'
       END AS text
FROM exclusion_datasets d
UNION ALL
SELECT run_id, dataset_id, CAST(NULL AS DATE) AS period,
       'no owner registered before ' || CAST(min(owner_from) AS STRING)
       || ', the first owner_from of the dataset (P10.1)' AS text
FROM exclusion_datasets d GROUP BY run_id, dataset_id HAVING bool_and(owner_from IS NOT NULL)
) ce ON s.c6_final = 'NOT_CERTIFIED' AND ce.run_id = s.run_id AND ce.dataset_id = s.dataset_id
      AND ce.period IS NOT DISTINCT FROM s.ds_period
LEFT JOIN (-- P11.1, P12: why a sale's platform was not certified on its date. Portable (DuckDB and Spark SQL).
SELECT run_id, platform_id,
       CASE WHEN certified_on IS NULL THEN 'platform listed but never certified (empty certified_on, P11.1)'
            ELSE 'platform certified ' || CAST(certified_on AS STRING) || '..'
                 || coalesce(CAST(certified_until AS STRING), 'open') || ', not on the trade date (P11.1)'
       END AS text
FROM exclusion_platforms pf
) cp ON s.c7_reason = 'PLATFORM_NOT_CERTIFIED' AND cp.run_id = s.run_id
      AND cp.platform_id = s.platform_id
LEFT JOIN exclusion_paths r6 ON s.c6_reason = 'RELATED_PARTY' AND r6.run_id = s.run_id AND r6.a_id = s.buyer_id
      AND r6.b_id = s.owner_id AND r6.on_date = s.local_date
LEFT JOIN exclusion_paths r7 ON s.c7_reason = 'RELATED_PARTY' AND r7.run_id = s.run_id AND r7.on_date = s.local_date
      AND r7.a_id = CASE WHEN s.rel_buyer_seller THEN s.buyer_id ELSE s.platform_id END
      AND r7.b_id = CASE WHEN s.rel_buyer_seller THEN s.seller_id WHEN s.rel_platform_buyer THEN s.buyer_id
                         ELSE s.seller_id END
) sr ON r.has_live_sale AND sr.run_id = r.run_id AND sr.platform_id = r.platform_id
      AND sr.trade_id = r.ref_trade_id AND sr.upload_id = r.sale_upload_id
WHERE r.retracted OR NOT r.has_live_sale
   OR (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
;
COMMENT ON VIEW exclusions IS 'Every stored trade of the run''s year that earns nothing under a clause, with ONE P12 reason per clause (CONTRACT regulator schema). Refunds carry the reason of the sale they reverse. Derived on demand from each run''s compact record (exclusion_runs ...) and trade_rows; filter on run_id.';
COMMENT ON COLUMN exclusions.run_id IS 'settlement_runs.run_id of the run that found the exclusion.';
COMMENT ON COLUMN exclusions.year IS 'Settlement year (of the sale; a refund belongs to its sale''s year, P9).';
COMMENT ON COLUMN exclusions.clause IS '6 (dataset reward, P10) or 7 (platform subsidy, P11).';
COMMENT ON COLUMN exclusions.platform_id IS 'Platform of the trade (trade ids are unique per platform).';
COMMENT ON COLUMN exclusions.trade_id IS 'The excluded trade.';
COMMENT ON COLUMN exclusions.reason IS 'P12 code, first that applies: RETRACTED, OUT_OF_WINDOW, NOT_CERTIFIED / PLATFORM_NOT_CERTIFIED, RELATED_PARTY, FULLY_REFUNDED; BELOW_CALLER_THRESHOLD (clause 6).';
COMMENT ON COLUMN exclusions.detail IS 'Why, in words; for RELATED_PARTY the path of affiliation records (P7).';
COMMENT ON COLUMN exclusions.dataset_id IS 'Dataset of the trade (of the refunded sale for a refund).';
COMMENT ON COLUMN exclusions.kind IS 'sale or refund (P9).';
COMMENT ON COLUMN exclusions.upload_id IS 'Upload that stored the trade (a retracted trade id may repeat in a later upload).';
