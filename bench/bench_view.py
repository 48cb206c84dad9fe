"""The regulator view `exclusions` over a whole run: time and peak RSS of a count per reason, for the view
the store holds (migration 0014) and, with --old, for the first text of migration 0011 (issue 14).

    .venv/bin/python bench/bench_view.py STORE [--run N] [--memory-limit 2GB] [--old]

Each variant runs in its own process on the store opened read-only, so each peak RSS is its own. Prints one
line per variant: rows counted, seconds, peak RSS, or the error (an out-of-memory error is a result here).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[1] / "settlement" / "core" / "migrations"
QUERY = "SELECT clause, reason, kind, count(*) FROM {view} WHERE run_id = {run} GROUP BY ALL ORDER BY ALL"


def old_view_sql() -> str:
    text = (MIGRATIONS / "0011_compact_exclusions.sql").read_text(encoding="utf-8")
    start = text.index("CREATE VIEW exclusions AS") + len("CREATE VIEW exclusions AS")
    return text[start:text.index("\n;\nCOMMENT ON VIEW exclusions")]


def child(store: str, run: int, limit: str, variant: str) -> None:
    import duckdb

    con = duckdb.connect(store, read_only=True, config={"memory_limit": limit})
    view = "exclusions"
    if variant == "0011":
        con.execute(f"CREATE TEMP VIEW exclusions_0011 AS {old_view_sql()}")
        view = "temp.exclusions_0011"
    started = time.perf_counter()
    try:
        rows = con.execute(QUERY.format(view=view, run=int(run))).fetchall()
        result = f"{sum(r[3] for r in rows):,} rows in {len(rows)} groups"
    except duckdb.Error as exc:
        result = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{variant:>5}  {time.perf_counter() - started:6.1f} s  peak RSS {rss:,.0f} MiB  {result}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--run", type=int, help="run id (default: the newest)")
    ap.add_argument("--memory-limit", default="2GB")
    ap.add_argument("--old", action="store_true", help="also the view text of migration 0011")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.store, args.run, args.memory_limit, args.child)
        return
    run = args.run
    if run is None:
        import duckdb

        with duckdb.connect(args.store, read_only=True) as con:
            run = con.execute("SELECT max(run_id) FROM exclusion_runs").fetchall()[0][0]
    print(f"store {args.store}, run {run}, memory_limit {args.memory_limit}: {QUERY.format(view='V', run=run)}")
    for variant in (["0014", "0011"] if args.old else ["0014"]):
        subprocess.run([sys.executable, __file__, args.store, "--run", str(run), "--memory-limit", args.memory_limit,
                        "--child", variant], check=True)


if __name__ == "__main__":
    main()
