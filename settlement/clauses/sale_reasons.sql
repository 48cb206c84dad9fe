-- P12: every sale of the year with its final clause-6 reason (BELOW_CALLER_THRESHOLD for an eligible sale of
-- a dataset that does not qualify, P10.4), its clause-7 reason and both detail texts. Read twice by
-- exclusions.sql (inlined, never materialised: one row per sale). Portable (DuckDB and Spark SQL).
SELECT s.run_id, s.year, s.platform_id, s.trade_id, s.upload_id, s.dataset_id, s.c6_final AS c6_reason_final, s.c7_reason,
       CASE s.c6_final
           WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
           WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window ' || p.window_text || ' (P2)'
           WHEN 'NOT_CERTIFIED' THEN coalesce(ce.text, 'dataset not in the dataset registry (P10.1)')
           WHEN 'RELATED_PARTY' THEN CASE WHEN s.buyer_id = s.owner_id THEN 'buyer is the owner itself (P10.2)'
                ELSE 'buyer related to owner (P8, P10.2): ' || coalesce(r6.path, ${no_path}) END
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
                       THEN 'same enterprise' ELSE coalesce(r7.path, ${no_path}) END
           WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
       END AS detail7
FROM (
    SELECT s.*,
           coalesce(s.c6_reason, CASE WHEN NOT coalesce(d.qualifies, false) THEN 'BELOW_CALLER_THRESHOLD' END)
               AS c6_final,
           CAST(d.caller_groups AS STRING) AS caller_groups_text
    FROM ${status} s
    LEFT JOIN ${qualifies} d ON d.run_id = s.run_id AND d.dataset_id = s.dataset_id AND d.owner_id = s.owner_id
) s
JOIN ${params} p ON p.run_id = s.run_id
LEFT JOIN ${cert6} ce ON s.c6_final = 'NOT_CERTIFIED' AND ce.run_id = s.run_id AND ce.dataset_id = s.dataset_id
      AND ce.period IS NOT DISTINCT FROM s.ds_period
LEFT JOIN ${cert7} cp ON s.c7_reason = 'PLATFORM_NOT_CERTIFIED' AND cp.run_id = s.run_id
      AND cp.platform_id = s.platform_id
LEFT JOIN ${related} r6 ON s.c6_reason = 'RELATED_PARTY' AND r6.run_id = s.run_id AND r6.a_id = s.buyer_id
      AND r6.b_id = s.owner_id AND r6.on_date = s.local_date
LEFT JOIN ${related} r7 ON s.c7_reason = 'RELATED_PARTY' AND r7.run_id = s.run_id AND r7.on_date = s.local_date
      AND r7.a_id = CASE WHEN s.rel_buyer_seller THEN s.buyer_id ELSE s.platform_id END
      AND r7.b_id = CASE WHEN s.rel_buyer_seller THEN s.seller_id WHEN s.rel_platform_buyer THEN s.buyer_id
                         ELSE s.seller_id END
