"""Benchmark of a settlement run (issue 4): `settle run --year 2024` on N trades / M parties / K records.

    .venv/bin/python bench/bench_settlement.py --trades 10000000 --parties 100000 --relations 200000

1. ``settlement.tools.generate`` writes the registries and Parquet trade files (Zipf skew, ~2 % refunds, dated and
   exempt affiliation records) into a work folder;
2. the registries are loaded with ``settlement.inputs.registry.load_registry``; the trades are put straight into
   ``trade_rows`` with one DuckDB INSERT ... SELECT (this benchmark measures settlement, not ingest, which has
   its own). With ``--all-in-year`` (default) every trade's local date is moved into 2024 (same month and
   day), so the settled year really holds all N trades;
3. each measured step runs in its own child process (its peak RSS is its own, ru_maxrss of the child):
   - ``baseline``: DuckDB's bare ``SELECT dataset_id, sum(amount) FROM trades WHERE kind = 'sale' AND
     year(local_date) = 2024 GROUP BY dataset_id`` over the same trades;
   - ``run_first``: ``settle run --year 2024`` on the fresh store (affiliate groups, clauses 6 and 7, P12
     exclusions of every trade, explanations, ledger accruals);
   - ``run_again``: the same command again (same work, appends nothing);
   repeated ``--repeats`` times (baseline and run_again); medians and ratios to the baseline are printed.
4. with ``--backends duckdb,spark`` (issue 14) the first run is also measured per backend on its own copy of
   the fresh store, in a child that reports wall time, CPU-seconds (its own, plus the Spark JVM's from
   /proc) and peak RSS (its own VmHWM, plus the JVM's): ``run_<backend>``; the Spark child starts its
   session and exports the lake first (``spark_session``, ``lake_export``: reported, not in the run time).

``--shape default|realistic``: the generator's shape (default: one giant affiliate group, the stress case;
realistic: many small corporate groups, settlement.tools.generate).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settlement.inputs import registry

from settlement.core import store  # noqa: E402
from settlement.tools.generate import GenerateSpec, generate  # noqa: E402

YEAR = 2024

LOAD_TRADES_SQL = """
INSERT INTO trade_rows
WITH parsed AS (
    SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id,
           CAST(CASE WHEN traded_at LIKE '%Z' OR traded_at LIKE '%+08:00' THEN traded_at
                     ELSE traded_at || '+08:00' END AS TIMESTAMPTZ) AS ts,
           CAST(amount AS DECIMAL(18,2)) AS amount, coalesce(kind, 'sale') AS kind, ref_trade_id,
           row_number() OVER () + 1 AS rn
    FROM read_parquet($files)
), local AS (
    SELECT *, CAST(timezone('Asia/Shanghai', ts) AS DATE) AS ld FROM parsed
), moved AS (
    SELECT *, CASE WHEN $all_in_year THEN make_date($year, month(ld), least(day(ld), 28 + (month(ld) <> 2)::INT * 3))
                   ELSE ld END AS ld2
    FROM local
)
SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id,
       ts + to_days(CAST(ld2 - ld AS INTEGER)) AS traded_at, ld2 AS local_date, amount, 'CNY', kind,
       ref_trade_id, 1 AS upload_id, rn
