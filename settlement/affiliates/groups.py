"""Affiliate resolution (P4-P8): who is related to whom, on which day, and why.

Owns: the derived tables ``affiliate_groups`` (year graph, P8 second bullet) and ``affiliate_day_groups``
(trade-date graph, P8 first bullet), built per year by ``build_year_groups`` from the current affiliation
set (view ``affiliations``), and the explanations of a verdict as a path of records
(``explain_relation``, ``explain_pairs``). The set-based engine lives in ``settlement.affiliates.engine``;
this module reads the store, encodes parties as integers, writes the caches and explains with a small
per-component graph (networkx for the "nearest records" search). Load-time validation of affiliation
files is not here (``settlement.inputs.registry``). Must not import the CLI, the API, the ledger or clause code.

on=None in explanations: every non-exempt record counts, whatever its dates (the union of all days: the
most conservative reading, useful to ask "were these ever related?").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import numpy as np
import polars as pl

from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, dijkstra

from settlement.core import store
from settlement.affiliates.engine import (
    components,
    day_label_intervals,
    p7_edges,
    share_units,
)

EPOCH = dt.date(1970, 1, 1)
RELATIONS_OUTRIGHT = ("control", "management", "family", "declared")  # P5: qualify without a share


def _day(d: dt.date) -> int:
    return (d - EPOCH).days


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    return con.sql(sql, params=params or []).pl()


def current_affiliation_load(con: duckdb.DuckDBPyConnection) -> int | None:
    """load_id of the current affiliation set (the view ``affiliations``), None before any load."""
    return store.scalar(con, "SELECT max(load_id) FROM registry_loads WHERE kind = 'affiliations'")


# --------------------------------------------------------------------------------------------------
# Year and day groups (P7, P8)


def _active_records(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> pl.DataFrame:
    """Non-exempt records active on at least one day of [first, last] (P5), bounds clipped to it."""
    return _frame(
        con,
        """
        SELECT a_id, b_id, relation = 'equity' AS is_equity,
               CAST(coalesce(share, 0) * 10000000000 AS BIGINT) AS share,
               greatest(coalesce(valid_from, $first), $first) AS vf,
               least(coalesce(valid_to, $last), $last) AS vt
        FROM affiliations
        WHERE NOT exempt
          AND coalesce(valid_from, $first) <= $last AND coalesce(valid_to, $last) >= $first
        """,
        {"first": first, "last": last},
    )


@dataclass(frozen=True)
class _Encoded:
    parties: pl.Series  # sorted party ids; node id = position (so the smallest node = smallest party_id)
    eq: pl.DataFrame  # a, b, share, vf, vt (day numbers)
    ne: pl.DataFrame  # a, b, vf, vt


def _encode(records: pl.DataFrame) -> _Encoded:
    parties = pl.concat([records["a_id"], records["b_id"]]).unique().sort()
    ids = pl.DataFrame({"party": parties, "node": pl.arange(0, parties.len(), eager=True, dtype=pl.Int64)})
    rec = (
        records.join(ids, left_on="a_id", right_on="party")
        .rename({"node": "a"})
        .join(ids, left_on="b_id", right_on="party")
        .rename({"node": "b"})
        .with_columns(pl.col("vf").cast(pl.Int32), pl.col("vt").cast(pl.Int32))
    )
    eq = rec.filter("is_equity").select("a", "b", "share", "vf", "vt")
    ne = rec.filter(~pl.col("is_equity")).select("a", "b", "vf", "vt")
    return _Encoded(parties, eq, ne)


def _in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """True inside the caller's explicit transaction. Probing with BEGIN would abort that transaction on
    failure, so compare two transaction ids instead: in autocommit mode every statement gets a new one."""
    first = store.scalar(con, "SELECT txid_current()")
    return store.scalar(con, "SELECT txid_current()") == first


def build_year_groups(
    con: duckdb.DuckDBPyConnection,
    year: int,
    *,
    equity_threshold: Decimal,
    window_start: dt.date,
    window_end: dt.date,
) -> None:
    """Materialise ``affiliate_groups`` and ``affiliate_day_groups`` for ``year`` (P7, P8).

    The year's in-scope days are [max(Jan 1, window_start), min(Dec 31, window_end)] (P2, P3).
    - affiliate_groups: components of the graph of every non-exempt record active on any in-scope day
      (P8 second bullet); group_id = smallest party_id of the component.
    - affiliate_day_groups: each party's component on every in-scope day (P8 first bullet) as
      non-overlapping intervals covering the in-scope days. Edges that exist all year are resolved
      once; only edges that exist on part of the year are revisited per change-point interval, over
      the static components they touch (``affiliates_core.day_label_intervals``).
    Replaces earlier rows of the year; idempotent; set-based (no loop over parties or records).
    """
    threshold = share_units(equity_threshold)
    first = max(dt.date(year, 1, 1), window_start)
    last = min(dt.date(year, 12, 31), window_end)
    load_id = current_affiliation_load(con)
    groups = _empty_year_frame()
    days = _empty_day_frame()
    if first <= last and load_id is not None:
        records = _active_records(con, first, last)
        if records.height:
            groups, days = _resolve_year(records, year, first, last, threshold, load_id)
    own = not _in_transaction(con)
    if own:
        con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM affiliate_groups WHERE year = ?", [year])
        con.execute("DELETE FROM affiliate_day_groups WHERE year = ?", [year])
        con.register("_affiliate_groups_new", groups)
        con.register("_affiliate_day_groups_new", days)
        con.execute(
            "INSERT INTO affiliate_groups (year, party_id, group_id, affiliation_load_id) "
            "SELECT year, party_id, group_id, affiliation_load_id FROM _affiliate_groups_new"
        )
        con.execute(
            "INSERT INTO affiliate_day_groups (year, party_id, day_from, day_to, group_id, affiliation_load_id) "
            "SELECT year, party_id, day_from, day_to, group_id, affiliation_load_id FROM _affiliate_day_groups_new"
        )
        con.unregister("_affiliate_groups_new")
        con.unregister("_affiliate_day_groups_new")
        if own:
            con.execute("COMMIT")
    except BaseException:
        if own:
            con.execute("ROLLBACK")
        raise


def _empty_year_frame() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"year": pl.Int32, "party_id": pl.String, "group_id": pl.String, "affiliation_load_id": pl.Int64}
    )


def _empty_day_frame() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "year": pl.Int32,
            "party_id": pl.String,
            "day_from": pl.Date,
            "day_to": pl.Date,
            "group_id": pl.String,
            "affiliation_load_id": pl.Int64,
        }
    )


def _resolve_year(
    records: pl.DataFrame, year: int, first: dt.date, last: dt.date, threshold: int, load_id: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    enc = _encode(records)
    s, e = _day(first), _day(last)
    n = enc.parties.len()
    # Year graph (P8): every record active on some in-scope day counts as if active all year.
    whole = [pl.lit(s, pl.Int32).alias("vf"), pl.lit(e, pl.Int32).alias("vt")]
    year_edges = p7_edges(enc.eq.with_columns(whole), enc.ne.with_columns(whole), s, e, threshold)
    year_label = components(n, year_edges["u"].to_numpy(), year_edges["v"].to_numpy())
    parties = enc.parties
    groups = pl.DataFrame(
        {
            "year": pl.Series([year] * n, dtype=pl.Int32),
            "party_id": parties,
            "group_id": parties.gather(year_label),
            "affiliation_load_id": pl.Series([load_id] * n, dtype=pl.Int64),
        }
    )
    # Trade-date graph (P8): records only on their own days.
    day_edges = p7_edges(enc.eq, enc.ne, s, e, threshold)
    static_label, changes = day_label_intervals(n, day_edges, s, e)
    nodes = pl.DataFrame({"node": np.arange(n, dtype=np.int64), "k": static_label})
    changing = nodes.join(changes, on="k")
    steady = nodes.join(changes.select("k").unique(), on="k", how="anti").select(
        "node", pl.lit(s, pl.Int32).alias("s"), pl.lit(e, pl.Int32).alias("e"), pl.col("k").alias("label")
    )
    rows = pl.concat([steady, changing.select("node", "s", "e", "label")])
    days = rows.select(
        pl.lit(year, pl.Int32).alias("year"),
        parties.gather(rows["node"]).alias("party_id"),
        pl.col("s").cast(pl.Date).alias("day_from"),
        pl.col("e").cast(pl.Date).alias("day_to"),
        parties.gather(rows["label"]).alias("group_id"),
        pl.lit(load_id, pl.Int64).alias("affiliation_load_id"),
    )
    return groups, days


# --------------------------------------------------------------------------------------------------
# Explanations


@dataclass(frozen=True)
class RelationStep:
    """One affiliation record cited by an explanation, with what it does for the verdict."""

    record_id: int
    row_number: int
    a_id: str
    b_id: str
    relation: str
    share: Decimal | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    verdict: str  # 'counts' | 'exempt' | 'not active' | 'below threshold'


@dataclass(frozen=True)
class RelationExplanation:
    related: bool
    a_id: str
    b_id: str
    on: dt.date | None
    steps: tuple[RelationStep, ...]
    text: str


@dataclass(frozen=True)
class _Rec:
    record_id: int
    row_number: int
    a: str
    b: str
    relation: str
    share: Decimal | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    exempt: bool

    def active(self, on: dt.date | None) -> bool:
        """P5; on=None: every non-exempt record counts, whatever its dates."""
        if self.exempt:
            return False
        if on is None:
            return True
        return (self.valid_from is None or self.valid_from <= on) and (self.valid_to is None or on <= self.valid_to)

    def step(self, verdict: str) -> RelationStep:
        return RelationStep(
            self.record_id, self.row_number, self.a, self.b, self.relation, self.share,
            self.valid_from, self.valid_to, verdict,
        )


def pct(share: Decimal) -> str:
    """0.3 -> '30%', 0.2499 -> '24.99%', 0.125 -> '12.5%' (shares print as percentages)."""
    text = format((Decimal(share) * 100).normalize(), "f")
    return f"{text}%"


def _validity(r: _Rec) -> str:
    if r.valid_from and r.valid_to:
        return f"valid {r.valid_from} to {r.valid_to}"
    if r.valid_from:
        return f"valid from {r.valid_from}"
    if r.valid_to:
        return f"valid to {r.valid_to}"
    return ""


def _cite(r: _Rec) -> str:
    v = _validity(r)
    return f"(record {r.record_id}, {v})" if v else f"(record {r.record_id})"


def _plain(r: _Rec) -> str:
    """The record in words, with its citation."""
    if r.relation == "equity":
        return f"{r.a} holds {pct(r.share)} of {r.b} {_cite(r)}"
    phrase = {
        "control": "{a} controls {b}",
        "management": "{a} appoints the management of {b}",
        "family": "{a} and {b} are family",
        "declared": "{a} and {b} are declared affiliates",
    }.get(r.relation, "{a} and {b}: " + r.relation)
    return phrase.format(a=r.a, b=r.b) + " " + _cite(r)


class _LocalGraph:
    """P6/P7 on a small set of active records, for explanations (exact, per node, lazily)."""

    def __init__(self, records: list[_Rec], threshold: Decimal):
        self.threshold = Decimal(threshold)
        self.eq_out: dict[str, dict[str, list[_Rec]]] = defaultdict(dict)
        self.eq_in: dict[str, set[str]] = defaultdict(set)
        self.outright: dict[str, list[tuple[str, _Rec]]] = defaultdict(list)
        for r in records:  # in record_id order (callers read them ORDER BY record_id)
            if r.relation == "equity":
                self.eq_out[r.a].setdefault(r.b, []).append(r)
                self.eq_in[r.b].add(r.a)
            else:
                self.outright[r.a].append((r.b, r))
                self.outright[r.b].append((r.a, r))
        self._reach: dict[str, dict[str, str | None]] = {}
        self._strong_candidates: dict[str, list[str]] = {}  # shared by dated views (an upper bound)
        self.on: dt.date | None = None
        self.dated = False  # False: the records given are exactly the active set

    def at(self, on: dt.date) -> _LocalGraph:
        """A view of the same records keeping only those active on ``on`` (P5); shares the indexes."""
        view = object.__new__(_LocalGraph)
        view.__dict__.update(self.__dict__)
        view._reach, view.on, view.dated = {}, on, True
        return view

    def _live(self, recs):
        return recs if not self.dated else [r for r in recs if r.active(self.on)]

    def direct(self, y: str, c: str) -> Decimal:
        return sum((r.share for r in self._live(self.eq_out.get(y, {}).get(c, ()))), Decimal(0))

    def edge_phrases(self, u: str, v: str) -> tuple[list[str], list[_Rec]]:
        """Why u and v are adjacent in the P7 graph: an outright record, else a holding either way."""
        for other, r in self.outright.get(u, ()):
            if other == v and self._live([r]):
                return [_plain(r)], [r]
        for x, c in ((u, v), (v, u)):  # a direct holding needs no Ctrl(x) walk
            if self.direct(x, c) >= self.threshold:
                return self.explain_holding(x, c)
        if self.holds(u, v):
            return self.explain_holding(u, v)
        if self.holds(v, u):
            return self.explain_holding(v, u)
        raise AssertionError(f"no P7 edge between {u} and {v} on {self.on}")  # engine/explainer mismatch

    def _candidates(self, y: str) -> list[str]:
        """Targets c that y could hold >= threshold on some date: all of y's records into c summed."""
        found = self._strong_candidates.get(y)
        if found is None:
            found = sorted(
                c for c, recs in self.eq_out.get(y, {}).items()
                if sum((r.share for r in recs), Decimal(0)) >= self.threshold
            )
            self._strong_candidates[y] = found
        return found

    def reach(self, x: str) -> dict[str, str | None]:
        """{x} u Ctrl(x) in BFS order, each with its predecessor on a shortest strong path (P6)."""
        if x not in self._reach:
            pred: dict[str, str | None] = {x: None}
            queue = deque([x])
            while queue:
                y = queue.popleft()
                for c in self._candidates(y):
                    if c not in pred and self.direct(y, c) >= self.threshold:
                        pred[c] = y
                        queue.append(c)
            self._reach[x] = pred
        return self._reach[x]

    def contributions(self, x: str, c: str) -> list[tuple[str, Decimal]]:
        """(y, direct(y, c)) over y in {x} u Ctrl(x), y != c, x first then BFS order (P6 eff terms)."""
        found = [(y, self.direct(y, c)) for y in self.reach(x) if y != c and c in self.eq_out.get(y, {})]
        return [(y, d) for y, d in found if d > 0]

    def holds(self, x: str, c: str) -> bool:
        return x != c and sum((d for _, d in self.contributions(x, c)), Decimal(0)) >= self.threshold

    def _pair_phrase(self, u: str, c: str) -> tuple[str, list[_Rec]]:
        recs = self._live(self.eq_out[u][c])
        if len(recs) == 1:
            return f"{u} holds {pct(recs[0].share)} of {c} {_cite(recs[0])}", recs
        parts = " + ".join(f"{pct(r.share)} {_cite(r)}" for r in recs)
        return f"{u} holds {parts} = {pct(self.direct(u, c))} of {c}", recs

    def explain_holding(self, x: str, c: str) -> tuple[list[str], list[_Rec]]:
        """Why x holds c (P6): the direct share, or the pass-through sum with the chains it uses."""
        thr = pct(self.threshold)
        d = self.direct(x, c)
        if d >= self.threshold:
            phrase, recs = self._pair_phrase(x, c)
            return [f"{phrase} ≥ {thr} (P6)"], recs
        pred = self.reach(x)
        contrib = self.contributions(x, c)
        phrases: list[str] = []
        used: list[_Rec] = []
        chained: set[tuple[str, str]] = set()
        for y, _ in contrib:
            if y == x:
                continue
            chain = []
            node = y
            while pred[node] is not None:
                chain.append((pred[node], node))
                node = pred[node]
            for step in reversed(chain):
                if step not in chained:
                    chained.add(step)
                    phrase, recs = self._pair_phrase(*step)
                    phrases.append(phrase)
                    used.extend(recs)
        for y, _ in contrib:
            if y != x:
                phrase, recs = self._pair_phrase(y, c)
                phrases.append(phrase)
                used.extend(recs)
        own = [(y, dd) for y, dd in contrib if y == x]
        if own:
            phrase, recs = self._pair_phrase(x, c)
            phrases.append(phrase.replace(f" of {c}", f" of {c} directly", 1))
            used.extend(recs)
        terms = [dd for _, dd in own] + [dd for y, dd in contrib if y != x]
        total = sum(terms, Decimal(0))
        sum_text = " + ".join(pct(t) for t in terms) + (f" = {pct(total)}" if len(terms) > 1 else "")
        phrases.append(f"effective holding {sum_text} ≥ {thr} (P6)")
        return phrases, used


