"""Clause 6 (dataset reward, P10) and clause 7 (platform subsidy, P11) for one settlement year.

Owns: the set-based DuckDB SQL that turns the stored trades, the registries, the prior awards and the
affiliate groups into the TARGET payable per ledger key, the P12 exclusion of every trade that earns
nothing, and the per-dataset / per-platform explanation rows. Works in connection-local TEMP tables
(``_s_*``) so millions of exclusion rows never pass through Python; ``settlement.run`` copies them into
the run tables once the ledger has given the run id.

Pure of the ledger: must not import ``ledgers``, the CLI or the API. Reads the ``affiliate_groups`` /
``affiliate_day_groups`` tables that ``settlement.affiliates.groups.build_year_groups`` materialises (called here,
as the stage before the clauses).

Decisions where the policy is silent (also in docs/architecture.md "Settlement"):
- a buyer that IS the owner (or a platform that is the buyer or seller) counts as related (RELATED_PARTY,
  detail "same enterprise"): an enterprise is trivially not "non-affiliated" with itself (P10.2, P11.2);
- a refund is listed in ``exclusions`` under the reason of the sale it reverses (its year is the sale's,
  P9); a refund whose sale has no live trade is RETRACTED; refunds of an earning sale are not listed
  (they only lower that sale's net amount);
- eligible sales of a qualifying dataset whose payable is 0 because of prior awards are NOT exclusions:
  they earn under clause 6, supplementary rule 2 only nets the award (P10.6);
- rates, caps and the threshold are read on the first in-scope day of the year (params file header).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import duckdb
import polars as pl

from settlement.affiliates import groups as affiliates
from settlement.core.money import sql_round_money, sql_split_cap

# P12 reason codes, in the order they are tried.
RETRACTED = "RETRACTED"
OUT_OF_WINDOW = "OUT_OF_WINDOW"
NOT_CERTIFIED = "NOT_CERTIFIED"
PLATFORM_NOT_CERTIFIED = "PLATFORM_NOT_CERTIFIED"
RELATED_PARTY = "RELATED_PARTY"
FULLY_REFUNDED = "FULLY_REFUNDED"
BELOW_CALLER_THRESHOLD = "BELOW_CALLER_THRESHOLD"

TARGET_SCHEMA = {
    "clause": pl.Int64,
    "beneficiary_id": pl.String,
    "dataset_id": pl.String,
    "amount": pl.Decimal(18, 2),
}


@dataclass(frozen=True)
class YearParams:
    """The parameter values one settlement year uses (dated parameters read once, see module doc)."""

    year: int
    first_day: date | None  # first in-scope day of the year (P2 ∩ P3), None when the year has none
    last_day: date | None
    c6_rate: Decimal | None
    c6_threshold: int | None
    c6_cap: Decimal | None
    c7_rate: Decimal | None
    c7_cap: Decimal | None
    equity_threshold: Decimal | None
    window_start: date | None
    window_end: date | None


def year_params(params, year: int) -> YearParams:
    """Read every value a year needs; a year without in-scope days needs none (it pays nothing, P2)."""
    days = params.in_scope_days(year)
    if days is None:
        return YearParams(year, None, None, None, None, None, None, None, None, None, None)
    first, last = days
    v = lambda name: params.value(name, first)  # noqa: E731 - rates on the first in-scope day
    return YearParams(
        year=year,
        first_day=first,
        last_day=last,
        c6_rate=Decimal(v("clause6.rate")),
        c6_threshold=int(v("clause6.caller_threshold")),
        c6_cap=Decimal(v("clause6.cap")),
        c7_rate=Decimal(v("clause7.rate")),
        c7_cap=Decimal(v("clause7.cap")),
        equity_threshold=Decimal(v("affiliates.equity_threshold")),
        window_start=params.value("window.start", date(year, 12, 31)),
        window_end=params.value("window.end", date(year, 12, 31)),
    )


@dataclass(frozen=True)
class Targets:
    """What a settlement run of one year must reach, and why.

    ``targets``: clause, beneficiary_id, dataset_id ('' for clause 7), amount (non-zero keys only; a key
    absent here has target 0, the ledger claws it back). ``datasets`` / ``platforms``: the explanation rows
    (columns of run_dataset_results / run_platform_results without run_id). Exclusions and caller buyers
    are ``exclusions_sql`` (a SELECT over this connection's TEMP tables, inserted under the run id by
    settlement.run) and the TEMP table ``_s_callers``; ``drop_staging`` removes the TEMP tables.
    """

    year: int
    params: YearParams
    targets: pl.DataFrame
    datasets: pl.DataFrame
    platforms: pl.DataFrame
    exclusions_sql: str = ""
    callers_table: str = "_s_callers"


def _lit(value) -> str:
    """SQL literal for a parameter value we produced ourselves (dates, Decimals, ints), never user text."""
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        return f"CAST('{value}' AS DECIMAL(18,6))"
    return str(int(value))


def _stage_sales(con: duckdb.DuckDBPyConnection, yp: YearParams) -> None:
    """_s_sales: every stored sale dated in Y with its net amount (P9), scope (P2), certification
    (P10.1, P11.1) and the four relations on its trade date (P8 trade-date graph)."""
    y = yp.year
    in_window = (
        f"t.local_date BETWEEN {_lit(yp.window_start)} AND {_lit(yp.window_end)}" if yp.first_day else "false"
    )
    # affiliate_day_groups covers the in-scope days of Y: x ≠ y related on d iff both rows cover d with
    # equal group_id (settlement.affiliates.groups); a party without a row is its own group.
    day_group = lambda alias, col: (  # noqa: E731
        f"LEFT JOIN affiliate_day_groups {alias} ON NOT s.retracted AND s.in_window AND {alias}.year = {y} "
        f"AND {alias}.party_id = s.{col} AND s.local_date BETWEEN {alias}.day_from AND {alias}.day_to"
    )
    # One pass (each 10M-row materialisation costs seconds): sales with net, scope, certification, the
    # trade-date relations (range joins only for live in-window sales) and the first P12 reason per clause.
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
           d.owner_id,
           d.dataset_id IS NOT NULL AND coalesce(d.certified_on <= t.local_date, true)
               AND coalesce(t.local_date <= d.certified_until, true) AS ds_certified,      -- P10.1
           p.platform_id IS NOT NULL AND coalesce(p.certified_on <= t.local_date, true)
               AND coalesce(t.local_date <= p.certified_until, true) AS pf_certified       -- P11.1
    FROM trades t
    LEFT JOIN live_refunds r
           ON NOT t.retracted AND r.platform_id = t.platform_id AND r.trade_id = t.trade_id
    LEFT JOIN datasets d ON d.dataset_id = t.dataset_id
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


def _clause6(con: duckdb.DuckDBPyConnection, yp: YearParams) -> pl.DataFrame:
    """_s_callers and the per-dataset rows of P10.3–P10.7."""
    y = yp.year
    # P10.3: callers by year-graph affiliate group (P8); a buyer absent from affiliate_groups is its own.
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _s_callers AS
WITH b AS (
    SELECT s.dataset_id, coalesce(CAST(ag.group_id AS VARCHAR), 'own:' || s.buyer_id) AS group_id,
           s.buyer_id, count(*) AS eligible_sales, sum(s.net)::DECIMAL(18,2) AS net_amount
    FROM _s_status s
    LEFT JOIN affiliate_groups ag ON ag.year = {y} AND ag.party_id = s.buyer_id
    WHERE s.c6_reason IS NULL
    GROUP BY ALL
)
SELECT {y} AS year, *,
       sum(net_amount) OVER (PARTITION BY dataset_id, group_id) > 0 AS group_counted
FROM b
""")
    thr = _lit(yp.c6_threshold)
    rate = _lit(yp.c6_rate)
    cap = _lit(yp.c6_cap)
    gross = sql_round_money(f"{rate} * d.base")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _s_datasets0 AS
