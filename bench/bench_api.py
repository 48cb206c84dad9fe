"""HTTP API benchmarks (issue 5): prints numbers and ratios; not a test.

  upload   a multi-GB trade file POSTed through `settle serve` on loopback, streamed by the client; the
           server's RSS (/proc/PID/status) is sampled every 20 ms: baseline before, peak while the body
           streams in (our code: multipart parser → spool file), peak during the ingest that follows
           (DuckDB, bounded by SETTLE_MEMORY_LIMIT). Target: growth < 200 MiB for a 2 GB upload.
           --invalid-header makes the file's header lack `amount`, so the ingest ends right after
           hashing: the receive path alone.
  payouts  a fixed-rate load from `hey` (apt-get install hey; --workers connections, each throttled to
           rate/workers req/s) of GET /v1/payouts with an owner token, against a ledger of --keys keys;
           baseline GET /healthz at the same rate in the same run. Target: p99 < 50 ms at 200 req/s.
           (A Python asyncio+httpx client could not itself send 200 req/s on this shared 2-core machine.)
  snapshot the SQL snapshot rebuild on a store of --trades rows vs COPY FROM DATABASE and a file copy.

The server is ONE process (uvicorn, 1 worker) with a thread pool: DuckDB admits one writing process and
another process cannot even open the file read-only while it is held (see docs/architecture.md).

  .venv/bin/python bench/bench_api.py upload --gib 2
  .venv/bin/python bench/bench_api.py upload --gib 2 --invalid-header
  .venv/bin/python bench/bench_api.py payouts --keys 20000 --rate 200 --seconds 20
  .venv/bin/python bench/bench_api.py snapshot --trades 10000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledgers import ledger  # noqa: E402
from settlement.core import store
from settlement.access import tokens  # noqa: E402
from settlement.tools.credit_codes import credit_code  # noqa: E402
from tests.support.live_server import free_port, wait_for_health  # noqa: E402

OUT = ROOT / "bench" / "out" / "api"
MIB = 1024 * 1024


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, key: str) -> int:
    """VmRSS / VmHWM of a process in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc_status(self.pid, "VmRSS")))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(self.every)

    def peak(self, start: float, end: float) -> int:
        return max((r for t, r in self.samples if start <= t <= end), default=0)


def start_server(db: Path, port: int, env_extra: dict[str, str], http: str = "auto") -> subprocess.Popen:
    env = {**os.environ, **env_extra}
    log = open(db.with_suffix(".server.log"), "w")
    if http == "auto":  # what users run: `settle serve` (uvicorn picks httptools/uvloop only if installed)
        cmd = [str(ROOT / ".venv" / "bin" / "settle"), "serve", "--db", str(db), "--port", str(port)]
    else:  # the same app on uvicorn with an explicit HTTP stack, for comparison
        env["SETTLE_DB"] = str(db)
        cmd = [str(ROOT / ".venv" / "bin" / "uvicorn"), "api.app:create_app", "--factory", "--port", str(port),
               "--http", http, "--loop", "asyncio", "--workers", "1"]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    wait_for_health(f"http://127.0.0.1:{port}", server, 60, log.name)
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


def fresh_store(name: str) -> tuple[Path, dict[str, str]]:
    work = OUT / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "bench.duckdb"
    store.init(db)
    con = store.open_store(db)
    made = {
        "operator": tokens.create_token(con, "operator", scope_id=credit_code(1), created_by="bench").token,
        "owner": tokens.create_token(con, "owner", scope_id=credit_code(1000), created_by="bench").token,
        "regulator": tokens.create_token(con, "regulator", created_by="bench").token,
    }
    con.close()
    return db, made


# ------------------------------------------------------------------------------------------------ upload


