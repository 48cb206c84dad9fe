"""Explanations of affiliate verdicts as paths of records (P7: every related verdict is explainable).

``explain_relation`` (one pair on one date, or on=None: every non-exempt record whatever its dates, "were
they ever related?"), ``explain_pairs`` (many (a, b, date) pairs of a settlement run), ``YearMerge``
(why two buyers are one caller group of a year: a path over the union of the day graphs, each edge with
the day it existed, P8). Graphs come from the set-based engine; only the edges on a path are explained from
records (``settlement.affiliates.records``). Must not import the CLI, the API, the ledger or clause code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, dijkstra

from settlement.affiliates.engine import components, p7_edges, share_units, shortest_path
from settlement.affiliates.groups import EPOCH, _day, _encode
from settlement.affiliates.records import (
    RelationExplanation,
    _all_records,
    _LocalGraph,
    _plain,
    _Rec,
    _recs,
    pct,
)

def _when(on: dt.date | None) -> str:
    return f"on {on}" if on is not None else "when every non-exempt record counts whatever its dates"


def _related_text(a: str, b: str, on: dt.date | None, phrases: list[str]) -> str:
    return f"{a} and {b} are related {_when(on)} (P7): " + "; ".join(phrases) + "."


class _DateContext:
    """Every record of the current set, and the P7 graph of those active on one date (or on=None).

    The graph comes from the set-based engine (edges + scipy components); paths are breadth-first
    searches over its edges; only the edges on a path are explained from records (``_LocalGraph``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, on: dt.date | None, threshold: Decimal,
                 records: pl.DataFrame | None = None, index: _LocalGraph | None = None, *, graph: bool = True):
        self.on = on
        self.threshold = Decimal(threshold)
        self.records = records if records is not None else _all_records(con)
        live = self.records.filter(~pl.col("exempt"))
        self._live = live
        self._index = index  # built lazily for the groups an explanation needs (see _view_for)
        active = live
        if on is not None:
            active = active.filter(
                (pl.col("valid_from").is_null() | (pl.col("valid_from") <= on))
                & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= on))
            )
        self.parties: list[str] = []
        self.node: dict[str, int] = {}
        self.graph = None
        self.label = np.empty(0, dtype=np.int64)
        self._strong = (
            active.filter(pl.col("relation") == "equity")
            .group_by("a_id", "b_id")
            .agg(pl.col("share").sum())
            .filter(pl.col("share") >= self.threshold)
            .select("a_id", "b_id")
        )
        if active.height and graph:  # graph=False: only the records, for explaining given edges (_view_for)
            frame = active.select(
                "a_id", "b_id", (pl.col("relation") == "equity").alias("is_equity"),
                (pl.col("share").fill_null(0) * 10**10).cast(pl.Int64).alias("share"),
                pl.lit(0).alias("vf"), pl.lit(0).alias("vt"),
            )
            enc = _encode(frame)
            edges = p7_edges(enc.eq, enc.ne, 0, 0, share_units(self.threshold))
            n = enc.parties.len()
            u, v = edges["u"].to_numpy(), edges["v"].to_numpy()
            self.parties = enc.parties.to_list()
            self.node = {p: i for i, p in enumerate(self.parties)}
            self.label = components(n, u, v)
            self.graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n)).tocsr()

    def group(self, party: str) -> str:
        i = self.node.get(party)
        return party if i is None else self.parties[int(self.label[i])]

    def _view_for(self, parties: set[str]) -> _LocalGraph:
        """The record index restricted to what explaining edges at ``parties`` needs: their outright
        records, and the equity records held by {x} u Ctrl(x) for each x among them (P6) — a forward
        closure over the strong pairs active on this date, computed set-based."""
        index = self._index
        if index is None:
            reach = self._strong_closure(parties)
            wanted = self._live.filter(pl.col("a_id").is_in(reach) | pl.col("b_id").is_in(list(parties)))
            index = _LocalGraph(_recs(wanted), self.threshold)
        return index.at(self.on) if self.on is not None else index

    def _strong_closure(self, seeds: set[str]) -> list[str]:
        """Seeds and every party they reach over pairs with direct >= threshold (Ctrl, P6) on this date."""
        seen = pl.DataFrame({"x": sorted(seeds)}, schema={"x": pl.String})
        frontier = seen
        while frontier.height:
            frontier = (
                frontier.join(self._strong, left_on="x", right_on="a_id")
                .select(pl.col("b_id").alias("x"))
                .unique()
                .join(seen, on="x", how="anti")
            )
            seen = pl.concat([seen, frontier])
        return seen["x"].to_list()

    def explain(self, a: str, b: str) -> RelationExplanation:
        if a != b and self.group(a) == self.group(b):
            _, pred = breadth_first_order(self.graph, self.node[a], directed=False, return_predecessors=True)
            path = [self.node[b]]
            while path[-1] != self.node[a]:
                path.append(int(pred[path[-1]]))
            names = [self.parties[i] for i in reversed(path)]
            phrases: list[str] = []
            used: list[_Rec] = []
            view = self._view_for(set(names))
            for u, v in zip(names, names[1:]):
                p, r = view.edge_phrases(u, v)
                phrases.extend(p)
                used.extend(r)
            return RelationExplanation(
                True, a, b, self.on, tuple(r.step("counts") for r in used), _related_text(a, b, self.on, phrases)
            )
        return self._not_related(a, b)

    def _not_related(self, a: str, b: str) -> RelationExplanation:
        thr = pct(self.threshold)
        head = (
            f"{a} and {b} are not related {_when(self.on)} (P7): no chain of active, non-exempt records "
            f"with holdings of at least {thr} connects them."
        )
        if a == b:
            return RelationExplanation(False, a, b, self.on, (), f"{a} is one party, not a pair.")
        chain = self._nearest_chain(a, b)
        if chain is None:
            text = head + " No affiliation record links them, even through other parties."
            return RelationExplanation(False, a, b, self.on, (), text)
        steps, phrases = [], []
        self._chain_view = self._view_for({p for r in chain for p in (r.a, r.b)})
        for r in chain:
            verdict, why = self._verdict(r)
            steps.append(r.step(verdict))
            phrases.append(f"{_plain(r)}: {why}")
        text = head + " Nearest chain of records: " + "; ".join(phrases) + "."
        return RelationExplanation(False, a, b, self.on, tuple(steps), text)

    def _verdict(self, r: _Rec) -> tuple[str, str]:
        if r.exempt:
            return "exempt", "exempt, does not count (P5)"
        if not r.active(self.on):
            return "not active", f"not active on {self.on} (P5)"
        if self.group(r.a) == self.group(r.b):
            return "counts", "counts"
        # An active equity record whose ends are in different groups: its holder's effective holding is short.
        eff = sum((d for _, d in self._chain_view.contributions(r.a, r.b)), Decimal(0))
        return "below threshold", f"effective holding {pct(eff)} < {pct(self.threshold)} (P6)"

    def _nearest_chain(self, a: str, b: str) -> list[_Rec] | None:
        """Records on a path a..b over ALL records (exempt and inactive too) crossing the fewest records
        that do not count (weight 1000 each, 1 for a counting record); per pair the lightest, lowest id."""
        recs = self.records
        if recs.height == 0:
            return None
        parties = pl.concat([recs["a_id"], recs["b_id"]]).unique().sort()
        idx = {p: i for i, p in enumerate(parties.to_list())}
        if a not in idx or b not in idx:
            return None
        groups = pl.DataFrame({"party": parties, "g": [self.group(p) for p in parties.to_list()]})
        on = self.on
        active = ~pl.col("exempt")
        if on is not None:
            active = active & (pl.col("valid_from").is_null() | (pl.col("valid_from") <= on)) & (
                pl.col("valid_to").is_null() | (pl.col("valid_to") >= on)
            )
        ids = pl.DataFrame({"party": parties, "i": pl.arange(0, parties.len(), eager=True)})
        w = (
            recs.select("record_id", "a_id", "b_id", active.alias("active"))
            .join(groups.rename({"g": "ga"}), left_on="a_id", right_on="party")
            .join(groups.rename({"g": "gb"}), left_on="b_id", right_on="party")
            .join(ids.rename({"i": "ia"}), left_on="a_id", right_on="party")
            .join(ids.rename({"i": "ib"}), left_on="b_id", right_on="party")
            .select(
                "record_id",
                pl.min_horizontal("ia", "ib").alias("u"),
                pl.max_horizontal("ia", "ib").alias("v"),
                pl.when(pl.col("active") & (pl.col("ga") == pl.col("gb"))).then(1).otherwise(1000).alias("w"),
            )
            .sort("u", "v", "w", "record_id")
            .unique(subset=["u", "v"], keep="first")
        )
        n = parties.len()
        graph = coo_matrix((w["w"].to_numpy().astype(float), (w["u"].to_numpy(), w["v"].to_numpy())), shape=(n, n))
        dist, pred = dijkstra(graph.tocsr(), directed=False, indices=idx[a], return_predecessors=True)
        if not np.isfinite(dist[idx[b]]):
            return None
        path = [idx[b]]
        while path[-1] != idx[a]:
            path.append(int(pred[path[-1]]))
        path.reverse()
        chosen = {(u, v): rid for u, v, rid in w.select("u", "v", "record_id").iter_rows()}
        rids = [chosen[(min(x, y), max(x, y))] for x, y in zip(path, path[1:])]
        by_id = {r.record_id: r for r in _recs(recs.filter(pl.col("record_id").is_in(rids)))}
        return [by_id[rid] for rid in rids]


