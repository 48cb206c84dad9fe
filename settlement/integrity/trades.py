"""Integrity codes over the stored trades of the year: ROUND_TRIP, PRICE_OUTLIER, REFUND_AFTER_APPROVAL.

Each function returns one SELECT yielding the columns of ``context.FLAG_COLUMNS``; evidence trade ids are
named directly. Reads ``trades`` (live rows only, P9), ``uploads``, ``affiliate_groups`` (year graph, P8),
``settlement_runs``, ``run_targets`` and the lifecycle's ``run_states`` (approvals, issue 11). Imports ``settlement.core`` only (through ``context``).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

from settlement.integrity.context import FlagContext, dec, group_of


def round_trip_sql(ctx: FlagContext) -> str:
    """ROUND_TRIP: a sale from group A to group B followed within ``days`` by a sale of comparable amount
    (within ``amount_tolerance`` of the larger) from B back to A. One flag per pair of groups.

    Only buyers whose year group also sells can close a round trip, so the sales are cut to those buyers
    (a semi-join on a small party set) before the groups are looked up and the sales joined to each other.
    The self-join is an equality join on buckets, never a scan of every sale between two groups (one giant
    group trades with everyone): a return sale within ``days`` lies in the outbound sale's day bucket
    (width days + 1) or the next, and one of comparable amount in its log-amount bucket (width
    -ln(1 - tolerance)) or a neighbour; the exact conditions are then checked on those candidates only."""
    days = int(ctx.th("ROUND_TRIP", "days"))
    tol_value = Decimal(ctx.th("ROUND_TRIP", "amount_tolerance"))
    tol = dec(tol_value)
    until = date(ctx.year, 12, 31) + timedelta(days=days)
    sj, sgrp = group_of("s.seller_id", "gs", ctx)
    bj, bgrp = group_of("s.buyer_id", "gb", ctx)
    pj, pgrp = group_of("x.seller_id", "gx", ctx)
    live = f"s.kind = 'sale' AND NOT s.retracted AND s.local_date BETWEEN DATE '{ctx.first_day}' AND DATE '{until}'"
    return_rows = f"""
WITH sellers AS (  -- the seller of any stored trade: a superset only keeps more buyers (still exact), and
                  -- unlike the year's live sales it is no subplan DuckDB would share with s and materialise
                  -- (10M rows of 7 columns)
    SELECT DISTINCT seller_id FROM trades
),
seller_groups AS (SELECT DISTINCT {pgrp} AS g FROM sellers x {pj}),
near AS (  -- parties whose year group holds a seller: the only buyers that can close a round trip
    SELECT seller_id AS party_id FROM sellers
    UNION SELECT party_id FROM affiliate_groups WHERE year = {ctx.year} AND group_id IN (SELECT g FROM seller_groups)
), s AS (
    SELECT s.trade_id, s.platform_id, s.dataset_id, s.seller_id, s.buyer_id, s.local_date, s.amount,
           {sgrp} AS sg, {bgrp} AS bg, {_amount_bucket("s.amount", tol_value)} AS ab,
           (s.local_date - DATE '1970-01-01') // {days + 1} AS db
    FROM trades s {sj} {bj}
    WHERE {live} AND s.buyer_id IN (SELECT party_id FROM near)
), x AS (  -- a sale within one group can be neither leg (the legs join two different groups)
    SELECT * FROM s WHERE sg <> bg
), a AS (  -- each outbound sale with the (amount, day) buckets its return sale can lie in
    SELECT s.*, s.ab + da AS kab, s.db + dd AS kdb
    FROM x s, (VALUES (-1), (0), (1)) k1(da), (VALUES (0), (1)) k2(dd)
    WHERE year(s.local_date) = {ctx.year}
), r AS (
    SELECT a.sg AS ga, a.bg AS gb, a.trade_id AS out_id, b.trade_id AS back_id, a.amount AS out_amount,
           b.amount AS back_amount, a.local_date AS out_day, b.local_date AS back_day, a.seller_id AS a_seller,
           a.buyer_id AS a_buyer, b.seller_id AS b_seller, b.buyer_id AS b_buyer
    FROM a JOIN x b ON b.sg = a.bg AND b.bg = a.sg AND b.ab = a.kab AND b.db = a.kdb
         AND b.local_date BETWEEN a.local_date AND a.local_date + {days}
         AND (b.local_date, b.platform_id, b.trade_id) > (a.local_date, a.platform_id, a.trade_id)  -- a swap counts once
         AND abs(a.amount - b.amount) <= {tol} * greatest(a.amount, b.amount)
), p AS (
    -- sets and the first pairs, not a list of every trip: one giant group trading with everyone makes 1.6M
    -- trips of 156 pairs of groups in 10M trades, and listing them all cost 7 of the statement's 16 s (issue 14)
    SELECT least(ga, gb) AS g1, greatest(ga, gb) AS g2, count(*) AS trips,
           list_sort(list_distinct(list(DISTINCT a_seller) || list(DISTINCT a_buyer) || list(DISTINCT b_seller)
                                   || list(DISTINCT b_buyer))) AS parties,
           list_transform(min_by({{'o': out_id, 'b': back_id}}, (out_day, out_id, back_id), {ctx.evidence_limit}),
                          lambda t: t.o || '↔' || t.b) AS pairs,
           list_sort(list_distinct(list(DISTINCT out_id) || list(DISTINCT back_id))) AS ids
    FROM r GROUP BY ALL
)
SELECT 'ROUND_TRIP' AS code, NULL AS dataset_id, NULL AS platform_id, parties,
       ids[1:{ctx.evidence_limit}] AS evidence, []::STRUCT(d VARCHAR, b VARCHAR)[] AS ev_pairs,
       to_json(struct_pack(groups := [g1, g2], round_trips := trips,
                           first_pairs := pairs[1:{ctx.evidence_limit}],
                           days := {days}, amount_tolerance := '{ctx.th("ROUND_TRIP", "amount_tolerance")}'))::VARCHAR AS figures,
       format('{{}} sale(s) between groups {{}} and {{}} came back within {days} days at a comparable amount '
              || '(first: {{}})', trips, g1, g2, pairs[1]) AS detail