def make_trade_file(path: Path, gib: float, *, invalid_header: bool) -> int:
    """A valid trade CSV of about ``gib`` GiB for platform credit_code(1), written by DuckDB."""
    platform, sellers, buyers = credit_code(1), [credit_code(10 + i) for i in range(50)], [credit_code(100 + i) for i in range(500)]
    rows = int(gib * 1024**3 / 112)
    con = duckdb.connect()
    amount_col = "amount_typo" if invalid_header else "amount"
    con.execute(f"""
        COPY (
          SELECT 'T' || lpad(range::VARCHAR, 11, '0') AS trade_id, '{platform}' AS platform_id,
                 'DS-' || lpad((range % 997)::VARCHAR, 4, '0') AS dataset_id,
                 (?::VARCHAR[])[1 + range % 50] AS seller_id, (?::VARCHAR[])[1 + (range * 7) % 500] AS buyer_id,
                 strftime(TIMESTAMP '2024-01-01' + to_seconds(range % 31000000), '%Y-%m-%dT%H:%M:%S') AS traded_at,
                 (1 + range % 99999)::VARCHAR || '.' || lpad((range % 100)::VARCHAR, 2, '0') AS {amount_col}
          FROM range({rows})
        ) TO '{path}' (HEADER, DELIMITER ',')
    """, [sellers, buyers])
    con.close()
    return rows


def multipart_stream(path: Path, boundary: str, chunk: int = MIB):
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)

    def body():
        yield head
        with open(path, "rb") as f:
            while block := f.read(chunk):
                yield block
        yield tail

    return length, body


