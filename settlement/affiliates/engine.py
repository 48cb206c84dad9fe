"""Vectorised P6/P7 engine: affiliate-graph edges with validity intervals, and connected components.

Owns the set-based computation behind ``settlement.affiliates.groups``: from equity and non-equity records whose
endpoints are integer node ids and whose validity is a day-number interval inside one span [S, E], it
derives the P7 edges together with the days on which each edge exists, then the components of the
graph for the whole span (year graph) or for every day (trade-date graph), without a Python loop over
records or parties. Must not import the store, the CLI or networkx (those are for explanations).

Why the edge set is enough for components (P6/P7):
- every equity pair y -> c with direct(y, c) >= threshold ("strong") is a holding, so Ctrl(x) is exactly
  what x reaches over strong pairs, and x is connected to all of Ctrl(x) by strong edges;
- a holding x -> c with c in Ctrl(x) adds no connectivity; any other holding has only "weak"
  contributions (direct < threshold) from {x} u Ctrl(x), so it is found by walking BACKWARDS over strong
  pairs from the weak holders of c (cheap: ancestor sets are small even where a holding company's
  descendant set is huge) and summing per ancestor x ("pass-through holdings", P6);
- holdings only grow when records are added, so every day graph is a subgraph of the year graph, and the
  components of the edges that exist on every day refine every day's components.
Validity: a pair's direct share, a strong pair and a pass-through holding are piecewise constant between
change points of the records they depend on; each is computed per such interval, never per day.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Shares are DECIMAL(12,10): as integer units of 1e-10 they add exactly (P1 spirit: no binary floats).
SHARE_SCALE = 10**10
NODE = pl.Int64
DAY = pl.Int32


def share_units(value: Decimal) -> int:
    """A share or threshold as exact integer units of 1e-10; refuses more precision than DECIMAL(12,10)."""
    units = Decimal(value) * SHARE_SCALE
    if units != units.to_integral_value():
        raise ValueError(f"share {value} has more than 10 decimals")
    return int(units)


def _empty_edges() -> pl.DataFrame:
    return pl.DataFrame(schema={"u": NODE, "v": NODE, "s": DAY, "e": DAY})


def pair_intervals(eq: pl.DataFrame, span_start: int, span_end: int) -> pl.DataFrame:
    """direct(a, b) per maximal interval on which it is constant and > 0: columns a, b, s, e, d (units).

    ``eq`` has a, b, share (units), vf, vt (day numbers clipped to the span). Pairs whose records all span
    the whole period take a single group-by; only pairs with a dated record are cut at change points.
    """
    full = (pl.col("vf") <= span_start) & (pl.col("vt") >= span_end)
    dyn_keys = eq.filter(~full).select("a", "b").unique()
    static = (
        eq.join(dyn_keys, on=["a", "b"], how="anti")
        .group_by("a", "b")
        .agg(pl.col("share").sum().alias("d"))
        .select("a", "b", pl.lit(span_start, DAY).alias("s"), pl.lit(span_end, DAY).alias("e"), "d")
    )
    if dyn_keys.height == 0:
        return static
    dyn = eq.join(dyn_keys, on=["a", "b"], how="semi")
    starts = (
        pl.concat(
            [
                dyn.select("a", "b", pl.lit(span_start, DAY).alias("s")),
                dyn.filter(pl.col("vf") > span_start).select("a", "b", pl.col("vf").cast(DAY).alias("s")),
                dyn.filter(pl.col("vt") < span_end).select("a", "b", (pl.col("vt") + 1).cast(DAY).alias("s")),
            ]
        )
        .unique()
        .sort("a", "b", "s")
    )
    ivs = starts.with_columns(
        (pl.col("s").shift(-1).over("a", "b") - 1).fill_null(span_end).cast(DAY).alias("e")
    )
    direct = (
        ivs.join(dyn, on=["a", "b"])
        .filter((pl.col("vf") <= pl.col("s")) & (pl.col("vt") >= pl.col("e")))
        .group_by("a", "b", "s", "e")
        .agg(pl.col("share").sum().alias("d"))
    )
    return pl.concat([static, direct.select("a", "b", "s", "e", "d")])


def _change_points(frame: pl.DataFrame, key: str, span_start: int, span_end: int) -> pl.DataFrame:
    """(key, t): the days inside (S, E] on which an interval of ``frame`` (columns s, e) begins or ends+1."""
    return pl.concat(
        [
            frame.filter(pl.col("s") > span_start).select(pl.col(key), pl.col("s").alias("t")),
            frame.filter(pl.col("e") < span_end).select(pl.col(key), (pl.col("e") + 1).cast(DAY).alias("t")),
        ]
    ).unique()


def _intervals_from_points(points: pl.DataFrame, key: str, span_start: int, span_end: int) -> pl.DataFrame:
    """Cut [S, E] at each key's change points: (key, s, e)."""
    starts = (
        pl.concat([points.select(key).unique().with_columns(pl.lit(span_start, DAY).alias("t")), points])
        .unique()
        .sort(key, "t")
    )
    return starts.select(
        pl.col(key),
        pl.col("t").alias("s"),
        (pl.col("t").shift(-1).over(key) - 1).fill_null(span_end).cast(DAY).alias("e"),
    )


