"""Sale status (P2, P3, P8, P9, P10.1, P10.2, P11.1, P11.2): every stored sale of the year in one table.

``stage_sales`` writes the connection-local TEMP table ``_s_status``: each sale dated in Y with its net
amount (P9), scope (P2), its owner on the sale date (dated ownership, P10.1), dataset and platform
certification on that date (P10.1, P11.1), the four trade-date relations (P8 day graph) and the first
P12 reason per clause. Imports ``settlement.core`` only (the affiliate tables are read by name).
"""

from __future__ import annotations

import duckdb

from settlement.clauses.year_params import YearParams, lit

OPEN_START = "DATE '0001-01-01'"
OPEN_END = "DATE '9999-12-31'"


def certified_sql(reg: str, day: str) -> str:
    """P10.1 / P11.1 (amended): certified_on ≤ day ≤ certified_until; an empty certified_on = never
    certified, an empty certified_until = open-ended."""
    return (f"({reg}.certified_on IS NOT NULL AND {reg}.certified_on <= {day} "
            f"AND coalesce({day} <= {reg}.certified_until, true))")


def stage_sales(con: duckdb.DuckDBPyConnection, yp: YearParams) -> None:
    """_s_status: one row per stored sale dated in Y (see module docstring)."""
    y = yp.year
    in_window = (
        f"t.local_date BETWEEN {lit(yp.window_start)} AND {lit(yp.window_end)}" if yp.first_day else "false"
    )
    # affiliate_day_groups covers the in-scope days of Y: x ≠ y related on d iff both rows cover d with
    # equal group_id (settlement.affiliates); a party without a row is its own group.
    day_group = lambda alias, col: (  # noqa: E731
        f"LEFT JOIN affiliate_day_groups {alias} ON NOT s.retracted AND s.in_window AND {alias}.year = {y} "
        f"AND {alias}.party_id = s.{col} AND s.local_date BETWEEN {alias}.day_from AND {alias}.day_to"
    )
    # One pass (each 10M-row materialisation costs seconds): sales with net, scope, owner, certification,
    # the trade-date relations (range joins only for live in-window sales) and the first P12 reason per clause.
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _s_status AS
WITH live_refunds AS (  -- P9: refunds from non-retracted uploads reduce their sale, whatever their date
    SELECT platform_id, ref_trade_id AS trade_id, sum(amount) AS refunded
    FROM trades WHERE kind = 'refund' AND NOT retracted
    GROUP BY ALL
), s AS (
    -- only the columns later stages read: this table has a row per sale of the year
    SELECT t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.local_date,
           t.retracted, t.upload_id,
           (t.amount - coalesce(r.refunded, 0))::DECIMAL(18,2) AS net,
           {in_window} AS in_window,
           d.owner_id,                                      -- P10.1: the owner of the period of the sale date
           CASE WHEN d.dataset_id IS NOT NULL THEN coalesce(d.owner_from, {OPEN_START}) END
               AS ds_period,                                -- NULL: no registration period covers the date
           d.dataset_id IS NOT NULL AND {certified_sql("d", "t.local_date")} AS ds_certified,      -- P10.1
           p.platform_id IS NOT NULL AND {certified_sql("p", "t.local_date")} AS pf_certified      -- P11.1
    FROM trades t
    LEFT JOIN live_refunds r
           ON NOT t.retracted AND r.platform_id = t.platform_id AND r.trade_id = t.trade_id
    LEFT JOIN datasets d ON d.dataset_id = t.dataset_id
           AND t.local_date BETWEEN coalesce(d.owner_from, {OPEN_START}) AND coalesce(d.owner_until, {OPEN_END})
    LEFT JOIN platforms p ON p.platform_id = t.platform_id
    WHERE t.kind = 'sale' AND t.local_date BETWEEN DATE '{y}-01-01' AND DATE '{y}-12-31'
), f AS (
    SELECT s.*,
           s.buyer_id = s.owner_id OR coalesce(gb.group_id = go.group_id, false) AS rel_owner,
           coalesce(gb.group_id = gs.group_id, false) AS rel_buyer_seller,
           s.platform_id = s.buyer_id OR coalesce(gp.group_id = gb.group_id, false) AS rel_platform_buyer,
           s.platform_id = s.seller_id OR coalesce(gp.group_id = gs.group_id, false) AS rel_platform_seller
    FROM s
    {day_group("gb", "buyer_id")}
    {day_group("go", "owner_id")}
    {day_group("gs", "seller_id")}
    {day_group("gp", "platform_id")}
)
SELECT *,
       CASE WHEN retracted THEN 'RETRACTED' WHEN NOT in_window THEN 'OUT_OF_WINDOW'
            WHEN NOT ds_certified THEN 'NOT_CERTIFIED' WHEN rel_owner THEN 'RELATED_PARTY'
            WHEN net <= 0 THEN 'FULLY_REFUNDED' END AS c6_reason,                        -- P10.2
       CASE WHEN retracted THEN 'RETRACTED' WHEN NOT in_window THEN 'OUT_OF_WINDOW'
            WHEN NOT pf_certified THEN 'PLATFORM_NOT_CERTIFIED'
            WHEN rel_buyer_seller OR rel_platform_buyer OR rel_platform_seller THEN 'RELATED_PARTY'
            WHEN net <= 0 THEN 'FULLY_REFUNDED' END AS c7_reason                         -- P11.2
FROM f
""")
