"""The regulator-SQL attack of issue 15 against a real `settle serve`: time, server peak RSS, /healthz.

  SELECT repeat('x', 1000000) FROM range(1500)

is sent once by a regulator while a thread GETs /healthz every 0.2 s (5 s client timeout) and another
samples the server's VmRSS (and its SQL worker processes', /proc/PID/status) every 50 ms. Prints the
answer (status, code or truncated_by, bytes), the wall time, the server's baseline and peak RSS, the
workers' peak, and /healthz max / p99 latency. Not a test; the machine is shared (see the load average).

  .venv/bin/python bench/bench_sql_attack.py                      # this tree
  .venv/bin/python bench/bench_sql_attack.py --tree /tmp/before   # another source tree, e.g. the commit
                                                                  # before worker processes (git archive)
  .venv/bin/python bench/bench_sql_attack.py --sql "SELECT repeat('x', 100000) FROM range(1500)"  # byte cap
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from settlement.access import tokens  # noqa: E402
from settlement.core import store  # noqa: E402
from tests.support.live_server import free_port, proc_status, wait_for_health, watched  # noqa: E402

ATTACK = "SELECT repeat('x', 1000000) AS s FROM range(1500)"
MIB = 1024 * 1024


def start(tree: Path, db: Path, port: int, limit: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree), "SETTLE_SQL_TIME_LIMIT_S": str(limit)}
    log = open(db.with_name("server.log"), "w")
    cmd = [sys.executable, "-c", "from settlement.cli import main; main()", "serve", "--db", str(db),
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    server = subprocess.Popen(cmd, env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT)
    wait_for_health(f"http://127.0.0.1:{port}", server, 60, log.name)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="source tree the server runs from")
    parser.add_argument("--limit", type=float, default=10.0, help="SETTLE_SQL_TIME_LIMIT_S")
    parser.add_argument("--sql", default=ATTACK, help="the hostile query (default: the issue's)")
    args = parser.parse_args()
    work = ROOT / "bench" / "out" / "sql_attack"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "attack.duckdb"
    store.init(db)
    con = store.open_store(db)
    token = tokens.create_token(con, "regulator", created_by="bench").token
    con.close()
    port = free_port()
    server = start(args.tree.resolve(), db, port, args.limit)
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        httpx.post(url + "/v1/sql", json={"sql": "SELECT 1"}, headers=auth, timeout=60)
        time.sleep(1)
        baseline = proc_status(server.pid, "VmRSS")
        with watched(url, server.pid, workers=True) as (health, sampler):
            time.sleep(0.5)
            started = time.perf_counter()
            r = httpx.post(url + "/v1/sql", json={"sql": args.sql}, headers=auth, timeout=600)
            elapsed = time.perf_counter() - started
            time.sleep(1)
        body = r.json()
        what = body["error"]["code"] if r.status_code != 200 else \
            f"rows={body['row_count']} truncated_by={body.get('truncated_by')}"
        lat = sorted(health.latencies)
        print(f"tree {args.tree}; time limit {args.limit:g} s; query: {args.sql}")
        print(f"answer: HTTP {r.status_code} {what}, {len(r.content) / MIB:.1f} MiB, in {elapsed:.1f} s")
        print(f"server RSS: baseline {baseline / MIB:.0f} MiB, peak {sampler.peak / MIB:.0f} MiB; "
              f"VmHWM {proc_status(server.pid, 'VmHWM') / MIB:.0f} MiB; SQL workers' peak "
              f"{sampler.worker_peak / MIB:.0f} MiB")
        print(f"/healthz: {len(lat)} polls, {len(health.failures)} failed, median {statistics.median(lat) * 1000:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms")
        print(f"load average: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
