"""The records behind an affiliate verdict, in words: P6 holdings and P7 edges explained from records.

``_LocalGraph`` indexes a small set of records and explains why two parties are adjacent in the P7 graph
(an outright record, a direct share, or the pass-through sum with its chains). Used by
``settlement.affiliates.explain``. Imports nothing of ours but the store helpers' conventions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import polars as pl

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


def _all_records(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        "SELECT record_id, row_number, a_id, b_id, relation, share, valid_from, valid_to, exempt "
        "FROM affiliations ORDER BY record_id"
    ).pl()


def _recs(frame: pl.DataFrame) -> list[_Rec]:
    cols = [frame[c].to_list() for c in
            ("record_id", "row_number", "a_id", "b_id", "relation", "share", "valid_from", "valid_to", "exempt")]
    return [
        _Rec(int(rid), int(row), a, b, rel, None if share is None else Decimal(share).normalize(), vf, vt, bool(ex))
        for rid, row, a, b, rel, share, vf, vt, ex in zip(*cols)
    ]