def _backward_closure(seeds: pl.DataFrame, strong: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """All (keys..., x, y): x = y or x reaches y over ``strong`` pairs (columns a -> b plus optional
    interval filters already applied by the caller via join keys). ``seeds`` has keys + y."""
    seen = seeds.with_columns(pl.col("y").alias("x")).select(*keys, "x", "y")
    frontier = seen
    while frontier.height:
        step = (
            frontier.join(strong, left_on=[*keys, "x"], right_on=[*keys, "b"])
            .select(*keys, pl.col("a").alias("x"), "y")
            .unique()
            .join(seen, on=[*keys, "x", "y"], how="anti")
        )
        seen = pl.concat([seen, step])
        frontier = step
    return seen


def p7_edges(
    eq: pl.DataFrame, ne: pl.DataFrame, span_start: int, span_end: int, threshold: int
) -> pl.DataFrame:
    """P7 edges with the (maximal) day intervals on which they exist: columns u, v, s, e.

    ``eq``: a, b, share (units), vf, vt; ``ne``: a, b, vf, vt (non-equity, P5 "qualify outright").
    Validity bounds must already be clipped to [span_start, span_end] and exempt records removed.
    Edges are: strong pairs (direct >= threshold, P6), pass-through holdings x -> c whose effective
    holding reaches the threshold from weak contributions of {x} u Ctrl(x) (P6), and non-equity records.
    """
    pairs = pair_intervals(eq, span_start, span_end)
    strong_iv = pairs.filter(pl.col("d") >= threshold)
    weak_iv = pairs.filter(pl.col("d") < threshold)
    parts = [strong_iv.select(pl.col("a").alias("u"), pl.col("b").alias("v"), "s", "e")]
    parts.append(ne.select(pl.col("a").alias("u"), pl.col("b").alias("v"), pl.col("vf").alias("s"), pl.col("vt").alias("e")))

    # Candidates c: their weak holders could reach the threshold together on some interval.
    cands = (
        weak_iv.group_by("a", "b")
        .agg(pl.col("d").max())
        .group_by("b")
        .agg(pl.col("d").sum())
        .filter(pl.col("d") >= threshold)
        .select(pl.col("b").alias("c"))
    )
    if cands.height:
        holders = weak_iv.join(cands, left_on="b", right_on="c", how="semi").select(
            pl.col("a").alias("y"), pl.col("b").alias("c")
        ).unique()
        year_strong = strong_iv.select("a", "b").unique()
        # Year closure (superset of every day's): which strong pairs can a candidate's answer depend on?
        closure = _backward_closure(holders.select("y").unique(), year_strong, [])
        dyn_strong = pairs.join(year_strong, on=["a", "b"], how="semi").filter(
            (pl.col("s") > span_start) | (pl.col("e") < span_end)
        )
        points_v = _change_points(dyn_strong.rename({"b": "v"}), "v", span_start, span_end)
        points_y = closure.join(points_v, left_on="x", right_on="v").select("y", "t").unique()
        in_pairs = pairs.join(cands, left_on="b", right_on="c", how="semi").filter(
            (pl.col("s") > span_start) | (pl.col("e") < span_end)
        )
        points_c = pl.concat(
            [
                _change_points(in_pairs.rename({"b": "c"}), "c", span_start, span_end),
                holders.join(points_y, on="y").select("c", "t"),
            ]
        ).unique()
        civ = _intervals_from_points(
            pl.concat([points_c, cands.with_columns(pl.lit(span_start, DAY).alias("t"))]), "c", span_start, span_end
        ).with_row_index("k")
        # Weak holders of each candidate interval (pair intervals never straddle a candidate interval).
        weak = (
            civ.join(weak_iv, left_on="c", right_on="b")
            .filter((pl.col("s_right") <= pl.col("s")) & (pl.col("e_right") >= pl.col("e")))
            .select("k", "c", "s", "e", pl.col("a").alias("y"), "d")
        )
        live = weak.group_by("k").agg(pl.col("d").sum()).filter(pl.col("d") >= threshold).select("k")
        weak = weak.join(live, on="k", how="semi")
        if weak.height:
            # Strong pairs active on each live candidate interval, keyed by k (constant on it, see above).
            kiv = weak.select("k", "s", "e").unique()
            strong_k = _strong_on_intervals(kiv, strong_iv, closure, weak)
            reach = _backward_closure(weak.select("k", "y").unique(), strong_k, ["k"])
            sums = (
                reach.join(weak.select("k", "c", "s", "e", "y", "d"), on=["k", "y"])
                .group_by("k", "c", "s", "e", "x")
                .agg(pl.col("d").sum())
                .filter((pl.col("d") >= threshold) & (pl.col("x") != pl.col("c")))
            )
            parts.append(sums.select(pl.col("x").alias("u"), pl.col("c").alias("v"), "s", "e"))
    edges = pl.concat([p.cast({"u": NODE, "v": NODE, "s": DAY, "e": DAY}) for p in parts])
    return merge_intervals(edges, span_start, span_end)


def _strong_on_intervals(
    kiv: pl.DataFrame, strong_iv: pl.DataFrame, closure: pl.DataFrame, weak: pl.DataFrame
) -> pl.DataFrame:
    """(k, a, b): strong pairs into the year-ancestors of interval k's weak holders, active on all of k."""
    nodes = weak.select("k", "y").unique().join(closure, on="y").select("k", pl.col("x").alias("b")).unique()
    return (
        nodes.join(kiv, on="k")
        .join(strong_iv, on="b")
        .filter((pl.col("s_right") <= pl.col("s")) & (pl.col("e_right") >= pl.col("e")))
        .select("k", "a", "b")
        .unique()
    )


def merge_intervals(edges: pl.DataFrame, span_start: int, span_end: int) -> pl.DataFrame:
    """Undirected edges (u < v) with overlapping or adjacent intervals merged: u, v, s, e.

    Pairs that exist on the whole span collapse to one row by a plain unique; only the (few) pairs with
    partial intervals go through the ordered merge."""
    if edges.height == 0:
        return _empty_edges()
    lo = pl.min_horizontal("u", "v")
    hi = pl.max_horizontal("u", "v")
    e = edges.select(lo.alias("u"), hi.alias("v"), "s", "e").filter(pl.col("u") != pl.col("v"))
    full_mask = (pl.col("s") <= span_start) & (pl.col("e") >= span_end)
    full = e.filter(full_mask).select("u", "v").unique()
    part = e.join(full, on=["u", "v"], how="anti").sort("u", "v", "s")
    whole = full.with_columns(pl.lit(span_start, DAY).alias("s"), pl.lit(span_end, DAY).alias("e"))
    if part.height == 0:
        return whole
    prev_end = pl.col("e").cum_max().shift(1).over("u", "v")
    island = (pl.col("s") > prev_end + 1).fill_null(True).cast(pl.Int32).cum_sum().over("u", "v")
    merged = (
        part.with_columns(island.alias("i"))
        .group_by("u", "v", "i")
        .agg(pl.col("s").min(), pl.col("e").max())
        .select("u", "v", "s", "e")
    )
    return pl.concat([whole, merged.cast({"s": DAY, "e": DAY})])


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Label of every node 0..n-1: the smallest node id of its connected component (P7).

    Node ids are ranks of the sorted party ids, so the smallest node is the smallest party_id."""
    if len(u) == 0:
        return np.arange(n, dtype=np.int64)
    graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)  # first (= smallest) node of each component
    return first[comp].astype(np.int64)


def day_label_intervals(
    n: int, edges: pl.DataFrame, span_start: int, span_end: int
) -> tuple[np.ndarray, pl.DataFrame]:
    """Components on every day of the span without recomputing the whole graph per day.

    Returns (static_label, changes): ``static_label[node]`` is its component in the graph of the edges
    that exist on every day; ``changes`` (k, s, e, label) gives, for each static component k whose
    group differs on some day, its label on each interval of the span (non-overlapping, covering
    [S, E]). Only edges that exist on part of the span are revisited per change-point interval, over
    the static components they touch (the contracted graph), not over the parties.
    """
    full = (pl.col("s") <= span_start) & (pl.col("e") >= span_end)
    static = edges.filter(full)
    static_label = components(n, static["u"].to_numpy(), static["v"].to_numpy())
    partial = edges.filter(~full)
    pu = static_label[partial["u"].to_numpy()]
    pv = static_label[partial["v"].to_numpy()]
    keep = pu != pv
    pu, pv = pu[keep], pv[keep]
    ps = partial["s"].to_numpy()[keep]
    pe = partial["e"].to_numpy()[keep]
    empty = pl.DataFrame(schema={"k": NODE, "s": DAY, "e": DAY, "label": NODE})
    if len(pu) == 0:
        return static_label, empty
    points = np.unique(np.concatenate([ps[ps > span_start], pe[pe < span_end] + 1]))
    starts = np.concatenate([[span_start], points]).astype(np.int64)
    ends = np.concatenate([starts[1:] - 1, [span_end]])
    cur = np.arange(n, dtype=np.int64)  # current label of each static component (indexed by its label)
    prev = np.empty(0, dtype=np.int64)
    ev_k, ev_s, ev_l = [], [], []
    # One iteration per change-point interval (at most the days of a year), each over the edges alone.
    for gs, ge in zip(starts, ends):
        m = (ps <= gs) & (pe >= ge)
        uu, vv = pu[m], pv[m]
        nodes, inv = np.unique(np.concatenate([uu, vv]), return_inverse=True)
        if len(nodes):
            k = len(uu)
            lab = components(len(nodes), inv[:k], inv[k:])
            newlab = nodes[lab]
        else:
            newlab = nodes
        cand = np.union1d(prev, nodes)
        want = cand.copy()
        want[np.searchsorted(cand, nodes)] = newlab
        diff = want != cur[cand]
        if diff.any():
            ev_k.append(cand[diff])
            ev_s.append(np.full(int(diff.sum()), gs, dtype=np.int64))
            ev_l.append(want[diff])
            cur[cand[diff]] = want[diff]
        prev = nodes
    if not ev_k:
        return static_label, empty
    events = pl.DataFrame(
        {"k": np.concatenate(ev_k), "s": np.concatenate(ev_s), "label": np.concatenate(ev_l)}
    )
    first = events.select("k").unique().with_columns(pl.lit(span_start, pl.Int64).alias("s"), pl.col("k").alias("label"))
    # An event at S overrides the default; keep the last row per (k, s).
    timeline = (
        pl.concat([first, events])
        .unique(subset=["k", "s"], keep="last", maintain_order=True)
        .sort("k", "s")
    )
    timeline = timeline.with_columns(
        (pl.col("s").shift(-1).over("k") - 1).fill_null(span_end).alias("e")
    )
    return static_label, timeline.select(
        pl.col("k").cast(NODE), pl.col("s").cast(DAY), pl.col("e").cast(DAY), pl.col("label").cast(NODE)
    )


def shortest_path(indptr: np.ndarray, indices: np.ndarray, s: int, t: int) -> list[int] | None:
    """A shortest s..t path in an undirected CSR graph (both directions stored), or None.

    Bidirectional breadth-first search, a whole level at a time from the side whose frontier has the
    fewer edges; at the first level where the two searches touch, the meeting node with the smallest
    distance from the other side (then the smallest id) closes the path, so the path is shortest."""
    if s == t:
        return [s]
    parent = ({s: -1}, {t: -1})
    depth = ({s: 0}, {t: 0})
    frontier = ([s], [t])
    while frontier[0] and frontier[1]:
        cost = [int((indptr[np.array(f) + 1] - indptr[np.array(f)]).sum()) for f in frontier]
        side = 0 if cost[0] <= cost[1] else 1
        own_parent, own_depth = parent[side], depth[side]
        other_depth = depth[1 - side]
        nxt: list[int] = []
        meet: list[int] = []
        for v in frontier[side]:
            d = own_depth[v] + 1
            for w in indices[indptr[v]:indptr[v + 1]].tolist():
                if w in own_parent:
                    continue
                own_parent[w] = v
                own_depth[w] = d
                nxt.append(w)
                if w in other_depth:
                    meet.append(w)
        if meet:
            w = min(meet, key=lambda x: (other_depth[x], x))
            half = []
            x = w
            while x != -1:
                half.append(x)
                x = parent[0][x]
            half.reverse()  # s .. w
            x = parent[1][w]
            while x != -1:
                half.append(x)
                x = parent[1][x]
            return half  # s .. w .. t
        frontier = (nxt, frontier[1]) if side == 0 else (frontier[0], nxt)
    return None
