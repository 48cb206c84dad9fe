"""Record paths for many related (a, b, date) pairs at once: the RELATED_PARTY details of a settlement run.

Per year the P7 edges with their day intervals are computed once by the set-based engine; per date a
bidirectional breadth-first search over the edges active that day finds a shortest path; only the edges on
the returned paths are explained from records (``settlement.affiliates.records``). Pairs not related on
their date get the full ``explain_relation`` text. Must not import the CLI, the API, the ledger or clauses.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import duckdb
import numpy as np
import polars as pl
from scipy.sparse import csr_matrix

from settlement.affiliates.engine import p7_edges, share_units, shortest_path
from settlement.affiliates.explain import _DateContext, _related_text
from settlement.affiliates.groups import _day, _encode
from settlement.affiliates.records import _all_records, _LocalGraph, _recs

Found = list[tuple[str, str, dt.date, list[str]]]  # (a, b, date, party path)


def _year_records(live: pl.DataFrame, year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The non-exempt records active on some day of ``year``, and them encoded for the engine."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    recs = live.filter(
        (pl.col("valid_from").is_null() | (pl.col("valid_from") <= last))
        & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= first))
    )
    frame = recs.select(
        "a_id", "b_id", (pl.col("relation") == "equity").alias("is_equity"),
        (pl.col("share").fill_null(0) * 10**10).cast(pl.Int64).alias("share"),
        pl.max_horizontal(pl.col("valid_from").fill_null(first), pl.lit(first)).alias("vf"),
        pl.min_horizontal(pl.col("valid_to").fill_null(last), pl.lit(last)).alias("vt"),
    )
    return recs, frame


def _find_paths(frame: pl.DataFrame, year: int, by_date: dict, threshold: Decimal) -> Found:
    """Shortest P7 paths of the wanted pairs on their dates (one CSR mask per date, C-speed searches)."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    enc = _encode(frame)
    edges = p7_edges(enc.eq, enc.ne, _day(first), _day(last), share_units(threshold))
    n = enc.parties.len()
    parties = enc.parties.to_list()
    node = {p: i for i, p in enumerate(parties)}
    eu, ev = edges["u"].to_numpy(), edges["v"].to_numpy()
    es, ee = edges["s"].to_numpy(), edges["e"].to_numpy()
    # Both directions, sorted once by (row, col): each date's CSR is a mask of these arrays, so the
    # searches run on it as is (no per-call transpose, no per-date sort).
    rows, cols = np.concatenate([eu, ev]), np.concatenate([ev, eu])
    r_s, r_e = np.concatenate([es, es]), np.concatenate([ee, ee])
    order = np.lexsort((cols, rows))
    rows, cols, r_s, r_e = rows[order], cols[order], r_s[order], r_e[order]
    found: Found = []
    for on, by_source in sorted(by_date.items()):
        d = _day(on)
        m = (r_s <= d) & (r_e >= d)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[m], minlength=n))])
        graph = csr_matrix((np.ones(int(m.sum()), dtype=np.int8), cols[m], indptr), shape=(n, n))
        for a, targets in sorted(by_source.items()):
            for b in targets:
                if a == b or a not in node or b not in node:
                    continue
                # Bidirectional search: touches the neighbourhoods of a and b only, not a whole
                # 700k-party group as a one-sided BFS per source would.
                path = shortest_path(graph.indptr, graph.indices, node[a], node[b])
                if path is not None:
                    found.append((a, b, on, [parties[i] for i in path]))
    return found


def _explain_found(recs: pl.DataFrame, found: Found, threshold: Decimal) -> dict[tuple[str, str, dt.date], str]:
    """Explain the edges of the found paths from records. Only the records those paths need are indexed:
    outright records at path nodes and the equity records of every party reachable from a path node over
    pairs strong on some day of the year (a superset of each day's Ctrl, P6)."""
    path_nodes = sorted({p for *_, names in found for p in names})
    year_strong = (
        recs.filter(pl.col("relation") == "equity").group_by("a_id", "b_id").agg(pl.col("share").sum())
        .filter(pl.col("share") >= threshold).select("a_id", "b_id")
    )
    seen = pl.DataFrame({"x": path_nodes}, schema={"x": pl.String})
    frontier = seen
    while frontier.height:
        frontier = (
            frontier.join(year_strong, left_on="x", right_on="a_id").select(pl.col("b_id").alias("x"))
            .unique().join(seen, on="x", how="anti")
        )
        seen = pl.concat([seen, frontier])
    wanted = recs.filter(pl.col("a_id").is_in(seen["x"].to_list()) | pl.col("b_id").is_in(path_nodes))
    index = _LocalGraph(_recs(wanted), threshold)
    views: dict[dt.date, _LocalGraph] = {}
    texts = {}
    for a, b, on, names in found:
        view = views.get(on) or views.setdefault(on, index.at(on))
        phrases: list[str] = []
        for u, v in zip(names, names[1:]):
            phrases.extend(view.edge_phrases(u, v)[0])
        texts[(a, b, on)] = _related_text(a, b, on, phrases)
    return texts


def explain_pairs(con: duckdb.DuckDBPyConnection, pairs: pl.DataFrame, *, equity_threshold: Decimal) -> pl.DataFrame:
    """``pairs`` (a_id, b_id, on_date) with a column ``path``: the explanation text of each pair (module doc)."""
    threshold = Decimal(equity_threshold)
    distinct = pairs.select("a_id", "b_id", pl.col("on_date").cast(pl.Date)).unique()
    texts: dict[tuple[str, str, dt.date], str] = {}
    everything = _all_records(con)
    live = everything.filter(~pl.col("exempt"))
    # year -> date -> a -> [b]: plain dicts (polars group iteration costs a gather per group)
    plan: dict[int, dict[dt.date, dict[str, list[str]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for a, b, on in distinct.iter_rows():
        plan[on.year][on][a].append(b)
    for year, by_date in sorted(plan.items()):
        recs, frame = _year_records(live, year)
        if recs.height == 0:
            continue
        found = _find_paths(frame, year, by_date, threshold)
        if found:
            texts.update(_explain_found(recs, found, threshold))
    missing = [k for k in distinct.iter_rows() if k not in texts]
    for on in sorted({k[2] for k in missing}):
        ctx = _DateContext(con, on, threshold, everything)
        for a, b, d in missing:
            if d == on:
                texts[(a, b, d)] = ctx.explain(a, b).text
    lookup = pl.DataFrame(
        [(a, b, d, t) for (a, b, d), t in texts.items()],
        schema={"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date, "path": pl.String},
        orient="row",
    )
    return pairs.with_columns(pl.col("on_date").cast(pl.Date)).join(
        lookup, on=["a_id", "b_id", "on_date"], how="left", maintain_order="left"
    )