WITH per AS (
    SELECT dataset_id, sum(eligible_sales) AS eligible_sales, sum(net_amount)::DECIMAL(18,2) AS base,
           count(DISTINCT group_id) FILTER (WHERE group_counted) AS caller_groups
    FROM _s_callers GROUP BY dataset_id
), prior AS (  -- P10.6 supplementary rule 2: awards already paid for the same dataset and year
    SELECT dataset_id, sum(amount)::DECIMAL(18,2) AS prior_awards FROM prior_awards WHERE year = {y}
    GROUP BY dataset_id
), keys AS (SELECT dataset_id FROM per UNION SELECT dataset_id FROM prior),
d AS (
    SELECT k.dataset_id, ds.owner_id, coalesce(per.eligible_sales, 0)::BIGINT AS eligible_sales,
           coalesce(per.caller_groups, 0)::BIGINT AS caller_groups,
           {thr}::INTEGER AS caller_threshold,
           coalesce(coalesce(per.caller_groups, 0) > {thr}, false) AS qualifies,          -- P10.4 "> 3"
           coalesce(per.base, 0)::DECIMAL(18,2) AS base,
           {rate}::DECIMAL(9,6) AS rate,
           coalesce(prior.prior_awards, 0)::DECIMAL(18,2) AS prior_awards
    FROM keys k LEFT JOIN per USING (dataset_id) LEFT JOIN prior USING (dataset_id)
    LEFT JOIN datasets ds USING (dataset_id)
)
SELECT d.*,
       CASE WHEN d.qualifies THEN {gross} ELSE 0 END::DECIMAL(18,2) AS gross                -- P10.5, P1