FROM moved
"""


def prepare(work: Path, trades: int, parties: int, relations: int, all_in_year: bool, shape: str = "default") -> Path:
    data = work / "data"
    t0 = time.perf_counter()
    gen = generate(GenerateSpec(out=data, parties=parties, relations=relations, trades=trades, fmt="parquet",
                                shape=shape))
    print(f"generate: {gen.rows:,} rows ({gen.refunds:,} refunds) in {time.perf_counter() - t0:.1f} s", flush=True)
    db = work / "bench.duckdb"
    store.init(db)
    con = store.open_store(db)
    t0 = time.perf_counter()
    for kind in ("platforms", "datasets", "prior_awards"):
        report = registry.load_registry(con, kind, gen.registry_files[kind], loaded_by="bench")
        if report.status != "loaded":
            raise SystemExit(f"registry {kind} not loaded: {report.errors_total} errors, first {report.errors[:1]}")
    # The generator's equity shares may sum above 100 % into one company, which load_registry rightly
    # rejects (issue 3 validation); settlement does not care, so the records go straight into the table.
    for statement in LOAD_AFFILIATIONS_SQL.split(";")[:2]:
        con.execute(statement, dict(file=str(gen.registry_files["affiliations"])))
    print(f"registries loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    con.execute(
        "INSERT INTO uploads (id, file_name, sha256, bytes, file_format, rows_read, rows_stored, rows_duplicate, "
        "rows_rejected, status, uploaded_by, uploaded_at, accept_valid) VALUES "
        "(1, 'bench.parquet', 'bench', 0, 'parquet', ?, ?, 0, 0, 'stored', 'bench', now(), false)",
        [gen.rows, gen.rows],
    )
    con.execute(LOAD_TRADES_SQL, dict(files=[str(f) for f in gen.trade_files], all_in_year=all_in_year, year=YEAR))
    n, in_year = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE year(local_date) = {YEAR}) FROM trade_rows").fetchall()[0]
    print(f"trades stored: {n:,} ({in_year:,} in {YEAR}) in {time.perf_counter() - t0:.1f} s", flush=True)
    con.execute("CHECKPOINT")
    con.close()
    shutil.rmtree(data)
    return db


LOAD_AFFILIATIONS_SQL = """
INSERT INTO registry_loads
SELECT (SELECT coalesce(max(load_id), 0) + 1 FROM registry_loads), 'affiliations', 'affiliations.csv', 'bench',
       (SELECT count(*) FROM read_csv($file, all_varchar = true)), 'bench', now();
INSERT INTO affiliation_versions
SELECT (SELECT max(load_id) FROM registry_loads), row_number() OVER (), row_number() OVER () + 1,
       a_id, b_id, relation, CAST(nullif(share, '') AS DECIMAL(12,10)), CAST(nullif(valid_from, '') AS DATE),
       CAST(nullif(valid_to, '') AS DATE), coalesce(exempt = 'true', false)
FROM read_csv($file, all_varchar = true);
"""


CHILD_BASELINE = """
import sys, time, json
sys.path.insert(0, {root!r})
from settlement.core import store
con = store.open_store({db!r})
t0 = time.perf_counter()
rows = con.execute("SELECT dataset_id, sum(amount) FROM trades WHERE kind = 'sale' AND year(local_date) = {year} "
                   "GROUP BY dataset_id").fetchall()
print(json.dumps({{"seconds": time.perf_counter() - t0, "groups": len(rows)}}))
"""


CHILD_BACKEND = """
import sys, time, json, os, resource
sys.path.insert(0, {root!r})
os.environ["SETTLE_BACKEND"] = {backend!r}
from settlement.core import store
from settlement.core.params import load_params
from settlement.run import run_settlement
from settlement import backends
con = store.open_store({db!r})
facts = {{}}
t0 = time.perf_counter()
backend = backends.from_env(con)
facts["spark_session"] = time.perf_counter() - t0
if backend.name == "spark":
    from settlement.backends import lake
    t0 = time.perf_counter()
    lake.export_lake(con, backend.lake)
    facts["lake_export"] = time.perf_counter() - t0
t0 = time.perf_counter()
result = run_settlement(con, {year}, params=load_params(), started_by="bench", backend=backend)
facts["run"] = time.perf_counter() - t0
facts["entries"] = len(result.appended)
jvm_cpu, jvm_hwm = 0.0, 0
if backend.name == "spark" and getattr(backend.spark.sparkContext._gateway, "proc", None) is not None:
    pid = backend.spark.sparkContext._gateway.proc.pid
    stat = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
    jvm_cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    jvm_hwm = next(int(l.split()[1]) for l in open(f"/proc/{{pid}}/status") if l.startswith("VmHWM"))
me = resource.getrusage(resource.RUSAGE_SELF)
facts["cpu"] = me.ru_utime + me.ru_stime + jvm_cpu
facts["rss_mib"] = (me.ru_maxrss + jvm_hwm) / 1024
print(json.dumps(facts))
"""


VIEW_MEMORY_LIMIT = "8GB"  # the store's default (2GB) is too little to derive a whole 2M-trade run in the view
CHILD_VIEW = """
import sys, time, json
sys.path.insert(0, {root!r})
from settlement.core import store
con = store.open_store({db!r}, read_only=True, memory_limit={limit!r})
t0 = time.perf_counter()
try:
    facts = {{"rows": con.execute("SELECT count(*) FROM exclusions WHERE run_id = 1").fetchall()[0][0]}}
