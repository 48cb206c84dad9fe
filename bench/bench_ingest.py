"""Ingest benchmark (issue 2 "Done when"): `settle ingest` of a generated N-row CSV against DuckDB's bare
`CREATE TABLE t AS SELECT * FROM read_csv(file)` of the same file, measured in the same run.

Each measured load is a separate process (so peak RSS is that load's alone, read from the kernel's
rusage of the child via os.wait4), into a fresh database file, alternating bare / settle, repeated
--repeats times; medians are printed with the ratio settle/bare.
Targets (issue 14): ratio <= 1.5 for a clean plain UTF-8 file (the typed fast path), peak RSS of `settle
ingest` < 4 GiB. --gb18030 adds ingests of the same rows saved as Excel's zh-CN "CSV" (GB18030, Chinese
column names: transcoded, then the full diagnostic path), against the bare load of the UTF-8 file (DuckDB
cannot read GB18030 without an extension). --big adds one ingest of a file larger than 4 GiB (bounded
memory whatever the file size). --stages times the ingest stages in-process, --statements each SQL
statement of one ingest (profile).

    .venv/bin/python bench/bench_ingest.py                       # 10M rows, 3 repeats
    .venv/bin/python bench/bench_ingest.py --rows 1000000 --repeats 1   # quick look
    .venv/bin/python bench/bench_ingest.py --big --big-bytes 4.2GiB      # + the > 4 GiB file
    .venv/bin/python bench/bench_ingest.py --gb18030 --gb-repeats 1       # + the GB18030 file (slow path)
    .venv/bin/python bench/bench_ingest.py --repeats 0 --stages --statements   # profile only

Writes only under --workdir and deletes what it made (files are GBs: check `df -h` first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from settlement.tools.generate import GenerateSpec, generate, parse_size  # noqa: E402

PY = sys.executable
SETTLE = str(Path(PY).with_name("settle"))
GIB = 2**30
TARGET_RATIO = 1.5
TARGET_RSS = 4 * GIB

BARE_SCRIPT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [sys.argv[2]])
print(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
con.close()
"""


