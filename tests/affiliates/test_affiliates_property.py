"""Property test: for random small record sets, the stored year groups (union of the day graphs' edges, P8
amended) and day groups equal a brute-force closure written here straight from P5-P8 (every party, every day, every pair of parties x, c).
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import duckdb

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.core import store
import polars as pl

from settlement.affiliates.explain import explain_relation
from settlement.affiliates.pairs import explain_pairs
from settlement.affiliates.groups import build_year_groups
from tests.support.affiliates import load_set

THRESHOLD = Decimal("0.25")
# A short window makes every in-scope day cheap to brute-force: 2024-01-01 .. 2024-01-12 (P2 parameter).
WINDOW = (dt.date(2024, 1, 1), dt.date(2024, 1, 12))
DAYS = [WINDOW[0] + dt.timedelta(days=i) for i in range(12)]
PARTIES = ["A", "B", "C", "D", "E", "P:1"]
SHARES = ["0.05", "0.1", "0.15", "0.2", "0.24", "0.2499", "0.25", "0.3", "0.5", "1"]
BOUNDS = [None, dt.date(2023, 12, 30)] + DAYS + [dt.date(2024, 1, 14)]


@st.composite
def record(draw, rid: int):
    a = draw(st.sampled_from(PARTIES))
    b = draw(st.sampled_from([p for p in PARTIES if p != a]))
    relation = draw(st.sampled_from(["equity"] * 5 + ["control", "management", "family", "declared"]))
    share = draw(st.sampled_from(SHARES)) if relation == "equity" else None
    vf, vt = draw(st.sampled_from(BOUNDS)), draw(st.sampled_from(BOUNDS))
    if vf is not None and vt is not None and vt < vf:
        vf, vt = vt, vf
    exempt = draw(st.booleans()) and draw(st.booleans())  # ~25% exempt
    return (rid, a, b, relation, share, vf, vt, exempt)


@st.composite
def record_sets(draw):
    n = draw(st.integers(min_value=0, max_value=9))
    return [draw(record(i + 1)) for i in range(n)]


def active_on(r, day: dt.date) -> bool:  # P5
    _, _, _, _, _, vf, vt, exempt = r
    return not exempt and (vf is None or vf <= day) and (vt is None or day <= vt)


def brute_edges(records: list[tuple]) -> list[tuple[str, str]]:
    """P6 + P7 for one set of active records, by definition, over every ordered pair of parties: the edges."""
    parties = sorted({r[1] for r in records} | {r[2] for r in records})
    direct: dict[tuple[str, str], Decimal] = {}
    for _, a, b, rel, share, *_ in records:
        if rel == "equity":
            direct[(a, b)] = direct.get((a, b), Decimal(0)) + Decimal(share)

    def ctrl(x: str) -> set[str]:  # parties other than x reachable by steps with direct >= 25%
        seen, todo = set(), [x]
        while todo:
            y = todo.pop()
            for c in parties:
                if direct.get((y, c), Decimal(0)) >= THRESHOLD and c not in seen:
                    seen.add(c)
                    todo.append(c)
        seen.discard(x)
        return seen

    edges = [(a, b) for _, a, b, rel, *_ in records if rel != "equity"]
    for x in parties:
        holders = {x} | ctrl(x)
        for c in parties:
            if c == x:
                continue
            eff = sum((direct.get((y, c), Decimal(0)) for y in holders if y != c), Decimal(0))
            if eff >= THRESHOLD:
                edges.append((x, c))
    return edges


def components(parties, edges) -> dict[str, str]:
    parent = {p: p for p in parties}

    def find(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the root is always the smallest id
    return {p: find(p) for p in parties}


def brute_groups(records: list[tuple]) -> dict[str, str]:
    """The groups of one day graph (P7 on the records active that day)."""
    return components(sorted({r[1] for r in records} | {r[2] for r in records}), brute_edges(records))


def brute_year_groups(records: list[tuple]) -> dict[str, str]:
    """P8 (amended 2026-11-30): the union of the day graphs' edges over every in-scope day, then components;
    the parties are those of every record active on some in-scope day."""
    year_set = [r for r in records if any(active_on(r, d) for d in DAYS)]
    edges = [e for d in DAYS for e in brute_edges([r for r in records if active_on(r, d)])]
    return components(sorted({r[1] for r in year_set} | {r[2] for r in year_set}), edges)


_STORE: list[duckdb.DuckDBPyConnection] = []


def _store() -> duckdb.DuckDBPyConnection:
    """One in-memory store, migrated once, emptied by each example (migrations are the slow part)."""
    if not _STORE:
        con = duckdb.connect()
        store.migrate(con)
        _STORE.append(con)
    return _STORE[0]


# AFFILIATES_EXAMPLES=2000 for a deeper run by hand; the suite keeps it short.
@settings(max_examples=int(os.environ.get("AFFILIATES_EXAMPLES", "50")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(records=record_sets())
def test_groups_equal_brute_force_closure(records) -> None:
    con = _store()
    con.execute("DELETE FROM affiliation_versions")
    con.execute("DELETE FROM registry_loads")
    load_set(con, records)
    build_year_groups(con, 2024, equity_threshold=THRESHOLD, window_start=WINDOW[0], window_end=WINDOW[1])
    # Year graph (P8, amended): the union of the day graphs' edges.
    expected_year = brute_year_groups(records)
    stored_year = dict(
        con.execute("SELECT party_id, group_id FROM affiliate_groups WHERE year = 2024").fetchall()
    )
    assert stored_year == expected_year
    rows = con.execute(
        "SELECT party_id, day_from, day_to, group_id FROM affiliate_day_groups WHERE year = 2024"
    ).fetchall()
    for day in DAYS:
        expected = brute_groups([r for r in records if active_on(r, day)])
        stored = {p: g for p, f, t, g in rows if f <= day <= t}
        # Every year-graph party has exactly one row per day; parties alone may be omitted by P8's
        # reading "absent = alone", so compare on the parties of the day's records, and the rest alone.
        assert sorted(p for p, f, t, g in rows if f <= day <= t) == sorted(stored)
        assert set(stored) == set(expected_year)
        for p in expected_year:
            assert stored[p] == expected.get(p, p), (day, p)
    # Explanations agree with the day groups: every related pair gets a path, every other pair a refusal.
    parties = sorted(expected_year)
    probe = [(a, b, d) for a in parties for b in parties if a < b for d in (DAYS[0], DAYS[5], DAYS[11])]
    if probe:
        frame = pl.DataFrame(probe, schema={"a_id": pl.String, "b_id": pl.String, "on_date": pl.Date}, orient="row")
        out = explain_pairs(con, frame, equity_threshold=THRESHOLD)
        for a, b, d, text in out.iter_rows():
            stored = {p: g for p, f, t, g in rows if f <= d <= t}
            related = stored[a] == stored[b]
            assert text.startswith(f"{a} and {b} are {'related' if related else 'not related'} on {d}"), text
        for a, b, d in probe[:6]:
            stored = {p: g for p, f, t, g in rows if f <= d <= t}
            assert explain_relation(con, a, b, on=d, equity_threshold=THRESHOLD).related == (stored[a] == stored[b])


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=12),
    edges=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=30),
    s=st.integers(0, 11),
    t=st.integers(0, 11),
)
def test_bidirectional_search_finds_a_shortest_path(n, edges, s, t) -> None:
    import networkx as nx
    import numpy as np
    from scipy.sparse import coo_matrix

    from settlement.affiliates.engine import shortest_path as _shortest_path

    s, t = s % n, t % n
    pairs = [(u % n, v % n) for u, v in edges if u % n != v % n]
    rows = np.array([u for u, v in pairs] + [v for u, v in pairs], dtype=np.int64)
    cols = np.array([v for u, v in pairs] + [u for u, v in pairs], dtype=np.int64)
    csr = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(pairs)
    path = _shortest_path(csr.indptr, csr.indices, s, t)
    if nx.has_path(g, s, t):
        assert path is not None and path[0] == s and path[-1] == t
        assert len(path) - 1 == nx.shortest_path_length(g, s, t)
        assert all(g.has_edge(u, v) for u, v in zip(path, path[1:]))
    else:
        assert path is None