except Exception as exc:
    facts = {{"error": type(exc).__name__ + ": " + str(exc).splitlines()[0][:160]}}
facts["seconds"] = time.perf_counter() - t0
print(json.dumps(facts))
"""


def child(args: list[str]) -> tuple[float, float, str]:
    """Run a child process; returns (wall seconds, ITS peak RSS in MiB via wait4, its stdout)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {' '.join(args)}\n{stdout}\n{stderr}")
    return wall, usage.ru_maxrss / 1024, stdout


def late_upload(db: Path, i: int) -> None:
    """A new upload holding one copy of an existing sale under a new trade id (changes the fingerprint)."""
    con = store.open_store(db)
    uid = con.execute("SELECT max(id) + 1 FROM uploads").fetchall()[0][0]
    con.execute(
        "INSERT INTO uploads (id, file_name, sha256, bytes, file_format, rows_read, rows_stored, rows_duplicate, "
        "rows_rejected, status, uploaded_by, uploaded_at, accept_valid) VALUES "
        "(?, 'late.csv', ?, 0, 'csv', 1, 1, 0, 0, 'stored', 'bench', now(), false)", [uid, f"late-{uid}"])
    con.execute(
        "INSERT INTO trade_rows SELECT 'LATE-' || ?, platform_id, dataset_id, seller_id, buyer_id, traded_at, "
        "local_date, amount, currency, kind, NULL, ?, 2 FROM trade_rows WHERE kind = 'sale' LIMIT 1", [i, uid])
    con.close()


def size_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The generated store's size, the repeats and the working folder (bench_integrity builds the same store)."""
    ap.add_argument("--trades", type=int, default=10_000_000)
    ap.add_argument("--parties", type=int, default=100_000)
    ap.add_argument("--relations", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a new one under $BENCH_TMP)")
    return ap


def work_folder(given: Path | None, prefix: str) -> Path:
    """``--work``, or a new temporary folder (in $BENCH_TMP when set: the store is large)."""
    work = given or Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_TMP")))
    work.mkdir(parents=True, exist_ok=True)
    return work