@dataclass(frozen=True)
class Measure:
    what: str
    seconds: float
    peak_rss: int  # bytes
    rows: int
    exit_code: int
    cpu: float = 0.0  # user + system CPU seconds of the child (less sensitive to a shared machine than wall)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_measured(what: str, argv: list[str], rows: int, env: dict | None = None) -> Measure:
    """Run argv as a child; wall time and the child's own peak RSS (ru_maxrss, KiB on Linux)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out = proc.stdout.read().decode(errors="replace")
    err = proc.stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        print(f"  {what} exited {code}:\n{out[-2000:]}\n{err[-2000:]}", file=sys.stderr)
    return Measure(what, seconds, usage.ru_maxrss * 1024, rows, code, usage.ru_utime + usage.ru_stime)


def remove_db(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".tmp")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


# Excel zh-CN headers (docs/contract.md): the GB18030 copy is the same rows under these names.
CHINESE_HEADER = {"trade_id": "交易编号", "platform_id": "平台", "dataset_id": "数据集", "seller_id": "卖方",
                  "buyer_id": "买方", "traded_at": "交易时间", "amount": "金额", "currency": "币种", "kind": "类型",
                  "ref_trade_id": "原交易编号"}


def gb18030_copy(csv_path: Path, out: Path) -> Path:
    """The file as Excel's zh-CN "CSV" saves it: Chinese column names, GB18030, CR LF line ends throughout
    (streamed; the generated rows are ASCII with LF ends). A CR LF header over LF rows is not what Excel writes,
    and the engine refuses it as mixed line ends."""
    with csv_path.open("rb") as src, out.open("wb") as dst:
        header = src.readline().decode("utf-8").rstrip("\r\n").split(",")
        dst.write((",".join(CHINESE_HEADER.get(h, h) for h in header) + "\r\n").encode("gb18030"))
        while chunk := src.read(16 * 2**20):
            dst.write(chunk.replace(b"\n", b"\r\n"))
    return out


def bare_load(csv_path: Path, workdir: Path, rows: int) -> Measure:
    db = workdir / "bare.duckdb"
    remove_db(db)
    try:
        return run_measured("bare read_csv", [PY, "-c", BARE_SCRIPT, str(db), str(csv_path)], rows)
    finally:
        remove_db(db)


def settle_ingest(csv_path: Path, workdir: Path, rows: int) -> Measure:
    db = workdir / "settle.duckdb"
    remove_db(db)
    subprocess.run([SETTLE, "init", "--db", str(db)], check=True, capture_output=True)
    try:
        m = run_measured("settle ingest", [SETTLE, "ingest", str(csv_path), "--db", str(db), "--format", "json"], rows)
        return m
    finally:
        remove_db(db)


@contextmanager
def fresh_store(db: Path) -> Iterator:
    """A new empty store at ``db`` for one in-process profile, removed afterwards."""
    from settlement.core import store

    remove_db(db)
    store.init(db)
    con = store.open_store(db)
    try:
        yield con
    finally:
        con.close()
        remove_db(db)


def ingest_stages(csv_path: Path, workdir: Path) -> list[tuple[str, float]]:
    """Profile: seconds spent in each stage that ingest_file reports through its progress callback."""
    from settlement.inputs import ingest

    marks: list[tuple[str, float]] = []
    with fresh_store(workdir / "stages.duckdb") as con:
        ingest.ingest_file(con, csv_path, uploaded_by="bench", progress=lambda s: marks.append((s, time.perf_counter())))
    return [(name, marks[i + 1][1] - t) for i, (name, t) in enumerate(marks[:-1])]


class _TimedConnection:
    """Delegates to a DuckDB connection and times every execute() (profile of the ingest's statements)."""

    def __init__(self, con, log: list[tuple[float, str]]):
        self._con, self._log = con, log

    def execute(self, sql, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            self._log.append((time.perf_counter() - started, " ".join(str(sql).split())[:110]))

    def __getattr__(self, name):
        return getattr(self._con, name)


def ingest_statements(csv_path: Path, workdir: Path, top: int = 12) -> list[tuple[float, str]]:
    """Profile: the slowest SQL statements of one in-process ingest."""
    from settlement.inputs import ingest

    log: list[tuple[float, str]] = []
    with fresh_store(workdir / "statements.duckdb") as con:
        ingest.ingest_file(_TimedConnection(con, log), csv_path, uploaded_by="bench")
    return sorted(log, reverse=True)[:top]


def paired_runs(repeats: int, bare_csv: Path, settle_csv: Path, workdir: Path, rows: int,
                label: str) -> tuple[list[Measure], list[Measure]]:
    """``repeats`` alternating runs of a bare DuckDB read of ``bare_csv`` and `settle ingest` of ``settle_csv``
    (alternating, so a change of the machine's load hits both alike), each pair printed as it ends."""
    bare, settle = [], []
    for i in range(repeats):
        b, s = bare_load(bare_csv, workdir, rows), settle_ingest(settle_csv, workdir, rows)
        bare.append(b)
        settle.append(s)
        print(f"  {label}run {i + 1}: bare {b.seconds:6.1f} s (cpu {b.cpu:.1f}) {fmt_gib(b.peak_rss)} | settle "
              f"{s.seconds:6.1f} s (cpu {s.cpu:.1f}) {fmt_gib(s.peak_rss)} exit {s.exit_code} | ratio "
              f"{s.seconds / b.seconds:.2f} (cpu {s.cpu / b.cpu:.2f})", flush=True)
    return bare, settle


def median(ms: list[Measure], attr: str) -> float:
    return statistics.median(getattr(m, attr) if attr != "rows_per_s" else m.rows_per_s for m in ms)


def fmt_gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parties", type=int, default=100_000)
    ap.add_argument("--relations", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_ingest"))
    ap.add_argument("--big", action="store_true", help="also ingest a file larger than --big-bytes")
    ap.add_argument("--big-bytes", default="4.2GiB")
    ap.add_argument("--gb18030", action="store_true", help="also ingest the rows saved as GB18030 (slow path)")
    ap.add_argument("--gb-repeats", type=int, default=1)
    ap.add_argument("--stages", action="store_true", help="also time each ingest stage in-process (one run)")
    ap.add_argument("--statements", action="store_true", help="also time each SQL statement of one ingest")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"rows": args.rows, "repeats": args.repeats}
    ok = True
    try:
        data = workdir / "data"
        t0 = time.perf_counter()
        gen = generate(GenerateSpec(out=data, parties=args.parties, relations=args.relations, trades=args.rows,
                                    seed=args.seed))
        csv_path = gen.trade_files[0]
        print(f"generated {gen.rows:,} rows, {fmt_gib(gen.trade_bytes)} in {time.perf_counter() - t0:.1f} s "
              f"({gen.rows / gen.seconds / 1e6:.2f} M rows/s): {csv_path}")

        if args.repeats > 0:
            bare, settle = paired_runs(args.repeats, csv_path, csv_path, workdir, gen.rows, "")
            ok &= all(m.exit_code == 0 for m in bare + settle)
            ratio = median(settle, "seconds") / median(bare, "seconds")
            results["bare"] = {k: median(bare, k) for k in ("seconds", "peak_rss", "rows_per_s")}
            results["settle"] = {k: median(settle, k) for k in ("seconds", "peak_rss", "rows_per_s")}
            results["ratio"] = ratio
            results["cpu_ratio"] = median(settle, "cpu") / median(bare, "cpu")
            results["runs"] = [asdict(m) for m in bare + settle]
            print(f"\nmedians of {args.repeats} ({gen.rows:,} rows, {fmt_gib(gen.trade_bytes)}):")
            print(f"  {'':14} {'wall s':>8} {'rows/s':>12} {'peak RSS':>10}")
            for name, ms in (("bare read_csv", bare), ("settle ingest", settle)):
                print(f"  {name:14} {median(ms, 'seconds'):8.1f} {median(ms, 'rows_per_s'):12,.0f} "
                      f"{fmt_gib(median(ms, 'peak_rss')):>10}")
            rss = max(m.peak_rss for m in settle)
            print(f"  cpu seconds: bare {median(bare, 'cpu'):.1f}, settle {median(settle, 'cpu'):.1f}, "
                  f"ratio {results['cpu_ratio']:.2f}")
            print(f"  ratio settle/bare = {ratio:.2f} (target <= {TARGET_RATIO}) "
                  f"{'OK' if ratio <= TARGET_RATIO else 'MISSED'}")
            print(f"  max peak RSS of settle ingest = {fmt_gib(rss)} (target < 4 GiB) {'OK' if rss < TARGET_RSS else 'MISSED'}")
            ok &= ratio <= TARGET_RATIO and rss < TARGET_RSS

        if args.gb18030:
            gb_path = gb18030_copy(csv_path, data / "trades_gb18030.csv")
            # bare DuckDB reads the UTF-8 file (it cannot read GB18030); settle transcodes first
            bare_gb, settle_gb = paired_runs(args.gb_repeats, csv_path, gb_path, workdir, gen.rows, "GB18030 ")
            ok &= all(m.exit_code == 0 for m in settle_gb)
            results["gb18030"] = {"bare": median(bare_gb, "seconds"), "settle": median(settle_gb, "seconds"),
                                  "peak_rss": max(m.peak_rss for m in settle_gb),
                                  "ratio": median(settle_gb, "seconds") / median(bare_gb, "seconds")}
            print(f"  GB18030 medians: bare {results['gb18030']['bare']:.1f} s, settle "
                  f"{results['gb18030']['settle']:.1f} s, ratio {results['gb18030']['ratio']:.2f}, max peak RSS "
                  f"{fmt_gib(results['gb18030']['peak_rss'])}")
            gb_path.unlink(missing_ok=True)
        if args.stages:
            stages = ingest_stages(csv_path, workdir)
            results["stages"] = stages
            print("  ingest stages (in-process, one run): " + ", ".join(f"{n} {s:.1f} s" for n, s in stages))
        if args.statements:
            slowest = ingest_statements(csv_path, workdir)
            results["statements"] = slowest
            print("  slowest ingest statements (in-process, one run):")
            for seconds, sql in slowest:
                print(f"    {seconds:6.1f} s  {sql}")
        shutil.rmtree(data, ignore_errors=True)

        if args.big:
            target = parse_size(args.big_bytes)
            big_dir = workdir / "big"
            gen = generate(GenerateSpec(out=big_dir, parties=args.parties, relations=args.relations,
                                        bytes_target=target, seed=args.seed + 1))
            big_csv = gen.trade_files[0]
            print(f"\nbig file: {gen.rows:,} rows, {fmt_gib(gen.trade_bytes)} generated in {gen.seconds:.1f} s")
            b = bare_load(big_csv, workdir, gen.rows)
            s = settle_ingest(big_csv, workdir, gen.rows)
            results["big"] = {"rows": gen.rows, "bytes": gen.trade_bytes, "bare": asdict(b), "settle": asdict(s)}
            print(f"  bare   {b.seconds:6.1f} s {b.rows_per_s:12,.0f} rows/s peak RSS {fmt_gib(b.peak_rss)}")
            print(f"  settle {s.seconds:6.1f} s {s.rows_per_s:12,.0f} rows/s peak RSS {fmt_gib(s.peak_rss)} "
                  f"exit {s.exit_code}; ratio {s.seconds / b.seconds:.2f}; "
                  f"RSS {'OK' if s.peak_rss < TARGET_RSS else 'MISSED'} (target < 4 GiB)")
            ok &= s.exit_code == 0 and s.peak_rss < TARGET_RSS
            shutil.rmtree(big_dir, ignore_errors=True)
    finally:
        shutil.rmtree(workdir / "data", ignore_errors=True)
        shutil.rmtree(workdir / "big", ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