def affiliate_graph(con: duckdb.DuckDBPyConnection, *, on: dt.date | None, equity_threshold: Decimal):
    """The P7 graph of the records active on ``on`` (on=None: every non-exempt record) as a networkx Graph,
    for ad-hoc analysis and notebooks; settlement itself uses the array engine (10x faster at 1M nodes).
    Edges are a component-equivalent set: strong pairs, pass-through holdings, non-equity records."""
    import networkx as nx

    ctx = _DateContext(con, on, equity_threshold)
    graph = nx.Graph()
    graph.add_nodes_from(ctx.parties)
    if ctx.graph is not None:
        coo = ctx.graph.tocoo()
        graph.add_edges_from((ctx.parties[int(u)], ctx.parties[int(v)]) for u, v in zip(coo.row, coo.col))
    return graph


def explain_relation(
    con: duckdb.DuckDBPyConnection, a_id: str, b_id: str, *, on: dt.date | None, equity_threshold: Decimal
) -> RelationExplanation:
    """Whether a and b are related on ``on`` (P8 trade-date graph) and the path of records that makes them
    so, or why the nearest records do not qualify. on=None: every non-exempt record, dates ignored."""
    return _DateContext(con, on, equity_threshold).explain(a_id, b_id)


class YearMerge:
    """Why two buyers are one caller group of a year (P8: the union of the day graphs' edges): a shortest
    path over that union, each edge explained from records on a day it existed (its first such day).
    The union is built once and asked about many pairs: explaining the caller
    groups of a dataset asks about every further buyer of up to 20 groups, and rebuilding the year's P7
    edges from all records for each (and a day graph for each edge on the path) took minutes with 200k
    records. The day contexts of the path edges are kept per day, over one read of the records."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, year: int, equity_threshold: Decimal,
                 window_start: dt.date, window_end: dt.date):
        from settlement.affiliates.groups import _active_records  # the records the year build reads

        self.con, self.year, self.threshold = con, year, Decimal(equity_threshold)
        first, last = max(dt.date(year, 1, 1), window_start), min(dt.date(year, 12, 31), window_end)
        records = _active_records(con, first, last) if first <= last else pl.DataFrame()
        self.node: dict[str, int] = {}
        self._days: dict[int, _DateContext] = {}
        self._edges: dict[tuple[int, int], str] = {}
        self._all: pl.DataFrame | None = None
        if records.height == 0:
            return
        enc = _encode(records)
        edges = p7_edges(enc.eq, enc.ne, _day(first), _day(last), share_units(self.threshold))
        self.parties = enc.parties.to_list()
        self.node = {p: i for i, p in enumerate(self.parties)}
        u, v, n = edges["u"].to_numpy(), edges["v"].to_numpy(), len(self.parties)
        self.graph = coo_matrix((np.ones(2 * len(u), dtype=np.int8), (np.concatenate([u, v]), np.concatenate([v, u]))),
                                shape=(n, n)).tocsr()
        self.first_day = {(int(x), int(y)): int(s) for x, y, s in
                          edges.group_by("u", "v").agg(pl.col("s").min()).select("u", "v", "s").iter_rows()}

    def _on(self, day: int) -> _DateContext:
        if day not in self._days:
            if self._all is None:
                self._all = _all_records(self.con)
            self._days[day] = _DateContext(self.con, EPOCH + dt.timedelta(days=day), self.threshold, records=self._all,
                                           graph=False)
        return self._days[day]

    def _edge(self, x: int, y: int) -> str:
        """One edge of a path explained from records on its first day (paths from one buyer share edges)."""
        if (x, y) not in self._edges:
            day = self.first_day[(min(x, y), max(x, y))]
            text, _ = self._on(day)._view_for({self.parties[x], self.parties[y]}).edge_phrases(
                self.parties[x], self.parties[y])
            self._edges[(x, y)] = f"on {EPOCH + dt.timedelta(days=day)}: " + "; ".join(text)
        return self._edges[(x, y)]

    def explain(self, a: str, b: str) -> str:
        not_one = f"{a} and {b} are not one caller group of {self.year} (P8)."
        if a == b or a not in self.node or b not in self.node:
            return not_one
        path = shortest_path(self.graph.indptr, self.graph.indices, self.node[a], self.node[b])
        if path is None:
            return not_one
        phrases = [self._edge(x, y) for x, y in zip(path, path[1:])]
        return (f"{a} and {b} are one caller group of {self.year} (P8: the union of the day graphs' edges): "
                + "; ".join(phrases) + ".")