FROM p"""
    return return_rows


def _amount_bucket(amount: str, tolerance: Decimal) -> str:
    """Bucket of ``amount`` such that two amounts within ``tolerance`` of the larger (|a - b| <= t·max) lie in
    the same or neighbouring buckets: floor(ln(amount) / w) with w = -ln(1 - t), widened a little so float
    rounding can never put such a pair two buckets apart. Non-positive amounts share one bucket far from the
    rest (two of them can only match when both are 0); t >= 1 makes every amount comparable: one bucket."""
    if tolerance >= 1:
        return "0"
    width = -math.log(1 - float(tolerance)) * 1.000001
    return f"CASE WHEN {amount} > 0 THEN CAST(floor(ln(CAST({amount} AS DOUBLE)) / {width!r}) AS BIGINT) ELSE -1000000000 END"


def price_outlier_sql(ctx: FlagContext) -> str:
    """PRICE_OUTLIER: sales of at least ``multiple`` × the dataset's median live sale amount of the year
    (datasets with ``min_sales`` sales or more; sales of ``min_amount`` or more). One flag per dataset."""
    mult, n = dec(ctx.th("PRICE_OUTLIER", "multiple")), int(ctx.th("PRICE_OUTLIER", "min_sales"))
    least = dec(ctx.th("PRICE_OUTLIER", "min_amount"))
    return f"""
WITH m AS (  -- two scans of the year's sales, the first of two columns only: one shared CTE of every sale
            -- would be materialised with its six columns (10M rows)
    SELECT dataset_id, median(amount) AS med, count(*) AS n FROM trades t WHERE {ctx.year_sales("t")}
    GROUP BY dataset_id  -- only a dataset whose largest sale is an outlier has one: the others' sales stay unread
    HAVING count(*) >= {n} AND max(amount) >= {mult} * median(amount) AND max(amount) >= {least}
), s AS (
    SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, amount FROM trades t
    WHERE {ctx.year_sales("t")} AND t.amount >= {least} AND t.dataset_id IN (SELECT dataset_id FROM m)
), o AS (
    SELECT s.dataset_id, any_value(m.med) AS med, any_value(m.n) AS n, count(*) AS outliers, max(s.amount) AS top,
           list(s.trade_id ORDER BY s.amount DESC, s.trade_id) AS ids,
           list_sort(list_distinct(flatten(list([s.seller_id, s.buyer_id])))) AS parties,
           list_sort(list_distinct(list(s.platform_id))) AS platforms
    FROM s JOIN m ON m.dataset_id = s.dataset_id
    WHERE s.amount >= {mult} * m.med AND s.amount >= {least}
    GROUP BY s.dataset_id
)
SELECT 'PRICE_OUTLIER' AS code, dataset_id, CASE WHEN len(platforms) = 1 THEN platforms[1] END AS platform_id,
       parties, ids[1:{ctx.evidence_limit}] AS evidence, []::STRUCT(d VARCHAR, b VARCHAR)[] AS ev_pairs,
       to_json(struct_pack(median := med::VARCHAR, sales := n, outliers := outliers, largest := top::VARCHAR,
                           multiple := '{ctx.th("PRICE_OUTLIER", "multiple")}', platforms := platforms))::VARCHAR AS figures,
       format('dataset {{}}: {{}} sale(s) at {ctx.th("PRICE_OUTLIER", "multiple")}× or more its median price of {{}} in {ctx.year} '
              || '({{}} sales); the largest is {{}}', dataset_id, outliers, med, n, top) AS detail
