"""Benchmark of the integrity flags (issue 13), side by side with the settlement run of the same data.

    .venv/bin/python bench/bench_integrity.py --trades 10000000 --parties 100000 --relations 200000

1. ``settle generate`` data of the realistic shape (an honest exchange) with every integrity pattern
   planted ``--fraud-each`` times (``settlement.tools.fraud``), trades as Parquet;
2. registries through ``load_registry``; the generated trades straight into ``trade_rows`` with every local
   date moved into 2024 (``bench_settlement.LOAD_TRADES_SQL``, as the settlement benchmark does); the planted
   trades through ``ingest_file``;
3. measured, each in its own child process (peak RSS from wait4):
   - ``run_first``: ``settle run --year 2024`` (affiliates, clauses, exclusions, ledger, AND the flags);
   - then run 1 is approved (acknowledging its flags) and ``late_refunds.csv`` ingested;
   - ``run_changed``: ``settle run --year 2024`` again (everything recomputed, REFUND_AFTER_APPROVAL can fire);
   - ``flags``: ``compute_flags(con, 2024, run 2)`` alone (its stored flags deleted first), in-process time
     and CPU-seconds, in a transaction rolled back (``--repeats`` times; ``--flags-only --work DIR`` times
     only this step on a store the script settled before);
4. printed: medians, the flags' share of a run, flags per code, planted patterns found / missed, and
   flags that match no plant per 1,000 qualifying datasets (clean data must stay under 1).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_settlement import LOAD_TRADES_SQL, YEAR, child, size_arguments, work_folder  # noqa: E402

from settlement.core import store  # noqa: E402
from settlement.inputs import registry  # noqa: E402
from settlement.inputs.ingest import ingest_file  # noqa: E402
from settlement.tools.generate import GenerateSpec, generate  # noqa: E402

CHILD_FLAGS = """
import sys, time, json, resource
sys.path.insert(0, {root!r})
from settlement.core import store
from settlement.core.params import load_params
from settlement.integrity.flags import compute_flags
con = store.open_store({db!r})
params = load_params()
con.execute("BEGIN TRANSACTION")
con.execute("DELETE FROM integrity_flags WHERE run_id = {run_id}")  # recomputed below, rolled back after
t0, c0 = time.perf_counter(), sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
n = compute_flags(con, {year}, {run_id}, params=params)
seconds, cpu = time.perf_counter() - t0, sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - c0
codes = dict(con.execute("SELECT code, count(*) FROM integrity_flags WHERE run_id = {run_id} GROUP BY code").fetchall())
con.execute("ROLLBACK")
print(json.dumps({{"seconds": seconds, "cpu": cpu, "flags": n, "codes": codes}}))
"""


def prepare(work: Path, args) -> tuple[Path, Path]:
    data = work / "data"
    t0 = time.perf_counter()
    gen = generate(GenerateSpec(out=data, parties=args.parties, relations=args.relations, trades=args.trades,
                                fmt="parquet", shape="realistic", fraud_each=args.fraud_each, seed=args.seed))
    print(f"generate: {gen.rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    db = work / "bench.duckdb"
    store.init(db)
    con = store.open_store(db)
    for kind in ("platforms", "datasets", "affiliations", "prior_awards"):
        report = registry.load_registry(con, kind, gen.registry_files[kind], loaded_by="bench")
        if report.status != "loaded":
            raise SystemExit(f"registry {kind} not loaded: {report.errors_total} errors, first {report.errors[:1]}")
    t0 = time.perf_counter()
    con.execute(
        "INSERT INTO uploads (id, file_name, sha256, bytes, file_format, rows_read, rows_stored, rows_duplicate, "
        "rows_rejected, status, uploaded_by, uploaded_at, accept_valid) VALUES "
        "(nextval('upload_id_seq'), 'bench.parquet', 'bench', 0, 'parquet', ?, ?, 0, 0, 'stored', 'bench', now(), false)",
        [gen.rows, gen.rows])
    assert con.execute("SELECT max(id) FROM uploads").fetchall()[0][0] == 1  # LOAD_TRADES_SQL stores upload 1
    con.execute(LOAD_TRADES_SQL, dict(files=[str(f) for f in gen.trade_files], all_in_year=True, year=YEAR))
    if args.fraud_each:
        if ingest_file(con, data / "fraud_trades.csv", uploaded_by="bench").status != "stored":
            raise SystemExit("fraud_trades.csv not stored")
    print(f"trades stored in {time.perf_counter() - t0:.1f} s", flush=True)
    con.execute("CHECKPOINT")
    con.close()
    keep = work / "plants"
    keep.mkdir(exist_ok=True)
    for name in ("late_refunds.csv", "fraud_plants.csv"):
        if (data / name).exists():
            shutil.copy(data / name, keep / name)
    shutil.rmtree(data)
    return db, keep


def approve_and_refund(db: Path, plants: Path) -> None:
    from settlement.lifecycle.review import approve_run

    con = store.open_store(db)
    try:
        approve_run(con, 1, by="bench reviewer", acknowledge_flags=True)
        if (plants / "late_refunds.csv").exists():
            ingest_file(con, plants / "late_refunds.csv", uploaded_by="bench")
    finally:
        con.close()


def found(db: Path, plants: Path, run_id: int) -> tuple[int, list[dict], int, int]:
    """(plants found, plants missed, flags matching no plant, qualifying datasets) for ``run_id``."""
    con = store.open_store(db, read_only=True)
    try:
        flags = con.execute("SELECT code, dataset_id, parties FROM integrity_flags WHERE run_id = ?", [run_id]).fetchall()
        qualifying = con.execute("SELECT count(*) FROM run_dataset_results WHERE run_id = ? AND qualifies",
                                 [run_id]).fetchall()[0][0]
    finally:
        con.close()
    manifest = []
    if (plants / "fraud_plants.csv").exists():
        with open(plants / "fraud_plants.csv", newline="") as fh:
            manifest = list(csv.DictReader(fh))

    def hit(flag, p) -> bool:
        return (flag[0] == p["code"] and set(p["parties"].split(";")) <= set(flag[2])
                and (not p["dataset_id"] or flag[1] == p["dataset_id"]))

    missed = [p for p in manifest if not any(hit(f, p) for f in flags)]
    unplanned = sum(1 for f in flags if not any(hit(f, p) for p in manifest))
    return len(manifest) - len(missed), missed, unplanned, qualifying


def main() -> None:
    ap = size_arguments(argparse.ArgumentParser())
    ap.add_argument("--fraud-each", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="--work already holds bench.duckdb and plants/ from a "
                                                          "run of this script whose settlement did not start")
    ap.add_argument("--flags-only", action="store_true", help="--work holds a store this script settled (runs 1 "
                                                              "and 2): time the flags of run 2 only")
    args = ap.parse_args()
    work = work_folder(args.work, "bench-integrity-")
    try:
        reuse = args.reuse or args.flags_only
        db, plants = (work / "bench.duckdb", work / "plants") if reuse else prepare(work, args)
        settle = str(ROOT / ".venv" / "bin" / "settle")
        steps: dict[str, list[tuple[float, float]]] = {"run_first": [], "run_changed": [], "flags": []}
        if not args.flags_only:
            wall, rss, _ = child([settle, "run", "--year", str(YEAR), "--db", str(db)])
            steps["run_first"].append((wall, rss))
            approve_and_refund(db, plants)
            wall, rss, _ = child([settle, "run", "--year", str(YEAR), "--db", str(db)])
            steps["run_changed"].append((wall, rss))
        last, cpu = {}, []
        for _ in range(args.repeats):
            wall, rss, out = child([sys.executable, "-c", CHILD_FLAGS.format(root=str(ROOT), db=str(db), year=YEAR,
                                                                             run_id=2)])
            last = json.loads(out.strip().splitlines()[-1])
            steps["flags"].append((last["seconds"], rss))
            cpu.append(last["cpu"])
        print(f"flags CPU-seconds (user + sys of the process during compute_flags): {sorted(cpu)}")
        steps = {k: v for k, v in steps.items() if v}
        hits, missed, unplanned, qualifying = found(db, plants, 2)
        print(f"\nintegrity flags of {YEAR}: {args.trades:,} trades / {args.parties:,} parties / {args.relations:,} "
              f"records, realistic shape, {args.fraud_each} plant(s) per code")
        print(f"{'step':<12} {'median s':>9} {'runs':>5} {'peak RSS MiB':>13}")
        for step, vals in steps.items():
            print(f"{step:<12} {statistics.median(s for s, _ in vals):>9.2f} {len(vals):>5} "
                  f"{max(r for _, r in vals):>13.0f}")
        if "run_changed" in steps:
            run_s = statistics.median(s for s, _ in steps["run_changed"])
            flags_s = statistics.median(s for s, _ in steps["flags"])
            print(f"flags / run_changed: {flags_s / run_s:.2f} (flags in-process; runs are whole `settle run` "
                  "processes)")
        print(f"flags per code: {dict(sorted(Counter(last['codes']).items()))}")
        print(f"planted patterns found: {hits} of {hits + len(missed)}; missed: {[m['code'] for m in missed]}")
        print(f"flags matching no plant: {unplanned} for {qualifying:,} qualifying datasets "
              f"({1000 * unplanned / max(qualifying, 1):.2f} per 1,000)")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
