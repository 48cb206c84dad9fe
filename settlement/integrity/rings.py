"""CALLER_RING: directed cycles of length 3..``max_length`` in the owner-group → caller-group graph of the
year (edges from the run's counted callers of qualifying datasets; cycles of length 2 are RECIPROCAL_CALLERS).

Only groups that are both an owner group and a caller group can lie on a cycle, so the graph is cut to
them before the cycles are enumerated (``ordered_cycles``: each ring once, from its smallest group, in
lexicographic order); the first ``max_rings`` rings are kept, the same ones in every process. Returns the flags as a polars frame with the columns of ``context.FLAG_COLUMNS``.
Imports ``settlement.core`` only (through ``context``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import duckdb
import networkx as nx
import polars as pl

from settlement.integrity.callers import caller_edges_sql
from settlement.integrity.context import FlagContext

SCHEMA = {"code": pl.String, "dataset_id": pl.String, "platform_id": pl.String, "parties": pl.List(pl.String),
          "evidence": pl.List(pl.String), "figures": pl.String, "detail": pl.String, "ring": pl.Int64}
HOPS = {"ring": pl.Int64, "src": pl.String, "dst": pl.String}


def caller_rings(con: duckdb.DuckDBPyConnection, ctx: FlagContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(flags, hops): one flag per ring (see module docstring) without its evidence, column ``ring``
    numbering the rings, and the (ring, src, dst) hops of each. ``ring_flags_sql`` adds the evidence from the
    TEMP table ``ring_edges`` this function leaves (flags drops it): the (dataset, buyer) pairs stay in
    SQL, since with one giant group an edge holds thousands of them, and a thousand rings' worth as Python
    objects cost seconds."""
    max_len = int(ctx.th("CALLER_RING", "max_length"))
    max_rings = int(ctx.th("CALLER_RING", "max_rings"))
    con.execute(f"""
        CREATE TEMP TABLE {ctx.table("ring_edges")} AS
        WITH e AS ({caller_edges_sql(ctx, True)}),
        nodes AS (SELECT src AS g FROM e INTERSECT SELECT dst FROM e),
        ring_edges AS (SELECT * FROM e WHERE src IN (SELECT g FROM nodes) AND dst IN (SELECT g FROM nodes)),
        b AS (
            SELECT r.src, r.dst, r.dataset_id, r.owner_id, cb.buyer_id FROM ring_edges r
            JOIN run_caller_buyers cb ON cb.run_id = {ctx.run_id} AND cb.group_counted AND cb.dataset_id = r.dataset_id
                 AND cb.owner_id = r.owner_id AND cb.group_id = r.dst
        )
        SELECT src, dst, list_sort(list_distinct(list(dataset_id))) AS datasets,
               list(DISTINCT struct_pack(d := dataset_id, b := buyer_id)) AS pairs,
               list_sort(list_distinct(list_concat(list(owner_id), list(buyer_id)))) AS parties
        FROM b GROUP BY src, dst""")
    edges = con.execute(f"SELECT src, dst, datasets, parties FROM {ctx.table('ring_edges')} ORDER BY src, dst").fetchall()
    if not edges or max_len < 3:
        return pl.DataFrame(schema=SCHEMA), pl.DataFrame(schema=HOPS)
    graph = nx.DiGraph()
    for src, dst, datasets, parties in edges:
        graph.add_edge(src, dst, datasets=datasets, parties=parties)
    rows, hops, cut = [], [], False
    for cycle in ordered_cycles(graph, max_len):  # each ring starts at its smallest group: stable flag keys
        if len(rows) >= max_rings:
            cut = True
            break
        ring = len(rows)
        rows.append(_ring_row(graph, cycle, ctx) | {"ring": ring})
        hops.extend((ring, a, b) for a, b in zip(cycle, cycle[1:] + cycle[:1]))
    if cut and rows:
        fig = json.loads(rows[-1]["figures"])
        fig["rings_cut_at"] = max_rings
        rows[-1]["figures"] = json.dumps(fig, ensure_ascii=False)
    return pl.DataFrame(rows, schema=SCHEMA), pl.DataFrame(hops, schema=HOPS, orient="row")


def ordered_cycles(graph: nx.DiGraph, max_len: int) -> Iterator[list[str]]:
    """Every simple cycle of 3..``max_len`` groups once, starting at its smallest group, in lexicographic
    order of its path. Deterministic, so the ``max_rings`` kept are the same in every process (networkx's
    ``simple_cycles`` order follows set iteration, which depends on the string hash seed)."""
    succ = {n: sorted(graph.successors(n)) for n in graph}
    for start in sorted(graph):
        path, on_path, stack = [start], {start}, [iter(succ[start])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:  # every way on from the last group tried: step back
                stack.pop()
                on_path.discard(path.pop())
            elif nxt == start:
                if len(path) >= 3:  # two groups calling each other are RECIPROCAL_CALLERS
                    yield list(path)
            elif nxt > start and nxt not in on_path and len(path) < max_len:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(succ[nxt]))


def ring_flags_sql(ctx: FlagContext) -> str:
    """The flags of the rings (registered frame ``rings``, hops ``ring_hops``) with their evidence resolved here:
    the first ``evidence_limit`` live sales of the year, by date then id, of the ring's (dataset, buyer)
    pairs. Taken per edge first (an edge's pairs are shared by every ring through it), then per ring from
    its hops' firsts: the first N of a union are among the first N of its parts."""
    limit = ctx.evidence_limit
    first = "struct_pack(day := t.local_date, id := t.trade_id)"
    return f"""
WITH edge_first AS (
    SELECT e.src, e.dst, min_by({first}, {first}, {limit}) AS first
    FROM (SELECT src, dst, unnest(pairs) AS p FROM {ctx.table("ring_edges")}) e
    JOIN trades t ON t.dataset_id = e.p.d AND t.buyer_id = e.p.b
    WHERE {ctx.year_sales("t")}
    GROUP BY e.src, e.dst
), ring_first AS (
    SELECT ring, min_by(x.id, x, {limit}) AS ids
    FROM (SELECT h.ring, unnest(f.first) AS x FROM {ctx.table("ring_hops")} h
          JOIN edge_first f ON f.src = h.src AND f.dst = h.dst)
    GROUP BY ring
)
SELECT r.code, r.dataset_id, r.platform_id, r.parties, coalesce(f.ids, []) AS evidence,
       []::STRUCT(d VARCHAR, b VARCHAR)[] AS ev_pairs, r.figures, r.detail
FROM {ctx.table("rings")} r LEFT JOIN ring_first f ON f.ring = r.ring"""


def _ring_row(graph: nx.DiGraph, cycle: list[str], ctx: FlagContext) -> dict:
    hops = list(zip(cycle, cycle[1:] + cycle[:1]))
    parties: set[str] = set()
    legs = []
    for a, b in hops:
        data = graph.edges[a, b]
        parties.update(data["parties"])
        legs.append({"owner_group": a, "caller_group": b, "datasets": data["datasets"]})
    path = " → ".join(cycle + cycle[:1])
    return {
        "code": "CALLER_RING", "dataset_id": None, "platform_id": None, "parties": sorted(parties),
        "evidence": [],
        "figures": json.dumps({"ring": cycle, "length": len(cycle), "legs": legs}, ensure_ascii=False),
        "detail": f"ring of {len(cycle)} owner groups in {ctx.year}, each a counted caller of a qualifying dataset "
                  f"of the next: {path} (" + "; ".join(f"{a} → {b}: {', '.join(graph.edges[a, b]['datasets'])}"
                                                       for a, b in hops) + ")",
    }
