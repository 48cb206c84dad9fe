"""Affiliate resolution (P4-P8): who is related to whom, on which day, and why.

Owns: the derived tables ``affiliate_groups`` (year graph, P8 second bullet) and ``affiliate_day_groups``
(trade-date graph, P8 first bullet), built per year by ``build_year_groups`` from the current affiliation
set (view ``affiliations``), and the explanations of a verdict as a path of records
(``explain_relation``, ``explain_pairs``). The set-based engine lives in ``settlement.affiliates_core``;
this module reads the store, encodes parties as integers, writes the caches and explains with a small
per-component graph (networkx for the "nearest records" search). Load-time validation of affiliation
files is not here (``settlement.registry``). Must not import the CLI, the API, the ledger or clause code.

on=None in explanations: every non-exempt record counts, whatever its dates (the union of all days: the
most conservative reading, useful to ask "were these ever related?").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import networkx as nx
import numpy as np
import polars as pl

from settlement import store
from settlement.affiliates_core import (
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
    try:
        con.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        return True  # the caller's transaction: let the caller commit
    return False


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
        for r in sorted(records, key=lambda r: r.record_id):
            if r.relation == "equity":
                self.eq_out[r.a].setdefault(r.b, []).append(r)
                self.eq_in[r.b].add(r.a)
            else:
                self.outright[r.a].append((r.b, r))
                self.outright[r.b].append((r.a, r))
        self._reach: dict[str, dict[str, str | None]] = {}

    def direct(self, y: str, c: str) -> Decimal:
        return sum((r.share for r in self.eq_out.get(y, {}).get(c, ())), Decimal(0))

    def reach(self, x: str) -> dict[str, str | None]:
        """{x} u Ctrl(x) in BFS order, each with its predecessor on a shortest strong path (P6)."""
        if x not in self._reach:
            pred: dict[str, str | None] = {x: None}
            queue = deque([x])
            while queue:
                y = queue.popleft()
                for c in sorted(self.eq_out.get(y, {})):
                    if c not in pred and self.direct(y, c) >= self.threshold:
                        pred[c] = y
                        queue.append(c)
            self._reach[x] = pred
        return self._reach[x]

    def contributions(self, x: str, c: str) -> list[tuple[str, Decimal]]:
        """(y, direct(y, c)) over y in {x} u Ctrl(x), y != c, x first then BFS order (P6 eff terms)."""
        return [(y, self.direct(y, c)) for y in self.reach(x) if y != c and c in self.eq_out.get(y, {})]

    def holds(self, x: str, c: str) -> bool:
        return x != c and sum((d for _, d in self.contributions(x, c)), Decimal(0)) >= self.threshold

    def neighbours(self, v: str) -> list[tuple[str, tuple]]:
        """P7 neighbours of v with the edge that makes them one: ('rec', r) or ('holds', x, c)."""
        found: dict[str, tuple] = {}
        for other, r in self.outright.get(v, ()):
            found.setdefault(other, ("rec", r))
        for y in self.reach(v):
            for c in self.eq_out.get(y, {}):
                if c not in found and self.holds(v, c):
                    found[c] = ("holds", v, c)
        # Holders of v: parties whose {x} u Ctrl(x) contains a direct holder of v.
        ancestors: set[str] = set()
        queue = deque(self.eq_in.get(v, ()))
        while queue:
            y = queue.popleft()
            if y in ancestors:
                continue
            ancestors.add(y)
            queue.extend(p for p in self.eq_in.get(y, ()) if self.direct(p, y) >= self.threshold)
        for x in ancestors:
            if x not in found and self.holds(x, v):
                found[x] = ("holds", x, v)
        return sorted(found.items())

    def path(self, a: str, b: str) -> list[tuple] | None:
        """Edges of a shortest P7 path from a to b, or None."""
        if a == b:
            return []
        parent: dict[str, tuple[str, tuple]] = {a: ("", ())}
        queue = deque([a])
        while queue:
            v = queue.popleft()
            for w, edge in self.neighbours(v):
                if w in parent:
                    continue
                parent[w] = (v, edge)
                if w == b:
                    edges = []
                    while w != a:
                        v2, e2 = parent[w]
                        edges.append(e2)
                        w = v2
                    return edges[::-1]
                queue.append(w)
        return None

    def _pair_phrase(self, u: str, c: str) -> tuple[str, list[_Rec]]:
        recs = self.eq_out[u][c]
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

    def explain_path(self, a: str, b: str) -> tuple[list[str], list[_Rec]] | None:
        edges = self.path(a, b)
        if edges is None:
            return None
        phrases: list[str] = []
        used: list[_Rec] = []
        for edge in edges:
            if edge[0] == "rec":
                phrases.append(_plain(edge[1]))
                used.append(edge[1])
            else:
                p, r = self.explain_holding(edge[1], edge[2])
                phrases.extend(p)
                used.extend(r)
        return phrases, used


def _when(on: dt.date | None) -> str:
    return f"on {on}" if on is not None else "when every non-exempt record counts whatever its dates"


def _related_text(a: str, b: str, on: dt.date | None, phrases: list[str]) -> str:
    return f"{a} and {b} are related {_when(on)} (P7): " + "; ".join(phrases) + "."


class _DateContext:
    """Every record of the current set, and the components of those active on one date (or on=None)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, on: dt.date | None, threshold: Decimal,
                 records: pl.DataFrame | None = None):
        self.on = on
        self.threshold = Decimal(threshold)
        self.records = records if records is not None else _all_records(con)
        active = self.records.filter(~pl.col("exempt"))
        if on is not None:
            active = active.filter(
                (pl.col("valid_from").is_null() | (pl.col("valid_from") <= on))
                & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= on))
            )
        self.active = active
        self.label: dict[str, str] = {}
        if active.height:
            frame = active.select(
                "a_id", "b_id", (pl.col("relation") == "equity").alias("is_equity"),
                (pl.col("share").fill_null(0) * 10**10).cast(pl.Int64).alias("share"),
                pl.lit(0).alias("vf"), pl.lit(0).alias("vt"),
            )
            enc = _encode(frame)
            edges = p7_edges(enc.eq, enc.ne, 0, 0, share_units(self.threshold))
            lab = components(enc.parties.len(), edges["u"].to_numpy(), edges["v"].to_numpy())
            self.label = dict(zip(enc.parties.to_list(), enc.parties.gather(lab).to_list()))

    def group(self, party: str) -> str:
        return self.label.get(party, party)

    def members(self, group: str) -> set[str]:
        return {p for p, g in self.label.items() if g == group}

    def explain(self, a: str, b: str) -> RelationExplanation:
        if a != b and self.group(a) == self.group(b):
            members = self.members(self.group(a))
            recs = [r for r in _recs(self.active) if r.a in members and r.b in members]
            found = _LocalGraph(recs, self.threshold).explain_path(a, b)
            if found is None:  # pragma: no cover - the engine and the local graph disagree: a bug
                raise AssertionError(f"{a} and {b} share a group but no path was found")
            phrases, used = found
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
        members = self.members(self.group(r.a)) | {r.a, r.b}
        recs = [x for x in _recs(self.active) if x.a in members and x.relation == "equity"]
        graph = _LocalGraph(recs, self.threshold)
        eff = sum((d for _, d in graph.contributions(r.a, r.b)), Decimal(0))
        return "below threshold", f"effective holding {pct(eff)} < {pct(self.threshold)} (P6)"

    def _nearest_chain(self, a: str, b: str) -> list[_Rec] | None:
        """Records on a path a..b over ALL records (exempt and inactive too) that crosses the fewest
        records that do not count; ties broken by fewest records, then by record id."""
        graph = nx.Graph()
        for r in _recs(self.records):
            counts = r.active(self.on) and self.group(r.a) == self.group(r.b)
            weight = 1 if counts else 1000
            old = graph.get_edge_data(r.a, r.b)
            if old is None or (weight, r.record_id) < (old["weight"], old["rec"].record_id):
                graph.add_edge(r.a, r.b, weight=weight, rec=r)
        if a not in graph or b not in graph:
            return None
        try:
            nodes = nx.dijkstra_path(graph, a, b, weight="weight")
        except nx.NetworkXNoPath:
            return None
        return [graph.edges[u, v]["rec"] for u, v in zip(nodes, nodes[1:])]


