"""CALLER_RING: directed cycles of length 3..``max_length`` in the owner-group → caller-group graph of the
year (edges from the run's counted callers of qualifying datasets; cycles of length 2 are RECIPROCAL_CALLERS).

Only groups that are both an owner group and a caller group can lie on a cycle, so the graph is cut to
them before networkx enumerates cycles (``simple_cycles`` with ``length_bound``); at most ``max_rings``
rings are kept. Returns the flags as a polars frame with the columns of ``context.FLAG_COLUMNS``.
Imports ``settlement.core`` only (through ``context``).
"""

from __future__ import annotations

import json

import duckdb
import networkx as nx
import polars as pl

from settlement.integrity.callers import caller_edges_sql
from settlement.integrity.context import FlagContext

EV_PAIR = pl.Struct({"d": pl.String, "b": pl.String})
SCHEMA = {"code": pl.String, "dataset_id": pl.String, "platform_id": pl.String, "parties": pl.List(pl.String),
          "evidence": pl.List(pl.String), "ev_pairs": pl.List(EV_PAIR), "figures": pl.String, "detail": pl.String}


def caller_rings(con: duckdb.DuckDBPyConnection, ctx: FlagContext) -> pl.DataFrame:
    """One flag per ring (see module docstring)."""
    max_len = int(ctx.th("CALLER_RING", "max_length"))
    max_rings = int(ctx.th("CALLER_RING", "max_rings"))
    edges = con.sql(f"""
        WITH e AS ({caller_edges_sql(True)}),
        nodes AS (SELECT src AS g FROM e INTERSECT SELECT dst FROM e),
        ring_edges AS (SELECT * FROM e WHERE src IN (SELECT g FROM nodes) AND dst IN (SELECT g FROM nodes)),
        b AS (
            SELECT r.src, r.dst, r.dataset_id, r.owner_id, cb.buyer_id FROM ring_edges r
            JOIN run_caller_buyers cb ON cb.run_id = {ctx.run_id} AND cb.group_counted AND cb.dataset_id = r.dataset_id
                 AND cb.owner_id = r.owner_id AND cb.group_id = r.dst
        )
        SELECT src, dst, list_sort(list_distinct(list(dataset_id))) AS datasets,
               list(DISTINCT struct_pack(d := dataset_id, b := buyer_id)) AS pairs,
               list_distinct(list(owner_id)) AS owners, list_distinct(list(buyer_id)) AS buyers
        FROM b GROUP BY src, dst ORDER BY src, dst""").fetchall()
    if not edges or max_len < 3:
        return pl.DataFrame(schema=SCHEMA)
    graph = nx.DiGraph()
    for src, dst, datasets, pairs, owners, buyers in edges:
        graph.add_edge(src, dst, datasets=datasets, pairs=pairs, parties=set(owners) | set(buyers))
    rows, cut = [], False
    for cycle in nx.simple_cycles(graph, length_bound=max_len):
        if len(cycle) < 3:
            continue
        if len(rows) >= max_rings:
            cut = True
            break
        rows.append(_ring_row(graph, _rotate(cycle), ctx))
    if cut and rows:
        fig = json.loads(rows[-1]["figures"])
        fig["rings_cut_at"] = max_rings
        rows[-1]["figures"] = json.dumps(fig, ensure_ascii=False)
    return pl.DataFrame(rows, schema=SCHEMA)


def _rotate(cycle: list[str]) -> list[str]:
    """The same ring always starts at its smallest group (stable flag keys across runs)."""
    i = cycle.index(min(cycle))
    return cycle[i:] + cycle[:i]


def _ring_row(graph: nx.DiGraph, cycle: list[str], ctx: FlagContext) -> dict:
    hops = list(zip(cycle, cycle[1:] + cycle[:1]))
    parties: set[str] = set()
    pairs: list[dict] = []
    legs = []
    for a, b in hops:
        data = graph.edges[a, b]
        parties |= data["parties"]
        pairs.extend(data["pairs"])
        legs.append({"owner_group": a, "caller_group": b, "datasets": data["datasets"]})
    path = " → ".join(cycle + cycle[:1])
    return {
        "code": "CALLER_RING", "dataset_id": None, "platform_id": None, "parties": sorted(parties),
        "evidence": [], "ev_pairs": pairs,
        "figures": json.dumps({"ring": cycle, "length": len(cycle), "legs": legs}, ensure_ascii=False),
        "detail": f"ring of {len(cycle)} owner groups in {ctx.year}, each a counted caller of a qualifying dataset "
                  f"of the next: {path} (" + "; ".join(f"{a} → {b}: {', '.join(graph.edges[a, b]['datasets'])}"
                                                       for a, b in hops) + ")",
    }