FROM d
""")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _s_datasets AS
WITH p AS (
    SELECT *, greatest(gross - prior_awards, 0)::DECIMAL(18,2) AS payable                     -- P10.6
    FROM _s_datasets0
), split AS ({sql_split_cap("SELECT owner_id, dataset_id, payable FROM p WHERE owner_id IS NOT NULL",
                            cap if yp.c6_cap is not None else "0")})                    -- P10.7
SELECT p.*,
       coalesce(sum(p.payable) OVER (PARTITION BY p.owner_id), 0)::DECIMAL(18,2) AS owner_payable_total,
       {cap}::DECIMAL(18,2) AS owner_cap,
       coalesce(sum(p.payable) OVER (PARTITION BY p.owner_id) > {cap}, false) AS capped,
       coalesce(split.capped, 0)::DECIMAL(18,2) AS target
FROM p LEFT JOIN split USING (owner_id, dataset_id)
""")
    con.execute("DROP TABLE _s_datasets0")
    return con.sql(
        f"""SELECT {y} AS year, dataset_id, owner_id, eligible_sales, caller_groups, caller_threshold, qualifies,
                   base, rate, gross, prior_awards, payable, owner_payable_total, owner_cap, capped, target
            FROM _s_datasets ORDER BY dataset_id"""
    ).pl()


def _clause7(con: duckdb.DuckDBPyConnection, yp: YearParams) -> pl.DataFrame:
    """Per-platform rows of P11.3: volume of eligible sales, 1 %, rounded once, capped."""
    rate, cap = _lit(yp.c7_rate), _lit(yp.c7_cap)
    uncapped = sql_round_money(f"{rate} * volume")
    return con.sql(f"""
WITH v AS (
    SELECT platform_id, count(*)::BIGINT AS eligible_sales, sum(net)::DECIMAL(18,2) AS volume
    FROM _s_status WHERE c7_reason IS NULL GROUP BY platform_id
)
SELECT {yp.year} AS year, platform_id, eligible_sales, volume, {rate}::DECIMAL(9,6) AS rate,
       {uncapped} AS subsidy_uncapped, {cap}::DECIMAL(18,2) AS cap,
       least({uncapped}, {cap})::DECIMAL(18,2) AS target                                      -- P11.3
FROM v ORDER BY platform_id
""").pl()


