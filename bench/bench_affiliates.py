"""Benchmark of affiliate resolution (issue 3): a year's groups and per-date pair resolution.

    .venv/bin/python bench/bench_affiliates.py --parties 100000 --records 200000 --pairs 10000000
    .venv/bin/python bench/bench_affiliates.py --parties 1000000 --records 2000000 --pairs 10000000

For each size: generates an affiliation set (5% of records dated, 1% exempt) into a fresh store, then runs,
each stage in its own child process so that its peak RSS is its own:
  - baseline_scan: DuckDB's bare GROUP BY (a_id, b_id) sum(share) over the year's records;
  - build: ``build_year_groups`` for 2024 (year graph + trade-date graph, both tables written);
  - pairs_baseline: 10M (buyer, owner, date) pairs joined to ``affiliate_groups`` by party only (a plain
    equi-join lookup, the cheapest conceivable resolution);
  - pairs_dated: the same 10M pairs resolved on their dates against ``affiliate_day_groups`` (range join),
    counting the related pairs.
Prints time, peak RSS and ratios. Shapes: ``groups`` (corporate groups: a tree of >=25% stakes under
one or two persons per group, weak <20% cross stakes, a few cross-group declared ties, family between
persons) and ``generate`` (the records of ``settle generate``: Zipf holders, random targets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settlement.core import store  # noqa: E402
from settlement.tools.credit_codes import credit_codes  # noqa: E402

YEAR = 2024
WINDOW = (dt.date(2023, 5, 8), dt.date(2026, 5, 8))
THRESHOLD = Decimal("0.25")


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype("datetime64[D]")).cast(pl.Date)


def groups_shape(n_parties: int, n_records: int, seed: int) -> pl.DataFrame:
    """Corporate groups: realistic district shape (most groups 1-3 companies, a tail of large ones)."""
    rng = np.random.default_rng(seed)
    n_persons = n_parties // 10
    n_comp = n_parties - n_persons
    sizes = np.minimum(rng.zipf(1.8, size=n_comp), 3000)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n_comp) + 1]
    sizes[-1] -= sizes.sum() - n_comp
    sizes = sizes[sizes > 0]
    group = np.repeat(np.arange(len(sizes)), sizes)
    start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    pos = np.arange(n_comp) - start
    child = np.flatnonzero(pos > 0)
    parent = start[child] + np.floor(rng.random(child.size) * pos[child]).astype(np.int64)
    roots = np.flatnonzero(pos == 0)
    # Persons are node ids n_comp .. n_parties-1.
    # One person owns the top of a group (the first n_persons groups; the rest have no recorded owner).
    roots = roots[rng.permutation(roots.size)[: min(roots.size, n_persons)]]
    root_owner = n_comp + rng.permutation(n_persons)[: roots.size]
    a = [parent, root_owner]
    b = [child, roots]
    share = [rng.uniform(0.3, 0.7, child.size), rng.uniform(0.3, 1.0, roots.size)]
    rel = [np.full(child.size, "equity"), np.full(roots.size, "equity")]
    rest = max(0, n_records - child.size - roots.size)
    n_family = rest // 50
    n_declared = rest // 200
    n_control = rest // 20
    n_weak = rest - n_family - n_declared - n_control
    declared_a = rng.integers(0, n_comp, n_declared)  # declared ties: a member and the top of its group
    holder_zipf = np.minimum(rng.zipf(2.0, size=n_weak) - 1, n_comp - 1)
    a += [rng.permutation(n_comp)[holder_zipf], n_comp + rng.integers(0, n_persons, n_family),
          declared_a, start[child][: n_control] if n_control <= child.size else parent]
    b += [rng.integers(0, n_comp, n_weak), n_comp + rng.integers(0, n_persons, n_family),
          start[declared_a], child[: n_control] if n_control <= child.size else child]
    share += [rng.uniform(0.005, 0.15, n_weak), np.zeros(n_family), np.zeros(n_declared),
              np.zeros(min(n_control, child.size))]
    rel += [np.full(n_weak, "equity"), np.full(n_family, "family"), np.full(n_declared, "declared"),
            np.full(min(n_control, child.size), "control")]
    a, b = np.concatenate(a), np.concatenate(b)
    share, rel = np.concatenate(share), np.concatenate(rel)
    # No self-loops, one record per (a, b, relation) (a fund holds one stake per company).
    _, first = np.unique(np.stack([a, b, (rel == "equity").astype(np.int64)]), axis=1, return_index=True)
    ok = np.zeros(a.size, dtype=bool)
    ok[first] = True
    ok &= a != b
    a, b, share, rel = a[ok], b[ok], share[ok], rel[ok]
    del group
    return _finish(a, b, share, rel, n_comp, n_persons, rng)


def _finish(a, b, share, rel, n_comp, n_persons, rng) -> pl.DataFrame:
    n = a.size
    names = pl.concat([pl.Series(credit_codes(np.arange(n_comp))),
                       pl.Series([f"P:{i:07d}" for i in range(n_persons)], dtype=pl.String)])
    dated = rng.random(n) < 0.05
    day0 = (dt.date(2023, 1, 1) - dt.date(1970, 1, 1)).days
    begin = day0 + rng.integers(0, 3 * 365, size=n)
    length = rng.integers(30, 500, size=n)
    form = rng.integers(0, 3, size=n)
    vf = np.where(dated & (form != 1), begin, -1)
    vt = np.where(dated & (form != 0), begin + length, -1)
    units = np.maximum(np.round(share * 10_000).astype(np.int64), 1)
    return pl.DataFrame(
        {
            "a_id": names.gather(a),
            "b_id": names.gather(b),
            "relation": rel,
            "share_bp": np.where(rel == "equity", units, -1),
            "valid_from": _dates(np.maximum(vf, 0)),
            "has_from": vf >= 0,
            "valid_to": _dates(np.maximum(vt, 0)),
            "has_to": vt >= 0,
            "exempt": rng.random(n) < 0.01,
        }
    ).select(
        "a_id", "b_id", "relation",
        pl.when(pl.col("share_bp") >= 10_000).then(pl.lit("1"))
        .when(pl.col("share_bp") > 0).then(pl.lit("0.") + pl.col("share_bp").cast(pl.String).str.zfill(4))
        .otherwise(None).alias("share"),
        pl.when("has_from").then("valid_from").otherwise(None).alias("valid_from"),
        pl.when("has_to").then("valid_to").otherwise(None).alias("valid_to"),
        "exempt",
    )


def generate_shape(n_parties: int, n_records: int, seed: int) -> pl.DataFrame:
    """The affiliation records of `settle generate` (issue 2's generator), converted to typed columns."""
    from settlement.tools.generate import GenerateSpec, _build_world, affiliations_frame

    spec = GenerateSpec(out=Path(tempfile.gettempdir()), parties=n_parties, relations=n_records, trades=0, seed=seed)
    rng = np.random.default_rng(seed)
    world = _build_world(spec, rng)
    f = affiliations_frame(spec, world, rng)
    return f.select(
        "a_id", "b_id", "relation",
        "share",
        pl.col("valid_from").str.to_date(),
        pl.col("valid_to").str.to_date(),
        (pl.col("exempt") == "true").alias("exempt"),
    )


def prepare(db: Path, shape: str, n_parties: int, n_records: int, n_pairs: int, seed: int) -> dict:
    frame = (groups_shape if shape == "groups" else generate_shape)(n_parties, n_records, seed)
    store.init(db)
    con = store.open_store(db)
    con.execute("INSERT INTO registry_loads VALUES (1, 'affiliations', 'bench.csv', 'bench', ?, 'bench', now())",
                [frame.height])
    con.register("frame", frame.with_row_index("i"))
    con.execute(
        "INSERT INTO affiliation_versions SELECT 1, i + 1, i + 2, a_id, b_id, relation, "
        "CAST(share AS DECIMAL(12,10)), valid_from, "
        "valid_to, exempt FROM frame"
    )
    con.unregister("frame")
    # Pairs: buyers and owners drawn from the parties named by records (skewed), dates over the year.
    parties = pl.concat([frame["a_id"], frame["b_id"]]).unique()
    parties = parties.filter(~parties.str.starts_with("P:")).sort()
    rng = np.random.default_rng(seed + 1)
    m = parties.len()
    buyer = np.minimum(rng.zipf(1.3, size=n_pairs) - 1, m - 1)
    owner = np.minimum(rng.zipf(1.1, size=n_pairs) - 1, m - 1)
    perm = rng.permutation(m)
    day0 = (dt.date(YEAR, 1, 1) - dt.date(1970, 1, 1)).days
    pairs = pl.DataFrame(
        {
            "buyer_id": parties.gather(perm[buyer]),
            "owner_id": parties.gather(perm[::-1][owner]),
            "local_date": _dates(day0 + rng.integers(0, 366, size=n_pairs)),
        }
    )
    con.register("pairs", pairs)
    con.execute("CREATE TABLE bench_pairs AS SELECT * FROM pairs")
    con.unregister("pairs")
    dated = frame.filter(pl.col("valid_from").is_not_null() | pl.col("valid_to").is_not_null()).height
    con.close()
    return {"records": frame.height, "dated": dated, "pairs": n_pairs}


def _peak_rss_mib() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's peak, inherited across fork/exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(stage: str, db: str) -> dict:
    con = store.open_store(db)
    t0 = time.perf_counter()
    out: dict = {}
    if stage == "baseline_scan":
        out["rows"] = con.execute(
            "SELECT count(*) FROM (SELECT a_id, b_id, sum(share) FROM affiliations WHERE NOT exempt "
            "GROUP BY a_id, b_id)"
        ).fetchall()[0][0]
    elif stage == "build":
        from settlement.affiliates.groups import build_year_groups

        build_year_groups(con, YEAR, equity_threshold=THRESHOLD, window_start=WINDOW[0], window_end=WINDOW[1])
        out["year_rows"], out["year_groups"] = con.execute(
            "SELECT count(*), count(DISTINCT group_id) FROM affiliate_groups WHERE year = ?", [YEAR]
        ).fetchall()[0]
        out["day_rows"] = con.execute(
            "SELECT count(*) FROM affiliate_day_groups WHERE year = ?", [YEAR]
        ).fetchall()[0][0]
        out["largest_group"] = con.execute(
            "SELECT max(n) FROM (SELECT count(*) n FROM affiliate_groups WHERE year = ? GROUP BY group_id)", [YEAR]
        ).fetchall()[0][0]
    elif stage == "pairs_baseline":
        # LEFT JOINs + a FILTER: an inner join with "ga.group_id = gb.group_id" in WHERE lets the optimizer
        # join the two group lookups on group_id first (|giant group|^2 rows, spilled to disk for minutes).
        out["related"] = con.execute(
            """SELECT count(*) FILTER (WHERE ga.group_id = gb.group_id) FROM bench_pairs p
               LEFT JOIN affiliate_groups ga ON ga.year = 2024 AND ga.party_id = p.buyer_id
               LEFT JOIN affiliate_groups gb ON gb.year = 2024 AND gb.party_id = p.owner_id"""
        ).fetchall()[0][0]
    elif stage == "pairs_dated":
        out["related"] = con.execute(
            """SELECT count(*) FILTER (WHERE ga.group_id = gb.group_id AND p.buyer_id <> p.owner_id)
               FROM bench_pairs p
               LEFT JOIN affiliate_day_groups ga ON ga.year = 2024 AND ga.party_id = p.buyer_id
                    AND p.local_date BETWEEN ga.day_from AND ga.day_to
               LEFT JOIN affiliate_day_groups gb ON gb.year = 2024 AND gb.party_id = p.owner_id
                    AND p.local_date BETWEEN gb.day_from AND gb.day_to"""
        ).fetchall()[0][0]
    elif stage == "explain_pairs":
        from settlement.affiliates.pairs import explain_pairs

        sample = con.sql(
            """SELECT DISTINCT p.buyer_id AS a_id, p.owner_id AS b_id, p.local_date AS on_date FROM bench_pairs p
               JOIN affiliate_day_groups ga ON ga.year = 2024 AND ga.party_id = p.buyer_id
                    AND p.local_date BETWEEN ga.day_from AND ga.day_to
               LEFT JOIN affiliate_day_groups gb ON gb.year = 2024 AND gb.party_id = p.owner_id
                    AND p.local_date BETWEEN gb.day_from AND gb.day_to
               WHERE ga.group_id = gb.group_id AND p.buyer_id <> p.owner_id
               ORDER BY hash(p.buyer_id, p.owner_id, p.local_date) LIMIT 2000"""
        ).pl()
        t0 = time.perf_counter()  # time the explanations only, not the sampling query
        explained = explain_pairs(con, sample, equity_threshold=THRESHOLD)
        out["pairs"] = explained.height
        out["related_texts"] = explained.filter(pl.col("path").str.contains(" are related on ")).height
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mib"] = _peak_rss_mib()
    con.close()
    return out


def run_stage(stage: str, db: Path) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", stage, "--db", str(db)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parties", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--shape", choices=["groups", "generate"], default="groups")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--stages", default="baseline_scan,build,pairs_baseline,pairs_dated,explain_pairs")
    ap.add_argument("--child")
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.db)))
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        info = prepare(db, args.shape, args.parties, args.records, args.pairs, args.seed)
        print(f"shape={args.shape} parties={args.parties:,} records={info['records']:,} "
              f"dated={info['dated']:,} pairs={info['pairs']:,} (prepared in {time.perf_counter() - t0:.1f} s)")
        results: dict[str, list[dict]] = {}
        for _ in range(args.repeat):
            for stage in args.stages.split(","):
                results.setdefault(stage, []).append(run_stage(stage, db))
        med = {s: statistics.median(r["seconds"] for r in rs) for s, rs in results.items()}
        rss = {s: max(r["peak_rss_mib"] for r in rs) for s, rs in results.items()}
        for stage, rs in results.items():
            extra = {k: v for k, v in rs[-1].items() if k not in ("seconds", "peak_rss_mib")}
            runs = ", ".join(f"{r['seconds']:.2f}" for r in rs)
            print(f"{stage:15s} median {med[stage]:7.2f} s  (runs: {runs})"
                  f"  peak RSS {rss[stage]:7.0f} MiB  {extra}")
        if "build" in med and "baseline_scan" in med:
            print(f"ratio build / baseline_scan      = {med['build'] / med['baseline_scan']:.1f}x")
        if "pairs_dated" in med and "pairs_baseline" in med:
            print(f"ratio pairs_dated / pairs_baseline = {med['pairs_dated'] / med['pairs_baseline']:.2f}x")


if __name__ == "__main__":
    main()
