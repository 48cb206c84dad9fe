"""P12 exclusions: why each stored trade earns nothing under a clause, with the path of records for
RELATED_PARTY (P7, P8).

``stage_related_paths`` explains the related (a, b, date) pairs of the year (``related_pairs.sql`` on the
backend, paths built locally, registered back as the run's ``related``); ``exclusions_sql`` stages the small
relations the exclusions read (the run's ``cert6``, ``cert7``, ``refunds``, ``qualifies``) and returns
``exclusions.sql``: one row per (trade, clause) that earns nothing. A run stores no rows: ``settlement.run``
records the compact inputs the regulator view ``exclusions`` derives them from (migration 0011), and their
counts (table ``run_exclusion_counts``, migration 0013), which readers use: a run counts from its sale status
(``counts.sql``), the migration's backfill counts the view (``counts_statement``); tests hold them equal. Imports
``settlement.core``, ``settlement.affiliates`` and the backend interface.
"""

from __future__ import annotations

from string import Template

import duckdb
import polars as pl

from settlement.affiliates.pairs import explain_pairs
from settlement.backends.base import Backend
from settlement.clauses.portable import statement
from settlement.clauses.relations import NO_PATH, exclusions_statement, run_relations, view_relations
from settlement.clauses.year_params import YearParams

__all__ = ["NO_PATH", "counts_statement", "counts_view_sql", "exclusions_sql", "stage_related_paths"]

PATH_SCHEMA = {"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date, "path": pl.String}


def stage_related_paths(con: duckdb.DuckDBPyConnection, backend: Backend, yp: YearParams,
                        path_budget: int, names: dict[str, str]) -> pl.DataFrame:
    """names["related"]: the path of records (P7) for each distinct related pair on its trade date.

    Clause 6 pair: (buyer, owner). Clause 7: the first related of (buyer, seller), (platform, buyer),
    (platform, seller). Pairs of one enterprise with itself need no path ("same enterprise").
    Paths are built for at most ``path_budget`` distinct (a, b, date) pairs (in a_id, b_id, date order):
    building one costs a small graph search, and a pathological affiliation set (one giant group) can
    relate millions of distinct pairs. Beyond the budget the detail names the shared day group and the
    command that prints the path (`settle affiliates explain A B --on D`), so every verdict stays
    explainable on demand (P7). Returns the paths (stored with the run: the view ``exclusions`` reads them).
    """
    pairs = pl.from_arrow(backend.fetch(statement("related_pairs", budget=int(path_budget), status=names["status"])))
    if pairs.height:
        explained = explain_pairs(con, pairs.cast({"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date}),
                                  equity_threshold=yp.equity_threshold)
        paths = explained.select(
            pl.col("a_id"), pl.col("b_id"), pl.col("on_date"), pl.col("path").cast(pl.String)
        )
    else:
        paths = pl.DataFrame(schema=PATH_SCHEMA)
    paths = paths.cast(PATH_SCHEMA)
    backend.register(names["related"], paths.with_columns(pl.lit(0, pl.Int64).alias("run_id")).to_arrow())
    return paths


def exclusions_sql(backend: Backend, yp: YearParams, datasets: pl.DataFrame, names: dict[str, str]) -> str:
    """The SELECT of one row per (trade, clause) that earns nothing, with its P12 reason and detail, over
    the backend's named results (the columns of the regulator view ``exclusions``, run_id 0). ``datasets``:
    the clause-6 rows (qualifies and caller_groups per dataset and owner, P10.4). Details avoid per-row
    string building: constants, per-registry-entry texts (cert6/cert7), the record path (related)."""
    rel = run_relations(yp, names)
    backend.run(names["cert6"], statement("cert_texts6", **rel))
    backend.run(names["cert7"], statement("cert_texts7", **rel))
    # Refunds belong to their sale's year (P9): the live sale's date when there is one, else their own.
    backend.run(names["refunds"], statement("refunds", **rel))
    qualifies = datasets.filter(pl.col("owner_id").is_not_null()).select(
        pl.lit(0, pl.Int64).alias("run_id"), "dataset_id", "owner_id", "qualifies",
        pl.col("caller_groups").cast(pl.Int64))
    backend.register(names["qualifies"], qualifies.to_arrow())
    return exclusions_statement(rel)


# P12 counts (migration 0013): the exclusion rows of ``${exclusions}`` counted per clause, dataset, owner of the
# sale's registration period (P10.1; a refund's: its live sale's; NULL when no period covers the date or the
# run left no registry record), platform, reason and kind. Portable (DuckDB and Spark SQL).
COUNTS = Template("""SELECT x.run_id, x.year, x.clause, x.dataset_id, d.owner_id, x.platform_id, x.reason, x.kind,
       count(*) AS trades
FROM ${exclusions} x
LEFT JOIN ${trades} t ON t.run_id = x.run_id AND t.platform_id = x.platform_id AND t.trade_id = x.trade_id
      AND t.upload_id = x.upload_id
LEFT JOIN ${trades} ls ON x.kind = 'refund' AND ls.run_id = x.run_id AND ls.kind = 'sale' AND NOT ls.retracted
      AND ls.platform_id = x.platform_id AND ls.trade_id = t.ref_trade_id
LEFT JOIN ${datasets} d ON d.run_id = x.run_id AND d.dataset_id = x.dataset_id
      AND (CASE WHEN x.kind = 'sale' THEN t.local_date ELSE ls.local_date END)
          BETWEEN coalesce(d.owner_from, DATE '0001-01-01') AND coalesce(d.owner_until, DATE '9999-12-31')
GROUP BY x.run_id, x.year, x.clause, x.dataset_id, d.owner_id, x.platform_id, x.reason, x.kind""")


def counts_statement(exclusions: str, rel: dict[str, str]) -> str:
    """The counts of the exclusion rows ``exclusions`` (a relation) over the trades and dataset registry
    rows of ``rel`` (run_relations of a run being computed, or view_relations)."""
    return COUNTS.substitute(exclusions=exclusions, trades=rel["trades"], datasets=rel["datasets"])


def counts_view_sql() -> str:
    """The backfill of migration 0013: the counts of every stored run, from the regulator view (a test
    checks the migration holds this text)."""
    return counts_statement("exclusions", view_relations())