def _related_details(con: duckdb.DuckDBPyConnection, yp: YearParams, path_budget: int) -> None:
    """_s_related: the path of records (P7) for each distinct related pair on its trade date.

    Clause 6 pair: (buyer, owner). Clause 7: the first related of (buyer, seller), (platform, buyer),
    (platform, seller). Pairs of one enterprise with itself need no path ("same enterprise").
    Paths are built for at most ``path_budget`` distinct (a, b, date) pairs (in a_id, b_id, date order):
    building one costs a small graph search, and a pathological affiliation set (one giant group) can
    relate millions of distinct pairs. Beyond the budget the detail names the shared day group and the
    command that prints the path (`settle affiliates explain A B --on D`), so every verdict stays
    explainable on demand (P7).
    """
    con.execute("""
CREATE OR REPLACE TEMP TABLE _s_pairs AS
SELECT DISTINCT a_id, b_id, on_date FROM (
    SELECT buyer_id AS a_id, owner_id AS b_id, local_date AS on_date FROM _s_status
    WHERE c6_reason = 'RELATED_PARTY' AND buyer_id <> owner_id
    UNION ALL
    SELECT CASE WHEN rel_buyer_seller THEN buyer_id ELSE platform_id END,
           CASE WHEN rel_buyer_seller THEN seller_id WHEN rel_platform_buyer THEN buyer_id ELSE seller_id END,
           local_date
    FROM _s_status WHERE c7_reason = 'RELATED_PARTY'
)
WHERE a_id <> b_id
""")
    pairs = con.sql(f"SELECT a_id, b_id, on_date FROM _s_pairs ORDER BY ALL LIMIT {int(path_budget)}").pl()
    if pairs.height:
        explained = affiliates.explain_pairs(con, pairs, equity_threshold=yp.equity_threshold)
        paths = explained.select(
            pl.col("a_id"), pl.col("b_id"), pl.col("on_date"), pl.col("path").cast(pl.String)
        )
    else:
        paths = pl.DataFrame(schema={"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date, "path": pl.String})
    con.register("_s_paths_view", paths)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _s_related AS SELECT * FROM _s_paths_view")
    finally:
        con.unregister("_s_paths_view")
    con.execute("DROP TABLE _s_pairs")


def _exclusions_sql(con: duckdb.DuckDBPyConnection, yp: YearParams) -> str:
    """The SELECT of one row per (trade, clause) that earns nothing, with its P12 reason and detail, over
    the TEMP tables of this connection (columns of ``exclusions`` without run_id). Stages _s_refunds."""
    y = yp.year
    window = f"{yp.window_start}..{yp.window_end}" if yp.first_day else "none in this year"
    thr = yp.c6_threshold if yp.c6_threshold is not None else 0
    # Detail text per reason. Millions of rows can be excluded, so per-row string building is avoided:
    # constants, per-registry-entry texts joined from small tables (_s_cert6/_s_cert7), and the record path
    # of _s_related for RELATED_PARTY. The trade's own columns (date, amount, upload) are in the row.
    no_path = ("'same affiliate group on the trade date; for the record path run: "
               "settle affiliates explain A B --on DATE'")
    detail6 = f"""CASE s.c6_final
        WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
        WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window {window} (P2)'
        WHEN 'NOT_CERTIFIED' THEN coalesce(ce.text, 'dataset not in the dataset registry (P10.1)')
        WHEN 'RELATED_PARTY' THEN CASE WHEN s.buyer_id = s.owner_id THEN 'buyer is the owner itself (P10.2)'
                 ELSE 'buyer related to owner (P8, P10.2): ' || coalesce(r6.path, {no_path}) END
        WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
        WHEN 'BELOW_CALLER_THRESHOLD' THEN s.below_text
    END"""
    detail7 = f"""CASE s.c7_reason
        WHEN 'RETRACTED' THEN 'its upload was retracted (P9)'
        WHEN 'OUT_OF_WINDOW' THEN 'local date outside the policy window {window} (P2)'
        WHEN 'PLATFORM_NOT_CERTIFIED' THEN coalesce(cp.text, 'platform not in the platform registry (P11.1)')
        WHEN 'RELATED_PARTY' THEN
            CASE WHEN s.rel_buyer_seller THEN 'buyer related to seller (P8, P11.2): '
                 WHEN s.rel_platform_buyer THEN 'platform related to buyer (P8, P11.2): '
                 ELSE 'platform related to seller (P8, P11.2): ' END
            || CASE WHEN (s.rel_platform_buyer AND NOT s.rel_buyer_seller AND s.platform_id = s.buyer_id)
                      OR (s.rel_platform_seller AND NOT s.rel_buyer_seller AND NOT s.rel_platform_buyer
                          AND s.platform_id = s.seller_id)
                    THEN 'same enterprise' ELSE coalesce(r7.path, {no_path}) END
        WHEN 'FULLY_REFUNDED' THEN 'refunded in full (P9)'
    END"""
    # Certification texts per registry entry (P10.1, P11.1), joined by id.
    con.execute("""
CREATE OR REPLACE TEMP TABLE _s_cert6 AS
SELECT dataset_id, 'dataset certified ' || coalesce(certified_on::VARCHAR, 'open') || '..'
       || coalesce(certified_until::VARCHAR, 'open') || ', not on the trade date (P10.1)' AS text
FROM datasets
""")
    con.execute("""
CREATE OR REPLACE TEMP TABLE _s_cert7 AS
SELECT platform_id, 'platform certified ' || coalesce(certified_on::VARCHAR, 'open') || '..'
       || coalesce(certified_until::VARCHAR, 'open') || ', not on the trade date (P11.1)' AS text
FROM platforms
""")
    # Refunds belong to their sale's year (P9): the live sale's date when there is one, else their own.
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE _s_refunds AS
WITH live_sales AS (
    SELECT platform_id, trade_id, local_date, upload_id FROM trades WHERE kind = 'sale' AND NOT retracted
)
SELECT r.platform_id, r.trade_id, r.upload_id, r.ref_trade_id, r.retracted, r.dataset_id,
       ls.trade_id IS NOT NULL AS has_live_sale, ls.upload_id AS sale_upload_id
FROM trades r
LEFT JOIN live_sales ls ON ls.platform_id = r.platform_id AND ls.trade_id = r.ref_trade_id
WHERE r.kind = 'refund' AND year(coalesce(ls.local_date, r.local_date)) = {y}
""")
    # The sale reasons as an inlined (never materialised) CTE: the exclusions are written straight into
    # the run's table by one INSERT ... SELECT (settlement.run), millions of rows never copied twice.
    sale_reasons = f"""
SELECT s.platform_id, s.trade_id, s.upload_id, s.dataset_id, s.c6_final AS c6_reason_final, s.c7_reason,
       {detail6} AS detail6,
       {detail7} AS detail7
FROM (
    SELECT s.*,  -- P12: an eligible sale of a dataset that does not qualify (P10.4)
           coalesce(s.c6_reason, CASE WHEN NOT coalesce(d.qualifies, false) THEN 'BELOW_CALLER_THRESHOLD' END)
               AS c6_final,
           d.below_text
    FROM _s_status s LEFT JOIN (
        SELECT dataset_id, qualifies, caller_groups || ' unrelated caller group(s); needs more than {thr} (P10.4)'
               AS below_text
        FROM _s_datasets
    ) d ON d.dataset_id = s.dataset_id
) s
LEFT JOIN _s_cert6 ce ON s.c6_final = 'NOT_CERTIFIED' AND ce.dataset_id = s.dataset_id
LEFT JOIN _s_cert7 cp ON s.c7_reason = 'PLATFORM_NOT_CERTIFIED' AND cp.platform_id = s.platform_id
LEFT JOIN _s_related r6 ON s.c6_reason = 'RELATED_PARTY' AND r6.a_id = s.buyer_id AND r6.b_id = s.owner_id
      AND r6.on_date = s.local_date
LEFT JOIN _s_related r7 ON s.c7_reason = 'RELATED_PARTY' AND r7.on_date = s.local_date
      AND r7.a_id = CASE WHEN s.rel_buyer_seller THEN s.buyer_id ELSE s.platform_id END
      AND r7.b_id = CASE WHEN s.rel_buyer_seller THEN s.seller_id WHEN s.rel_platform_buyer THEN s.buyer_id
                         ELSE s.seller_id END
"""
    return f"""
WITH sr AS NOT MATERIALIZED ({sale_reasons})
SELECT {y} AS year, c.clause, sr.platform_id, sr.trade_id,
       CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END AS reason,
       CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END AS detail,
       sr.dataset_id, 'sale' AS kind, sr.upload_id
FROM sr CROSS JOIN (VALUES (6), (7)) AS c(clause)
WHERE (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
UNION ALL
SELECT {y}, c.clause, r.platform_id, r.trade_id,
       CASE WHEN r.retracted OR NOT r.has_live_sale THEN 'RETRACTED'
            ELSE CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END END AS reason,
       CASE WHEN r.retracted THEN 'upload ' || r.upload_id || ' was retracted (P9)'
            WHEN NOT r.has_live_sale THEN 'refunded sale ' || r.ref_trade_id || ' has no live trade (P9)'
            ELSE 'refund of sale ' || r.ref_trade_id || ': '
                 || CASE c.clause WHEN 6 THEN sr.detail6 ELSE sr.detail7 END END AS detail,
       coalesce(sr.dataset_id, r.dataset_id), 'refund', r.upload_id
FROM _s_refunds r
CROSS JOIN (VALUES (6), (7)) AS c(clause)
LEFT JOIN sr ON r.has_live_sale AND sr.platform_id = r.platform_id
      AND sr.trade_id = r.ref_trade_id AND sr.upload_id = r.sale_upload_id
WHERE r.retracted OR NOT r.has_live_sale
   OR (CASE c.clause WHEN 6 THEN sr.c6_reason_final ELSE sr.c7_reason END) IS NOT NULL
"""


PATH_BUDGET = 200  # distinct related (a, b, date) pairs explained with a record path per run (~10-100 ms each)


def compute_targets(con: duckdb.DuckDBPyConnection, year: int, *, params, path_budget: int = PATH_BUDGET) -> Targets:
    """Clause 6 and 7 targets of ``year`` from the current inputs (P9–P12). Does not read the ledger.

    Side effects: materialises the year's affiliate groups (regulator table ``affiliate_groups``) and the
    connection-local TEMP tables ``_s_*``.
    """
    yp = year_params(params, year)
    if yp.first_day is not None:
        affiliates.build_year_groups(
            con, year, equity_threshold=yp.equity_threshold, window_start=yp.window_start,
            window_end=yp.window_end,
        )
    else:  # no in-scope day: nothing is related, nothing is eligible (P2); make the tables exist
        _ensure_group_tables(con)
    _stage_sales(con, yp)
    datasets = _clause6(con, yp)
    platforms = _clause7(con, yp)
    _related_details(con, yp, path_budget)
    exclusions_sql = _exclusions_sql(con, yp)
    targets = pl.concat(
        [
            datasets.filter(pl.col("target") != 0).select(
                pl.lit(6, pl.Int64).alias("clause"),
                pl.col("owner_id").alias("beneficiary_id"),
                pl.col("dataset_id"),
                pl.col("target").cast(pl.Decimal(18, 2)).alias("amount"),
            ),
            platforms.filter(pl.col("target") != 0).select(
                pl.lit(7, pl.Int64).alias("clause"),
                pl.col("platform_id").alias("beneficiary_id"),
                pl.lit("", pl.String).alias("dataset_id"),
                pl.col("target").cast(pl.Decimal(18, 2)).alias("amount"),
            ),
        ]
    ).cast(TARGET_SCHEMA).sort("clause", "beneficiary_id", "dataset_id")
    return Targets(year=year, params=yp, targets=targets, datasets=datasets, platforms=platforms,
                   exclusions_sql=exclusions_sql)


STAGING_TABLES = ("_s_status", "_s_datasets", "_s_callers", "_s_related", "_s_refunds", "_s_cert6", "_s_cert7")


def drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    for table in STAGING_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _ensure_group_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A year with no in-scope day needs no groups, but the SQL above joins the tables by name."""
    for name in ("affiliate_groups", "affiliate_day_groups"):
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [name]
        ).fetchall()[0][0]
        if not exists:
            raise RuntimeError(f"table {name} missing: the affiliates migration has not been applied")
