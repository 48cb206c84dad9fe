"""P12 exclusions: why each stored trade earns nothing under a clause, with the path of records for
RELATED_PARTY (P7, P8).

``stage_related_paths`` explains the related (a, b, date) pairs of the year (``related_pairs.sql`` on the
backend, paths built locally, registered back as ``_s_related``); ``exclusions_sql`` stages the small
relations the exclusions read (``_s_cert6``, ``_s_cert7``, ``_s_refunds``, ``_s_qualifies``) and returns
``exclusions.sql``: one row per (trade, clause) that earns nothing, inserted under the run id by
``settlement.run``. Imports ``settlement.core``, ``settlement.affiliates`` and the backend interface.
"""

from __future__ import annotations

import duckdb
import polars as pl

from settlement.affiliates.pairs import explain_pairs
from settlement.backends.base import Backend
from settlement.clauses.portable import statement
from settlement.clauses.year_params import YearParams

PATH_SCHEMA = {"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date, "path": pl.String}


def stage_related_paths(con: duckdb.DuckDBPyConnection, backend: Backend, yp: YearParams,
                        path_budget: int) -> None:
    """_s_related: the path of records (P7) for each distinct related pair on its trade date.

    Clause 6 pair: (buyer, owner). Clause 7: the first related of (buyer, seller), (platform, buyer),
    (platform, seller). Pairs of one enterprise with itself need no path ("same enterprise").
    Paths are built for at most ``path_budget`` distinct (a, b, date) pairs (in a_id, b_id, date order):
    building one costs a small graph search, and a pathological affiliation set (one giant group) can
    relate millions of distinct pairs. Beyond the budget the detail names the shared day group and the
    command that prints the path (`settle affiliates explain A B --on D`), so every verdict stays
    explainable on demand (P7).
    """
    pairs = pl.from_arrow(backend.fetch(statement("related_pairs", budget=int(path_budget))))
    if pairs.height:
        explained = explain_pairs(con, pairs.cast({"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date}),
                                  equity_threshold=yp.equity_threshold)
        paths = explained.select(
            pl.col("a_id"), pl.col("b_id"), pl.col("on_date"), pl.col("path").cast(pl.String)
        )
    else:
        paths = pl.DataFrame(schema=PATH_SCHEMA)
    backend.register("_s_related", paths.cast(PATH_SCHEMA).to_arrow())


# Detail text per reason (sale_reasons.sql). Millions of rows can be excluded, so per-row string building is
# avoided: constants, per-registry-entry texts joined from small tables (_s_cert6/_s_cert7), and the record
# path of _s_related for RELATED_PARTY. The trade's own columns (date, amount, upload) are in the row.
NO_PATH = ("'same affiliate group on the trade date; for the record path run: "
           "settle affiliates explain A B --on DATE'")


def _window_text(yp: YearParams) -> str:
    return f"{yp.window_start}..{yp.window_end}" if yp.first_day else "none in this year"


def exclusions_sql(backend: Backend, yp: YearParams, datasets: pl.DataFrame) -> str:
    """The SELECT of one row per (trade, clause) that earns nothing, with its P12 reason and detail, over
    the backend's named results (columns of ``exclusions`` without run_id). ``datasets``: the clause-6
    rows (qualifies and caller_groups per dataset and owner, P10.4)."""
    thr = yp.c6_threshold if yp.c6_threshold is not None else 0
    backend.run("_s_cert6", statement("cert_texts6"))
    backend.run("_s_cert7", statement("cert_texts7"))
    # Refunds belong to their sale's year (P9): the live sale's date when there is one, else their own.
    backend.run("_s_refunds", statement("refunds", year=int(yp.year)))
    qualifies = datasets.filter(pl.col("owner_id").is_not_null()).select(
        "dataset_id", "owner_id", "qualifies", pl.col("caller_groups").cast(pl.Int64))
    backend.register("_s_qualifies", qualifies.to_arrow())
    sale_reasons = statement("sale_reasons", window_text=_window_text(yp), no_path=NO_PATH, threshold=int(thr))
    return statement("exclusions", year=int(yp.year), sale_reasons=sale_reasons)