def main() -> None:
    ap = size_arguments(argparse.ArgumentParser())
    ap.add_argument("--spread-years", action="store_true", help="keep the generator's 2023-2026 dates")
    ap.add_argument("--shape", choices=("default", "realistic"), default="default")
    ap.add_argument("--backends", default="", help="e.g. duckdb,spark: also time a first run per backend")
    ap.add_argument("--keep", action="store_true", help="keep --work; reuse its fresh store next time")
    args = ap.parse_args()
    work = work_folder(args.work, "bench-settle-")
    try:
        db = work / "bench.duckdb"
        if not (args.keep and db.exists()):  # --keep: reuse the store a previous --keep run prepared
            db = prepare(work, args.trades, args.parties, args.relations, not args.spread_years, args.shape)
        record_digests(db)
        if args.keep:
            shutil.copyfile(db, work / "fresh.duckdb")  # the runs below change bench.duckdb
        for name in filter(None, args.backends.split(",")):
            print(backend_run(db, work, name.strip()), flush=True)
        settle = str(ROOT / ".venv" / "bin" / "settle")
        results: dict[str, list[tuple[float, float]]] = {"baseline": [], "run_first": [], "run_again": [],
                                                         "run_changed": []}
        for _ in range(args.repeats):
            wall, rss, out = child([sys.executable, "-c", CHILD_BASELINE.format(root=str(ROOT), db=str(db), year=YEAR)])
            results["baseline"].append((last_json(out)["seconds"], rss))
        wall, rss, out = child([settle, "run", "--year", str(YEAR), "--db", str(db)])
        results["run_first"].append((wall, rss))
        print(out.splitlines()[0] if out else "", flush=True)
        for _ in range(args.repeats):
            wall, rss, out = child([settle, "run", "--year", str(YEAR), "--db", str(db)])
            results["run_again"].append((wall, rss))
        for i in range(args.repeats):  # a late upload of one sale: inputs changed, everything recomputed
            late_upload(db, i)
            wall, rss, out = child([settle, "run", "--year", str(YEAR), "--db", str(db)])
            results["run_changed"].append((wall, rss))
        con = store.open_store(db, read_only=True)
        facts = con.execute(f"""
            SELECT (SELECT coalesce(sum(trades), 0) FROM run_exclusion_counts WHERE run_id = 1),
                   (SELECT count(*) FROM run_dataset_results WHERE run_id = 1 AND qualifies),
                   (SELECT count(*) FROM ledger_entries),
                   (SELECT count(*) FROM affiliate_day_groups WHERE year = {YEAR})
        """).fetchall()[0]
        con.close()
        # the regulator view derives a whole run on demand (migration 0011): at the default 2GB limit that ran
        # out of memory at 2M trades, so it is timed in its own process at VIEW_MEMORY_LIMIT, failures reported
        wall, rss, out = child([sys.executable, "-c", CHILD_VIEW.format(root=str(ROOT), db=str(db),
                                                                        limit=VIEW_MEMORY_LIMIT)])
        view = last_json(out)
        base = statistics.median(s for s, _ in results["baseline"])
        print(f"\nsettle run --year {YEAR}: {args.trades:,} trades / {args.parties:,} parties / {args.relations:,} records")
        print(f"exclusion rows of run 1 (Σ run_exclusion_counts.trades): {facts[0]:,}")
        print(f"SELECT count(*) FROM exclusions WHERE run_id = 1 (own process, memory_limit {VIEW_MEMORY_LIMIT}): "
              + (f"{view['rows']:,} rows derived in {view['seconds']:.2f} s, peak RSS {rss:.0f} MiB"
                 if "rows" in view else f"failed after {view['seconds']:.2f} s: {view['error']}"))
        print(f"qualifying datasets: {facts[1]:,}; ledger entries: {facts[2]:,}; "
              f"day-group rows: {facts[3]:,}")
        print(f"{'step':<10} {'median s':>9} {'runs':>5} {'peak RSS MiB':>13} {'ratio':>7}")
        for step, vals in results.items():
            med = statistics.median(s for s, _ in vals)
            print(f"{step:<10} {med:>9.2f} {len(vals):>5} {max(r for _, r in vals):>13.0f} {med / base:>7.1f}")
        print("(baseline = DuckDB's bare SELECT dataset_id, sum(amount) ... GROUP BY dataset_id over the same trades, "
              "in-process time; run times are whole `settle run` processes incl. interpreter start; peak RSS per "
              "child process from wait4)")
    finally:
        if args.keep and (work / "fresh.duckdb").exists():
            os.replace(work / "fresh.duckdb", work / "bench.duckdb")
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def last_json(out: str) -> dict:
    """The JSON object a child printed last (DuckDB may print a progress bar on the same stdout)."""
    return json.loads(out[out.rindex('{"'):].splitlines()[0])


def record_digests(db: Path) -> None:
    """Issue 15: ingest records each upload's row digests; the trades here bypass ingest, so record them now
    (a first run would otherwise backfill them inside the measured run)."""
    from settlement.inputs import digests

    con = store.open_store(db, memory_limit="8GB")
    t0 = time.perf_counter()
    n = digests.backfill(con)
    con.execute("CHECKPOINT")
    con.close()
    print(f"row digests recorded for {n} upload(s)/load(s) in {time.perf_counter() - t0:.1f} s", flush=True)


def backend_run(db: Path, work: Path, backend: str) -> str:
    """A first run of YEAR on ``backend`` over its own copy of the fresh store: one line of facts."""
    copy = work / f"{backend}.duckdb"
    shutil.copyfile(db, copy)
    wall, rss, out = child([sys.executable, "-c", CHILD_BACKEND.format(root=str(ROOT), db=str(copy), year=YEAR,
                                                                       backend=backend)])
    facts = last_json(out)
    copy.unlink()
    shutil.rmtree(work / f"{backend}.duckdb.lake", ignore_errors=True)
    extra = (f"; session {facts['spark_session']:.1f} s, lake export {facts['lake_export']:.1f} s"
             if backend == "spark" else "")
    return (f"run_{backend}: run {facts['run']:.2f} s, CPU {facts['cpu']:.1f} s (process + JVM), peak RSS "
            f"{facts['rss_mib']:.0f} MiB (process + JVM), {facts['entries']} entries; child wall {wall:.1f} s{extra}")


if __name__ == "__main__":
    main()
