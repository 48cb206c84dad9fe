"""Clause 7, the platform subsidy (P11.3), per platform enterprise of one year.

Volume of eligible sales (P11.2, from ``_s_status``), 1 % rounded once (P1), capped. Volume and the
uncapped subsidy are DECIMAL(38,2) (P10.8). Imports ``settlement.core`` only.
"""

from __future__ import annotations

import duckdb
import polars as pl

from settlement.clauses.year_params import YearParams, lit
from settlement.core.money import sql_round_money


def platform_results(con: duckdb.DuckDBPyConnection, yp: YearParams) -> pl.DataFrame:
    """Per-platform rows of P11.3 (run_platform_results without run_id)."""
    rate, cap = lit(yp.c7_rate), lit(yp.c7_cap)
    uncapped = sql_round_money(f"{rate} * volume", precision=38)
    return con.sql(f"""
WITH v AS (
    SELECT platform_id, count(*)::BIGINT AS eligible_sales, sum(net)::DECIMAL(38,2) AS volume
    FROM _s_status WHERE c7_reason IS NULL GROUP BY platform_id
)
SELECT {yp.year} AS year, platform_id, eligible_sales, volume, {rate}::DECIMAL(9,6) AS rate,
       {uncapped} AS subsidy_uncapped, {cap}::DECIMAL(18,2) AS cap,
       least({uncapped}, {cap})::DECIMAL(18,2) AS target                                      -- P11.3
FROM v ORDER BY platform_id
""").pl()
