"""Clause 6, the dataset reward (P10.2–P10.7), per (dataset, owner) of one year.

``stage_callers`` runs ``callers.sql`` on the backend into the run's ``callers`` result (eligible sales per
dataset, owner, year-graph caller group and buyer, P10.3); ``dataset_results`` writes the TEMP table of role
``datasets`` and returns its rows: callers, the "> 3" test
(P10.4), base and gross (P10.5), the dataset's payable after prior awards shared among its owners in
proportion to gross (P10.1, P10.6), and the owner's cap share (P10.7). Amounts are DECIMAL(38,2) until the
target (P10.8). Imports ``settlement.core`` and the backend interface only.
"""

from __future__ import annotations

import duckdb
import polars as pl

from settlement.backends.base import Backend, to_local
from settlement.clauses.portable import statement
from settlement.clauses.year_params import YearParams, lit
from settlement.core.money import sql_round_money, sql_split_cap


def stage_callers(backend: Backend, yp: YearParams, names: dict[str, str]) -> None:
    """names["callers"] (P10.3, ``callers.sql`` on the backend): callers by year-graph affiliate group (P8); a buyer
    absent from affiliate_groups is its own group. Counted per (dataset, owner): a buyer is a caller of the
    owner it bought from (P10.1)."""
    backend.run(names["callers"], statement("callers", year=int(yp.year), status=names["status"]), reused=True)
    # callers.sql counts every group (group_counted) because each eligible sale has net > 0 (P10.2): a buyer
    # whose eligible sales sum to <= 0 would mean that premise broke, and a group might be counted wrongly.
    sql = f"SELECT count(*) AS n FROM {names['callers']} WHERE net_amount <= 0"
    not_positive = backend.fetch(sql).column(0)[0].as_py()
    if not_positive:
        raise AssertionError(f"{not_positive} caller rows of {yp.year} sum eligible sales to <= 0 (P10.2 broken)")


def _per_owner_sql(yp: YearParams, per_table: str) -> str:
    """Per (dataset, owner): eligible sales, callers, qualifies (P10.4), base and gross (P10.5). Datasets
    with prior awards but no eligible sale get a row for the owner of the year's last registration period."""
    y, thr, rate = yp.year, lit(yp.c6_threshold), lit(yp.c6_rate)
    gross = sql_round_money(f"{rate} * d.base", precision=38)
    return f"""
WITH per AS (SELECT * FROM {per_table}),  -- per_dataset.sql, from the backend
prior AS (  -- P10.6 supplementary rule 2: awards already paid for the same dataset and year
    SELECT dataset_id, sum(amount)::DECIMAL(38,2) AS prior_awards FROM prior_awards WHERE year = {y}
    GROUP BY dataset_id
), prior_only AS (
    SELECT p.dataset_id, ds.owner_id FROM prior p
    LEFT JOIN (SELECT dataset_id, owner_id FROM datasets
               WHERE coalesce(owner_from, DATE '0001-01-01') <= DATE '{y}-12-31'
               QUALIFY row_number() OVER (PARTITION BY dataset_id ORDER BY owner_from DESC NULLS LAST) = 1) ds
      USING (dataset_id)
    WHERE p.dataset_id NOT IN (SELECT dataset_id FROM per)
), keys AS (SELECT dataset_id, owner_id FROM per UNION ALL SELECT dataset_id, owner_id FROM prior_only),
d AS (
    SELECT k.dataset_id, k.owner_id, coalesce(per.eligible_sales, 0)::BIGINT AS eligible_sales,
           coalesce(per.caller_groups, 0)::BIGINT AS caller_groups,
           {thr}::INTEGER AS caller_threshold,
           coalesce(coalesce(per.caller_groups, 0) > {thr}, false) AS qualifies,          -- P10.4 "> 3"
           coalesce(per.base, 0)::DECIMAL(38,2) AS base,
           {rate}::DECIMAL(9,6) AS rate,
           coalesce(prior.prior_awards, 0)::DECIMAL(38,2) AS prior_awards
    FROM keys k LEFT JOIN per ON per.dataset_id = k.dataset_id AND per.owner_id IS NOT DISTINCT FROM k.owner_id
    LEFT JOIN prior ON prior.dataset_id = k.dataset_id
)
SELECT d.*, CASE WHEN d.qualifies THEN {gross} ELSE 0 END::DECIMAL(38,2) AS gross                 -- P10.5, P1
FROM d
"""


def dataset_results(con: duckdb.DuckDBPyConnection, backend: Backend, yp: YearParams,
                    names: dict[str, str]) -> pl.DataFrame:
    """names["datasets"]: P10.3–P10.7 per (dataset, owner); returns its rows (run_dataset_results without run_id).
    The per-(dataset, owner) aggregates come from the backend (``per_dataset.sql``); prior awards, the
    shares among owners and the cap split are local (a few rows per dataset)."""
    d0, d1, ds = names["datasets0"], names["datasets1"], names["datasets"]
    to_local(con, backend, names["per"], statement("per_dataset", callers=names["callers"]))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {d0} AS {_per_owner_sql(yp, names['per'])}")
    cap = lit(yp.c6_cap) if yp.c6_cap is not None else "0"
    # P10.1 + P10.6: the dataset's payable = max(0, Σ gross − Σ prior awards), shared among its owners in
    # proportion to gross (cents by largest remainder, ties by owner_id): the cap split with a per-dataset
    # "cap", the owner in the role of the dataset. With one owner this is max(0, gross − prior awards).
    share = sql_split_cap(
        "SELECT dataset_id AS owner_id, owner_id AS dataset_id, gross AS payable, dataset_payable "
        f"FROM {d1} WHERE owner_id IS NOT NULL", "dataset_payable")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {d1} AS
SELECT *, greatest(sum(gross) OVER (PARTITION BY dataset_id) - prior_awards, 0)::DECIMAL(38,2) AS dataset_payable
FROM {d0}""")
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE {ds} AS
WITH p AS (
    SELECT d.*, coalesce(sh.capped, 0)::DECIMAL(38,2) AS payable                                  -- P10.6
    FROM {d1} d
    LEFT JOIN ({share}) sh ON sh.owner_id = d.dataset_id AND sh.dataset_id = d.owner_id
), split AS ({sql_split_cap("SELECT owner_id, dataset_id, payable FROM p WHERE owner_id IS NOT NULL", cap)})
SELECT p.*,                                                                                      -- P10.7
       coalesce(sum(p.payable) OVER (PARTITION BY p.owner_id), 0)::DECIMAL(38,2) AS owner_payable_total,
       {cap}::DECIMAL(18,2) AS owner_cap,
       coalesce(sum(p.payable) OVER (PARTITION BY p.owner_id) > {cap}, false) AS capped,
       coalesce(split.capped, 0)::DECIMAL(18,2) AS target
FROM p LEFT JOIN split USING (owner_id, dataset_id)
""")
    con.execute(f"DROP TABLE {d0}; DROP TABLE {d1}")
    return con.sql(
        f"""SELECT {yp.year} AS year, dataset_id, owner_id, eligible_sales, caller_groups, caller_threshold,
                   qualifies, base, rate, gross, prior_awards, payable, owner_payable_total, owner_cap, capped,
                   target, dataset_payable
            FROM {ds} ORDER BY dataset_id, owner_id"""
    ).pl()
