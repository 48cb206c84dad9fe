"""Clause 7, the platform subsidy (P11.3), per platform enterprise of one year.

Volume of eligible sales (P11.2, ``volumes.sql`` on the backend over the run's ``status``), then locally: 1 %
rounded once (P1), capped. Volume and the uncapped subsidy are DECIMAL(38,2) (P10.8).
Imports ``settlement.core`` and the backend interface only.
"""

from __future__ import annotations

import duckdb
import polars as pl

from settlement.backends.base import Backend, to_local
from settlement.clauses.portable import statement
from settlement.clauses.year_params import YearParams, lit
from settlement.core.money import sql_round_money


def platform_results(con: duckdb.DuckDBPyConnection, backend: Backend, yp: YearParams,
                     names: dict[str, str]) -> pl.DataFrame:
    """Per-platform rows of P11.3 (run_platform_results without run_id)."""
    to_local(con, backend, names["volumes"], statement("volumes", status=names["status"]))
    rate, cap = lit(yp.c7_rate), lit(yp.c7_cap)
    uncapped = sql_round_money(f"{rate} * volume", precision=38)
    return con.sql(f"""
SELECT {yp.year} AS year, platform_id, CAST(eligible_sales AS BIGINT) AS eligible_sales,
       CAST(volume AS DECIMAL(38,2)) AS volume, {rate}::DECIMAL(9,6) AS rate,
       {uncapped} AS subsidy_uncapped, {cap}::DECIMAL(18,2) AS cap,
       least({uncapped}, {cap})::DECIMAL(18,2) AS target                                      -- P11.3
FROM {names['volumes']} ORDER BY platform_id
""").pl()