def _all_records(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return _frame(
        con,
        "SELECT record_id, row_number, a_id, b_id, relation, share, valid_from, valid_to, exempt "
        "FROM affiliations ORDER BY record_id",
    )


def _recs(frame: pl.DataFrame) -> list[_Rec]:
    return [
        _Rec(
            int(row["record_id"]), int(row["row_number"]), row["a_id"], row["b_id"], row["relation"],
            None if row["share"] is None else Decimal(row["share"]).normalize(),
            row["valid_from"], row["valid_to"], bool(row["exempt"]),
        )
        for row in frame.iter_rows(named=True)
    ]


def explain_relation(
    con: duckdb.DuckDBPyConnection, a_id: str, b_id: str, *, on: dt.date | None, equity_threshold: Decimal
) -> RelationExplanation:
    """Whether a and b are related on ``on`` (P8 trade-date graph) and the path of records that makes them
    so, or why the nearest records do not qualify. on=None: every non-exempt record, dates ignored."""
    return _DateContext(con, on, equity_threshold).explain(a_id, b_id)


def explain_pairs(con: duckdb.DuckDBPyConnection, pairs: pl.DataFrame, *, equity_threshold: Decimal) -> pl.DataFrame:
    """``pairs`` (a_id, b_id, on_date) with a column ``path``: the explanation text of each pair.

    Related pairs found in ``affiliate_day_groups`` (built for the current affiliation set) are explained
    inside their day group only: one small graph per (group, date). Others fall back to a full
    ``explain_relation`` context, built once per distinct date.
    """
    threshold = Decimal(equity_threshold)
    distinct = pairs.select("a_id", "b_id", pl.col("on_date").cast(pl.Date)).unique()
    texts: dict[tuple[str, str, dt.date], str] = {}
    load_id = current_affiliation_load(con)
    if distinct.height and load_id is not None:
        con.register("_explain_pairs", distinct)
        try:
            keyed = _frame(
                con,
                """
                SELECT p.a_id, p.b_id, p.on_date, ga.group_id
                FROM _explain_pairs p
                JOIN affiliate_day_groups ga ON ga.party_id = p.a_id AND ga.year = year(p.on_date)
                     AND p.on_date BETWEEN ga.day_from AND ga.day_to AND ga.affiliation_load_id = $load
                JOIN affiliate_day_groups gb ON gb.party_id = p.b_id AND gb.year = year(p.on_date)
                     AND p.on_date BETWEEN gb.day_from AND gb.day_to AND gb.affiliation_load_id = $load
                WHERE ga.group_id = gb.group_id AND p.a_id <> p.b_id
                """,
                {"load": load_id},
            )
            con.register("_explain_keys", keyed.select("group_id", "on_date").unique())
            members = _frame(
                con,
                """
                SELECT k.group_id, k.on_date, m.party_id
                FROM _explain_keys k JOIN affiliate_day_groups m ON m.group_id = k.group_id
                     AND m.year = year(k.on_date) AND k.on_date BETWEEN m.day_from AND m.day_to
                     AND m.affiliation_load_id = $load
                """,
                {"load": load_id},
            )
            con.register("_explain_members", members)
            records = _frame(
                con,
                """
                SELECT ma.group_id, ma.on_date, r.record_id, r.row_number, r.a_id, r.b_id, r.relation, r.share,
                       r.valid_from, r.valid_to, r.exempt
                FROM affiliations r
                JOIN _explain_members ma ON ma.party_id = r.a_id
                JOIN _explain_members mb ON mb.party_id = r.b_id AND mb.group_id = ma.group_id
                     AND mb.on_date = ma.on_date
                WHERE NOT r.exempt AND coalesce(r.valid_from, ma.on_date) <= ma.on_date
                      AND coalesce(r.valid_to, ma.on_date) >= ma.on_date
                ORDER BY r.record_id
                """,
            )
        finally:
            for name in ("_explain_pairs", "_explain_keys", "_explain_members"):
                try:
                    con.unregister(name)
                except Exception:  # noqa: BLE001 - not registered when an earlier step failed
                    pass
        by_key: dict[tuple[str, dt.date], list[_Rec]] = defaultdict(list)
        for (group, on), part in records.group_by("group_id", "on_date"):
            by_key[(group, on)] = _recs(part)
        for (a, b, on, group) in keyed.iter_rows():
            found = _LocalGraph(by_key.get((group, on), []), threshold).explain_path(a, b)
            if found is not None:
                texts[(a, b, on)] = _related_text(a, b, on, found[0])
    missing = [k for k in distinct.iter_rows() if k not in texts]
    if missing:
        everything = _all_records(con)
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