FROM o"""


def refund_after_approval_sql(ctx: FlagContext) -> str:
    """REFUND_AFTER_APPROVAL: live refunds of the year's sales stored (upload time) after the latest earlier
    APPROVED run of the year was computed (its finished_at: the approved amounts did not see them), of a
    sale whose key that run paid (clause 6 target of its dataset or clause 7 target of its platform).
    Approval is read from the lifecycle's view ``run_states`` (issue 11). P9: a refund changes its sale's year."""
    return f"""
WITH prev AS (
    SELECT s.run_id, s.finished_at FROM settlement_runs s JOIN run_states a ON a.run_id = s.run_id
    WHERE s.year = {ctx.year} AND s.run_id < {ctx.run_id} AND a.state = 'approved' ORDER BY s.run_id DESC LIMIT 1
), rf AS (
    SELECT r.trade_id, r.platform_id, r.ref_trade_id, r.amount, u.uploaded_at
    FROM trades r JOIN uploads u ON u.id = r.upload_id
    WHERE r.kind = 'refund' AND NOT r.retracted AND u.uploaded_at > (SELECT finished_at FROM prev)
), hit AS (
    SELECT rf.*, s.dataset_id, s.seller_id, s.buyer_id, s.local_date AS sale_day,
           EXISTS (SELECT 1 FROM run_targets k WHERE k.run_id = (SELECT run_id FROM prev) AND k.clause = 6
                   AND k.dataset_id = s.dataset_id) AS paid6,
           EXISTS (SELECT 1 FROM run_targets k WHERE k.run_id = (SELECT run_id FROM prev) AND k.clause = 7
                   AND k.beneficiary_id = s.platform_id) AS paid7
    FROM rf JOIN trades s ON s.platform_id = rf.platform_id AND s.trade_id = rf.ref_trade_id
    WHERE {ctx.year_sales("s")}
), f AS (
    SELECT platform_id, dataset_id, count(*) AS refunds, sum(amount) AS refunded,
           list(trade_id || ' (of ' || ref_trade_id || ')' ORDER BY trade_id) AS ids,
           list_sort(list_distinct(flatten(list([seller_id, buyer_id])))) AS parties,
           max(uploaded_at) AS last_upload, bool_or(paid6) AS paid6, bool_or(paid7) AS paid7
    FROM hit WHERE paid6 OR paid7 GROUP BY platform_id, dataset_id
)
SELECT 'REFUND_AFTER_APPROVAL' AS code, dataset_id, platform_id, parties, ids[1:{ctx.evidence_limit}] AS evidence,
       []::STRUCT(d VARCHAR, b VARCHAR)[] AS ev_pairs,
       to_json(struct_pack(refunds := refunds, refunded := refunded::VARCHAR, approved_run := (SELECT run_id FROM prev),
                           approved_run_finished_at := (SELECT finished_at FROM prev)::VARCHAR, clause6_paid := paid6,
                           clause7_paid := paid7))::VARCHAR AS figures,
       format('{{}} refund(s) totalling {{}} of {ctx.year} sales of dataset {{}} on platform {{}} were stored after approved run {{}} '
              || 'of {ctx.year} was computed (P9: a refund changes its sale''s year)',
              refunds, refunded, dataset_id, platform_id, (SELECT run_id FROM prev)) AS detail
FROM f"""