def bench_upload(args) -> None:
    db, made = fresh_store("upload")
    trade_file = db.parent / "trades.csv"
    t0 = time.perf_counter()
    rows = make_trade_file(trade_file, args.gib, invalid_header=args.invalid_header)
    size = trade_file.stat().st_size
    print(f"trade file: {rows:,} rows, {size / MIB:,.0f} MiB ({'header lacks amount' if args.invalid_header else 'valid'}), "
          f"written in {time.perf_counter() - t0:.1f} s")
    port = free_port()
    server = start_server(db, port, {"SETTLE_UPLOAD_MAX_BYTES": str(size + MIB),
                                     "SETTLE_MEMORY_LIMIT": args.memory_limit})
    sampler = RssSampler(server.pid)
    sampler.start()
    try:
        # warm the server: auth, one small request of each kind touched by the upload path
        httpx.get(f"http://127.0.0.1:{port}/v1/payouts", headers={"Authorization": f"Bearer {made['owner']}"})
        time.sleep(0.5)
        baseline = proc_status(server.pid, "VmRSS")
        boundary = "benchboundary7d1f"
        length, body = multipart_stream(trade_file, boundary)
        sent_at: dict[str, float] = {}

        def timed_body():
            yield from body()
            sent_at["end"] = time.monotonic()

        start = time.monotonic()
        r = httpx.post(f"http://127.0.0.1:{port}/v1/uploads", content=timed_body(), timeout=None, headers={
            "Authorization": f"Bearer {made['operator']}", "Content-Length": str(length),
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        done = time.monotonic()
        time.sleep(0.1)
        sampler.stop.set()
        sampler.join()
        report = r.json()
        stream_peak = sampler.peak(start, sent_at["end"])
        ingest_peak = sampler.peak(sent_at["end"], done)
        hwm = proc_status(server.pid, "VmHWM")
        send_s, ingest_s = sent_at["end"] - start, done - sent_at["end"]
        print(f"HTTP {r.status_code}: status={report.get('status')} rows_stored={report.get('rows_stored')} "
              f"file_error={report.get('file_error')}")
        print(f"stream-in: {send_s:.1f} s ({size / MIB / send_s:,.0f} MiB/s); ingest after the body: {ingest_s:.1f} s")
        print(f"server RSS baseline {baseline / MIB:.0f} MiB; peak while streaming {stream_peak / MIB:.0f} MiB "
              f"(growth {(stream_peak - baseline) / MIB:+.0f} MiB); peak during ingest {ingest_peak / MIB:.0f} MiB "
              f"(growth {(ingest_peak - baseline) / MIB:+.0f} MiB); VmHWM {hwm / MIB:.0f} MiB "
              f"(SETTLE_MEMORY_LIMIT={args.memory_limit})")
        print(f"ratio stream growth / upload size = {(stream_peak - baseline) / size:.4f}")
    finally:
        stop_server(server)
        if not args.keep:
            shutil.rmtree(db.parent, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ payouts


def seed_ledger(db: Path, keys: int, owner: str) -> None:
    """``keys`` ledger keys over 2024 and 2025: clause-6 keys of 2,000 owners (one of them the bench owner,
    with 10 datasets per year) plus clause-7 keys of 20 platforms."""
    owners = [owner] + [credit_code(2000 + i) for i in range(1999)]
    con = store.open_store(db)
    per_year = keys // 2
    for year in (2024, 2025):
        rows = [(6, owners[i % len(owners)], f"DS-{i:06d}", Decimal(1000 + i) / 100) for i in range(per_year - 20)]
        rows += [(7, credit_code(5000 + i), "", Decimal(50_000 + i)) for i in range(20)]
        frame = pl.DataFrame(rows, schema={"clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String,
                                           "amount": pl.Decimal(18, 2)}, orient="row")
        ledger.append_run(con, year=year, targets=frame, params_hash="bench", inputs_fingerprint="bench",
                          engine_version="bench", started_at=dt.datetime.now(dt.timezone.utc))
    con.close()


def hey_load(url: str, headers: dict[str, str], rate: float, seconds: float, workers: int) -> dict:
    """Fixed-rate load from `hey` (Go, Debian package `hey`): ``workers`` connections each throttled to
    rate/workers req/s, so the client, not Python, sets the pace. Per-request times come from its CSV."""
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", f"{rate / workers:g}", "-o", "csv"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    subprocess.run(["hey", "-n", "50", "-c", "2", *cmd[9:], url], capture_output=True, check=True)  # warm-up
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout.splitlines()
    rows = [line.split(",") for line in out[1:] if line.strip()]
    ms = sorted(float(r[0]) * 1000 for r in rows)
    offsets = [float(r[7]) for r in rows]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r[6]] = statuses.get(r[6], 0) + 1
    wall = max(offsets) + ms[-1] / 1000 if offsets else seconds
    n = len(ms)
    return {"n": n, "wall": wall, "rps": n / wall, "p50": statistics.median(ms), "p99": ms[int(0.99 * (n - 1))],
            "max": ms[-1], "statuses": statuses}


def bench_payouts(args) -> None:
    db, made = fresh_store("payouts")
    owner = credit_code(1000)
    t0 = time.perf_counter()
    seed_ledger(db, args.keys, owner)
    print(f"ledger: {args.keys:,} keys over 2024-2025 seeded in {time.perf_counter() - t0:.1f} s")
    port = free_port()
    server = start_server(db, port, {}, http=args.http)
    print(f"server: uvicorn, 1 process, http={args.http}")
    try:
        base = f"http://127.0.0.1:{port}"
        own = {"Authorization": f"Bearer {made['owner']}"}
        check = httpx.get(f"{base}/v1/payouts", headers=own).json()
        print(f"owner payouts: {len(check['payouts'])} rows, total {check['total']}")
        results = {}
        for label, url, headers in [
            ("baseline GET /healthz", f"{base}/healthz", {}),
            ("GET /v1/payouts (owner)", f"{base}/v1/payouts", own),
            ("GET /v1/payouts?year=2024 (owner)", f"{base}/v1/payouts?year=2024", own),
        ]:
            cpu0 = cpu_seconds(server.pid)
            results[label] = r = hey_load(url, headers, args.rate, args.seconds, args.workers)
            r["cpu_ms"] = (cpu_seconds(server.pid) - cpu0) * 1000 / r["n"]
            print(f"{label:36s} n={r['n']} achieved {r['rps']:.0f} req/s  p50 {r['p50']:.1f} ms  "
                  f"p99 {r['p99']:.1f} ms  max {r['max']:.1f} ms  server CPU {r['cpu_ms']:.2f} ms/req  "
                  f"statuses {r['statuses']}")
        b = results["baseline GET /healthz"]
        o = results["GET /v1/payouts (owner)"]
        print(f"ratios owner payouts / healthz: p50 {o['p50'] / b['p50']:.2f}, p99 {o['p99'] / b['p99']:.2f}, "
              f"server CPU per request {o['cpu_ms'] / b['cpu_ms']:.2f}")
        print(f"load average after: {os.getloadavg()[0]:.1f} (2 cores, shared)")
        print(f"target p99 < 50 ms at {args.rate:.0f} req/s: {'met' if o['p99'] < 50 and o['rps'] >= 0.95 * args.rate else 'NOT met'}")
    finally:
        stop_server(server)
        if not args.keep:
            shutil.rmtree(db.parent, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ snapshot


def bench_snapshot(args) -> None:
    """The SQL snapshot rebuild (api.sql_guard.build_snapshot) on a store of --trades trade rows, against two
    baselines in the same run: DuckDB's own COPY FROM DATABASE of everything, and a plain file copy."""
    from api.sql_guard import build_snapshot, open_sandbox

    db, _ = fresh_store("snapshot")
    con = store.open_store(db)
    con.execute("INSERT INTO uploads VALUES (1, 'f', 'x', 1, 'csv', 1, 1, 0, 0, 'stored', 't', now(), false, NULL, NULL, NULL)")
    t0 = time.perf_counter()
    con.execute(f"""INSERT INTO trade_rows SELECT 'T' || range, '{credit_code(1)}', 'DS-' || (range % 997),
        '{credit_code(2)}', 'B' || (range % 5000), TIMESTAMPTZ '2024-01-01 00:00:00+08' + to_seconds(range % 31000000),
        DATE '2024-01-01', (range % 99999) / 100, 'CNY', 'sale', NULL, 1, range + 2 FROM range({args.trades})""")
    con.execute("CHECKPOINT")
    print(f"store: {args.trades:,} trade rows, {db.stat().st_size / MIB:.0f} MiB, made in {time.perf_counter() - t0:.1f} s")
    times = {"snapshot": [], "copy_from_database": [], "file_copy": []}
    for i in range(args.repeats):
        t0 = time.perf_counter()
        build_snapshot(con, db.parent / f"snap{i}.duckdb")
        times["snapshot"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        con.execute(f"ATTACH '{db.parent / f'full{i}.duckdb'}' AS full{i}")
        con.execute(f"COPY FROM DATABASE bench TO full{i}")
        con.execute(f"DETACH full{i}")
        times["copy_from_database"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        shutil.copyfile(db, db.parent / f"raw{i}.duckdb")
        times["file_copy"].append(time.perf_counter() - t0)
    sandbox = open_sandbox(db.parent / "snap0.duckdb", memory_limit="1GB", threads=1)
    t0 = time.perf_counter()
    sandbox.execute("SELECT count(*), sum(amount) FROM store.trades").fetchall()
    query = time.perf_counter() - t0
    sandbox.close()
    con.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:20s} median {v:.2f} s over {args.repeats}")
    print(f"ratios: snapshot / COPY FROM DATABASE = {med['snapshot'] / med['copy_from_database']:.2f}; "
          f"snapshot / file copy = {med['snapshot'] / med['file_copy']:.0f}; sandbox count+sum over trades {query:.2f} s")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    if not args.keep:
        shutil.rmtree(db.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    up = sub.add_parser("upload")
    up.add_argument("--gib", type=float, default=2.0)
    up.add_argument("--invalid-header", action="store_true")
    up.add_argument("--memory-limit", default=os.environ.get("SETTLE_MEMORY_LIMIT", "2GB"))
    up.add_argument("--keep", action="store_true")
    pay = sub.add_parser("payouts")
    pay.add_argument("--keys", type=int, default=20_000)
    pay.add_argument("--rate", type=float, default=200)
    pay.add_argument("--seconds", type=float, default=20)
    pay.add_argument("--workers", type=int, default=8, help="client connections (hey -c)")
    pay.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"], help="uvicorn HTTP stack of the server")
    pay.add_argument("--keep", action="store_true")
    snap = sub.add_parser("snapshot")
    snap.add_argument("--trades", type=int, default=10_000_000)
    snap.add_argument("--repeats", type=int, default=3)
    snap.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    {"upload": bench_upload, "payouts": bench_payouts, "snapshot": bench_snapshot}[args.what](args)


if __name__ == "__main__":
    main()