def _when(on: dt.date | None) -> str:
    return f"on {on}" if on is not None else "when every non-exempt record counts whatever its dates"


def _related_text(a: str, b: str, on: dt.date | None, phrases: list[str]) -> str:
    return f"{a} and {b} are related {_when(on)} (P7): " + "; ".join(phrases) + "."


class _DateContext:
    """Every record of the current set, and the P7 graph of those active on one date (or on=None).

    The graph comes from the set-based engine (edges + scipy components); paths are breadth-first
    searches over its edges; only the edges on a path are explained from records (``_LocalGraph``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, on: dt.date | None, threshold: Decimal,
                 records: pl.DataFrame | None = None, index: _LocalGraph | None = None):
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
        if active.height:
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


def _all_records(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return _frame(
        con,
        "SELECT record_id, row_number, a_id, b_id, relation, share, valid_from, valid_to, exempt "
        "FROM affiliations ORDER BY record_id",
    )


def _recs(frame: pl.DataFrame) -> list[_Rec]:
    cols = [frame[c].to_list() for c in
            ("record_id", "row_number", "a_id", "b_id", "relation", "share", "valid_from", "valid_to", "exempt")]
    return [
        _Rec(int(rid), int(row), a, b, rel, None if share is None else Decimal(share).normalize(), vf, vt, bool(ex))
        for rid, row, a, b, rel, share, vf, vt, ex in zip(*cols)
    ]


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


def _shortest_path(indptr: np.ndarray, indices: np.ndarray, s: int, t: int) -> list[int] | None:
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


def explain_pairs(con: duckdb.DuckDBPyConnection, pairs: pl.DataFrame, *, equity_threshold: Decimal) -> pl.DataFrame:
    """``pairs`` (a_id, b_id, on_date) with a column ``path``: the explanation text of each pair.

    Built for many distinct pairs: per year, the P7 edges with their day intervals are computed once by
    the set-based engine; per date, a shortest path from each distinct a_id is found by one
    breadth-first search over the edges active that day (scipy, C speed); only the edges on the
    returned paths are explained in Python (records indexed once, filtered by date). Pairs that are
    not related on their date get the full ``explain_relation`` text (nearest records), one context per
    date.
    """
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
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
        recs = live.filter(
            (pl.col("valid_from").is_null() | (pl.col("valid_from") <= last))
            & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= first))
        )
        if recs.height == 0:
            continue
        frame = recs.select(
            "a_id", "b_id", (pl.col("relation") == "equity").alias("is_equity"),
            (pl.col("share").fill_null(0) * 10**10).cast(pl.Int64).alias("share"),
            pl.max_horizontal(pl.col("valid_from").fill_null(first), pl.lit(first)).alias("vf"),
            pl.min_horizontal(pl.col("valid_to").fill_null(last), pl.lit(last)).alias("vt"),
        )
        enc = _encode(frame)
        edges = p7_edges(enc.eq, enc.ne, _day(first), _day(last), share_units(threshold))
        n = enc.parties.len()
        node = {p: i for i, p in enumerate(enc.parties.to_list())}
        eu, ev = edges["u"].to_numpy(), edges["v"].to_numpy()
        es, ee = edges["s"].to_numpy(), edges["e"].to_numpy()
        parties = enc.parties.to_list()
        found: list[tuple[str, str, dt.date, list[str]]] = []
        # Both directions, sorted once by (row, col): each date's CSR is a mask of these arrays, so the
        # searches run on it as is (no per-call transpose, no per-date sort).
        rows = np.concatenate([eu, ev])
        cols = np.concatenate([ev, eu])
        r_s = np.concatenate([es, es])
        r_e = np.concatenate([ee, ee])
        order = np.lexsort((cols, rows))
        rows, cols, r_s, r_e = rows[order], cols[order], r_s[order], r_e[order]
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
                    path = _shortest_path(graph.indptr, graph.indices, node[a], node[b])
                    if path is not None:
                        found.append((a, b, on, [parties[i] for i in path]))
        if not found:
            continue
        # Index only the records the found paths need: outright records at path nodes and the equity
        # records of every party reachable from a path node over pairs strong on some day of the year
        # (a superset of each day's Ctrl, P6), so a 2M-record set is not turned into Python objects.
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
        for a, b, on, names in found:
            view = views.get(on) or views.setdefault(on, index.at(on))
            phrases: list[str] = []
            for u, v in zip(names, names[1:]):
                phrases.extend(view.edge_phrases(u, v)[0])
            texts[(a, b, on)] = _related_text(a, b, on, phrases)
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
