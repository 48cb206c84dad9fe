"""The clauses stage: compute the target payable per ledger key of one year, and why (P9–P12).

``compute_targets`` runs the steps in order: affiliate groups of the year (``settlement.affiliates``),
sale status (``sales``, P2/P8/P9/P10.1/P11), clause 6 (``clause6``, P10), clause 7 (``clause7``, P11),
the record paths and exclusions (``exclusions``, P12). The trade-level statements are portable ``.sql``
files run on a backend (``settlement.backends``: the store's own DuckDB connection by default, or Spark);
their named results (``relations.STAGE_ROLES``, named ``_<tag>_<role>`` per run so that two runs on one
connection never collide) never pass through Python row by row; the per-dataset and per-platform results,
the cap split and the record paths are computed locally in the store. ``staged_targets`` is the lifetime:
``settlement.run`` stores the run's results under its run id inside the ``with`` block, and leaving it drops
every named result, whatever happened.

Pure of the ledger: must not import ``ledgers``, the CLI or the API.

Decisions where the policy is silent (docs/rules.md):
- a buyer that IS the owner (or a platform that is the buyer or seller) counts as related (RELATED_PARTY,
  detail "same enterprise"): an enterprise is trivially not "non-affiliated" with itself (P10.2, P11.2);
- a refund is listed in ``exclusions`` under the reason of the sale it reverses (its year is the sale's,
  P9); a refund whose sale has no live trade is RETRACTED; refunds of an earning sale are not listed;
- eligible sales of a qualifying dataset whose payable is 0 because of prior awards are NOT exclusions:
  they earn under clause 6, supplementary rule 2 only nets the award (P10.6).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import duckdb
import polars as pl

from settlement.affiliates import groups as affiliates
from settlement.backends.base import Backend
from settlement.backends.duckdb_backend import DuckDBBackend
from settlement.clauses.clause6 import dataset_results, stage_callers
from settlement.clauses.clause7 import platform_results
from settlement.clauses.exclusions import exclusions_sql, stage_related_paths
from settlement.clauses.relations import STAGE_ROLES
from settlement.clauses.sales import stage_sales
from settlement.clauses.year_params import YearParams, year_params
from settlement.core.sql import temp_tables

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

PATH_BUDGET = 200  # distinct related (a, b, date) pairs explained with a record path per run (~10-100 ms each)


@dataclass(frozen=True)
class Targets:
    """What a settlement run of one year must reach, and why.

    ``targets``: clause, beneficiary_id, dataset_id ('' for clause 7), amount (non-zero keys only; a key
    absent here has target 0, the ledger claws it back). ``datasets`` / ``platforms``: the explanation rows
    (columns of run_dataset_results / run_platform_results without run_id). Exclusions and caller buyers
    are ``exclusions_sql`` (a SELECT over the backend's named results, counted under the run id by
    settlement.run) and the backend's named result ``names["callers"]``; ``names``: every named result of
    the run by role (``relations.STAGE_ROLES``), dropped when ``staged_targets`` ends.
    """

    year: int
    params: YearParams
    targets: pl.DataFrame
    datasets: pl.DataFrame
    platforms: pl.DataFrame
    names: dict[str, str]
    exclusions_sql: str = ""
    backend: Backend | None = None
    # the compact record the regulator view ``exclusions`` derives this run's exclusions from (migration 0011)
    record: dict[str, pl.DataFrame] | None = None

    @property
    def callers_table(self) -> str:
        return self.names["callers"]


@contextmanager
def staged_targets(con: duckdb.DuckDBPyConnection, year: int, *, params, path_budget: int = PATH_BUDGET,
                   backend: Backend | None = None) -> Iterator[Targets]:
    """``compute_targets`` with its named results given names of this run's own (``core.sql.temp_tables``)
    and dropped on exit whatever happens, on the store and on a remote backend."""
    backend = backend or DuckDBBackend(con)
    with temp_tables(con, *STAGE_ROLES) as names:
        try:
            yield compute_targets(con, year, params=params, names=names, path_budget=path_budget, backend=backend)
        finally:
            if not backend.local:
                backend.drop(tuple(names.values()))


def compute_targets(con: duckdb.DuckDBPyConnection, year: int, *, params, names: dict[str, str],
                    path_budget: int = PATH_BUDGET, backend: Backend | None = None) -> Targets:
    """Clause 6 and 7 targets of ``year`` from the current inputs (P9–P12). Does not read the ledger.

    ``backend`` runs the trade-level statements (default: this store connection, DuckDB).
    Side effects: materialises the year's affiliate groups (regulator table ``affiliate_groups``), the
    backend's named results and the connection-local TEMP tables ``names`` (the caller drops them: use
    ``staged_targets``).
    """
    backend = backend or DuckDBBackend(con)
    yp = year_params(params, year)
    if yp.first_day is not None:
        affiliates.build_year_groups(
            con, year, equity_threshold=yp.equity_threshold, window_start=yp.window_start,
            window_end=yp.window_end,
        )
    record = snapshot_inputs(con)
    backend.bind_inputs(con, year)
    stage_sales(backend, yp, names)
    stage_callers(backend, yp, names)
    datasets = dataset_results(con, backend, yp, names)
    platforms = platform_results(con, backend, yp, names)
    record["paths"] = stage_related_paths(con, backend, yp, path_budget, names)
    excluded = exclusions_sql(backend, yp, datasets, names)
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
    return Targets(year=year, params=yp, targets=targets, datasets=datasets, platforms=platforms, names=names,
                   exclusions_sql=excluded, backend=backend, record=record)


def snapshot_inputs(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """What the run reads that may change later (small): every upload with its retracted flag, the current
    dataset and platform registry rows. With the year's day groups and the record paths they let the view
    ``exclusions`` derive the run's exclusions from the append-only trade rows at any later time."""
    return {
        "uploads": con.sql("SELECT id AS upload_id, retracted_at IS NOT NULL AS retracted FROM uploads").pl(),
        "datasets": con.sql("SELECT dataset_id, owner_id, certified_on, certified_until, owner_from, owner_until "
                            "FROM datasets").pl(),
        "platforms": con.sql("SELECT platform_id, certified_on, certified_until FROM platforms").pl(),
    }

