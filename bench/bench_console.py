"""Web console: the owner's main page (`GET /`) p50/p99 at N concurrent sessions on loopback (issue 12).

A real `settle serve` subprocess on a free loopback port; each of ``--sessions`` threads signs in with its
own session (the owner's token) and requests `/` until ``--requests`` in total have been answered.
Without ``--db`` a small store is built from sample_trades (``settlement.tools.demo.load_and_settle``).
``--build N --work DIR`` makes a big store first, as ``bench/bench_settlement.py`` does (``settle generate``
data, registries loaded, N trades put straight into ``trade_rows`` with every date in 2024, then ``settle run
--year 2024``), kept in DIR for later ``--db DIR/console.duckdb``; the owner signed in is then the one with
the most trades in 2024 (the heaviest page; ``--heaviest datasets``: the one with the most datasets, the most
cards), unless ``--owner`` is given. The server runs with
``SETTLE_LOGIN_MAX_ATTEMPTS`` raised, since every session signs in from 127.0.0.1. Printed: the first
(cold) request's time and page size, p50/p99/max of the rest, pages per second, and the server's and this
client's CPU per page (the server's from /proc, so a loaded machine shows in latency, not in that figure).

    .venv/bin/python bench/bench_console.py [--db STORE --owner CREDIT_CODE] [--sessions 50] [--requests 2000]
    .venv/bin/python bench/bench_console.py --build 10000000 --work /tmp/console10m --sessions 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from settlement.access import tokens  # noqa: E402
from settlement.core import store  # noqa: E402
from settlement.core.params import load_params  # noqa: E402
from settlement.tools.demo import load_and_settle  # noqa: E402

SAMPLE_OWNER = "91330102576445635L"


def _prepare(db: Path | None, owner: str, workdir: Path) -> tuple[Path, str]:
    """(store to serve, owner token): a copy of ``db`` or a fresh sample store, with a new owner token."""
    served = workdir / "bench_console.duckdb"
    if db is not None:
        shutil.copy(db, served)
    else:
        store.init(served)
    con = store.open_store(served)
    try:
        if db is None:
            load_and_settle(con, ROOT / "sample_trades", params=load_params(), by="bench")
        token = tokens.create_token(con, "owner", scope_id=owner, created_by="bench").token
    finally:
        con.close()
    return served, token


def build_store(trades: int, work: Path, shape: str) -> Path:
    """A settled store of ``trades`` trades in ``work`` (reused when ``work/console.duckdb`` exists)."""
    db = work / "console.duckdb"
    if db.exists():
        return db
    import bench_settlement  # the same generator and loading as the settlement benchmark

    work.mkdir(parents=True, exist_ok=True)
    fresh = work / "bench.duckdb"
    if not fresh.exists():  # a build stopped after the trades were stored resumes here
        fresh = bench_settlement.prepare(work, trades, max(1000, trades // 100), max(2000, trades // 50), True,
                                         shape)
    bench_settlement.record_digests(fresh)  # issue 15 row digests, as ingest records them (8 GB limit)
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("settle")), "run", "--year", "2024", "--db", str(fresh)],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"settle run --year 2024: {time.perf_counter() - t0:.1f} s", flush=True)
    fresh.rename(db)
    return db


def heaviest_owner(db: Path, by: str = "trades") -> str:
    """The seller with the most trades in the settled store (the owner page with the most to read), or with
    ``by="datasets"`` the owner with the most datasets in the latest run's results (the most cards)."""
    con = store.open_store(db, read_only=True)
    try:
        if by == "datasets":
            return con.execute("SELECT owner_id FROM run_dataset_results WHERE run_id = (SELECT max(run_id) FROM "
                               "run_dataset_results) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchall()[0][0]
        return con.execute("SELECT seller_id FROM trades GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchall()[0][0]
    finally:
        con.close()


def _serve(db: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SETTLE_LOGIN_MAX_ATTEMPTS": "100000"}
    settle = Path(sys.executable).with_name("settle")
    proc = subprocess.Popen([str(settle), "serve", "--db", str(db), "--port", str(port), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("settle serve did not start")


def _signed_in(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"token": token, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return client


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc): the server's cost per page, whatever else loads the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, token: str, sessions: int, requests: int, server_pid: int | None = None, path: str = "/",
        rounds: int = 1) -> list[dict]:
    """The first (cold) request, then ``rounds`` measured rounds of ``requests`` answers each over the same
    warm server (a cold page of a big store takes minutes, so repeating a round is cheap and shows the noise
    of a shared machine)."""
    clients = [_signed_in(url, token) for _ in range(sessions)]
    t0 = time.perf_counter()  # warm: the first request computes and caches the page data (cold on a new store)
    first = clients[0].get(path, timeout=3600)
    first_ms = (time.perf_counter() - t0) * 1000
    assert first.status_code == 200, first.status_code
    try:
        return [{"sessions": sessions, "round": i + 1, "first_request_ms": round(first_ms, 1),
                 "page_bytes": len(first.content), **_round(clients, requests, server_pid, path)}
                for i in range(rounds)]
    finally:
        for c in clients:
            c.close()


def _round(clients: list[httpx.Client], requests: int, server_pid: int | None, path: str) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [requests]

    def worker(client: httpx.Client) -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            t0 = time.perf_counter()
            r = client.get(path)
            ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, r.status_code
            with lock:
                latencies.append(ms)

    load0 = os.getloadavg()[0]
    cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
    client0 = time.process_time()  # this process: the 50 client threads share one GIL on the same cores
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu0 if server_pid else None
    client_cpu = time.process_time() - client0
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1),
            "mean_ms": round(statistics.fmean(latencies), 1), "max_ms": round(max(latencies), 1),
            "requests_per_s": round(len(latencies) / wall, 1),
            "server_cpu_ms_per_request": round(cpu * 1000 / len(latencies), 2) if cpu is not None else None,
            "client_cpu_ms_per_request": round(client_cpu * 1000 / len(latencies), 2),
            "load_avg_1m": [load0, os.getloadavg()[0]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="a settled store to copy (default: sample_trades)")
    ap.add_argument("--owner", default=None, help=f"owner credit code to sign in as (sample: {SAMPLE_OWNER})")
    ap.add_argument("--build", type=int, default=0, metavar="N", help="first build a settled store of N trades")
    ap.add_argument("--work", type=Path, default=None, help="where --build keeps its store")
    ap.add_argument("--shape", choices=("default", "realistic"), default="realistic", help="--build data shape")
    ap.add_argument("--heaviest", choices=("trades", "datasets"), default="trades",
                    help="without --owner: the owner with the most trades, or with the most datasets")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=1, help="measured rounds over the same warm server")
    ap.add_argument("--path", default="/", help="the page to request (/healthz: the floor of server + client)")
    args = ap.parse_args()
    if args.build:
        if args.work is None:
            raise SystemExit("--build needs --work DIR (the store is kept there)")
        args.db = build_store(args.build, args.work, args.shape)
    owner = args.owner or (heaviest_owner(args.db, args.heaviest) if args.db else SAMPLE_OWNER)
    with tempfile.TemporaryDirectory() as tmp:
        db, token = _prepare(args.db, owner, Path(tmp))
        proc, url = _serve(db)
        try:
            results = run(url, token, args.sessions, args.requests, proc.pid, args.path, args.rounds)
        finally:
            proc.terminate()
            proc.wait(30)
    for result in results:
        print(json.dumps({"bench": "console_owner_page", "path": args.path, "owner": owner, **result}))


if __name__ == "__main__":
    main()
