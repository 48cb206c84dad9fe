"""Web console: the owner's main page (`GET /`) p50/p99 at N concurrent sessions on loopback (issue 12).

A real `settle serve` subprocess on a free loopback port (one uvicorn process, as the command runs it); each
of ``--sessions`` sessions signs in with its own session cookie (the owner's token), then each path (default
`/` and `/healthz`, a plain sync route with one query, measured beside the page for comparison) is requested
until ``--requests`` in total have been answered, per round. The default client (``--client async``,
``bench/console_load.py``) is one coroutine and one keep-alive connection per session on raw asyncio streams,
timed from the request's first byte written to the body's last byte read, in one process or ``--procs N``;
``--client threads`` is the first harness (one httpx thread per session, one GIL), which at 50 sessions
costs more CPU than the server and measured itself.
Without ``--db`` a small store is built from sample_trades (``settlement.tools.demo.load_and_settle``); with
it, the store is copied into a temporary directory first (never served in place).
``--build N --work DIR`` makes a big store first, as ``bench/bench_settlement.py`` does (``settle generate``
data, registries loaded, N trades put straight into ``trade_rows`` with every date in 2024, then ``settle run
--year 2024``), kept in DIR for later ``--db DIR/console.duckdb``; the owner signed in is then the one with
the most trades in 2024 (the heaviest page; ``--heaviest datasets``: the one with the most datasets, the most
cards), unless ``--owner`` is given. The server runs with
``SETTLE_LOGIN_MAX_ATTEMPTS`` raised, since every session signs in from 127.0.0.1. Printed, one JSON line
per round and path: the first (cold) request's time and page size, p50/p99/max of the round, answers per
second, the server's and the client's CPU per answer (the server's from /proc, so a loaded machine shows in
latency, not in that figure) and the 1/5/15-minute load average before and after the round.

    .venv/bin/python bench/bench_console.py [--db STORE --owner CREDIT_CODE] [--sessions 50] [--requests 2000]
    SETTLE_MEMORY_LIMIT=8GB .venv/bin/python bench/bench_console.py --db STORE --sessions 50 --requests 2000 \
        --rounds 3 [--client async|threads] [--procs 1]
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
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import console_load  # noqa: E402
from api.console.session import SESSION_COOKIE  # noqa: E402
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


def run(url: str, token: str, sessions: int, requests: int, server_pid: int | None = None,
        paths: tuple[str, ...] = ("/", "/healthz"), rounds: int = 1, kinds: tuple[str, ...] = ("async",),
        procs: int = 1) -> Iterator[dict]:
    """Yields, as each is measured: the first (cold) request of each path, then ``rounds`` measured rounds of ``requests`` answers per path
    over the same warm server (a cold page of a big store takes minutes, so repeating a round is cheap and
    shows the noise of a shared machine). Within a round the paths (and clients, when several) run one after
    the other, so the page and `/healthz` are measured minutes apart at most."""
    clients = [_signed_in(url, token) for _ in range(sessions)]
    firsts = {}
    for path in paths:  # warm: the first request computes and caches the page data (cold on a new store)
        t0 = time.perf_counter()
        first = clients[0].get(path, timeout=3600)
        firsts[path] = ((time.perf_counter() - t0) * 1000, len(first.content))
        assert first.status_code == 200, (path, first.status_code)
    cookies = [f"{SESSION_COOKIE}={c.cookies[SESSION_COOKIE]}" for c in clients]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        for i in range(rounds):
            for path, client in ((p, k) for k in kinds for p in paths):
                load0 = os.getloadavg()
                cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
                if client == "threads":
                    measured = _threads_round(clients, requests, path)
                else:
                    measured = console_load.run_round(host, int(port), path, cookies, requests, procs)
                cpu = cpu_seconds(server_pid) - cpu0 if server_pid else None
                yield ({"path": path, "client": client, "procs": procs if client == "async" else 1,
                            "sessions": sessions, "round": i + 1, "first_request_ms": round(firsts[path][0], 1),
                            "page_bytes": firsts[path][1], **_figures(measured, cpu),
                            "load_avg": [round(x, 2) for x in load0 + os.getloadavg()]})
    finally:
        for c in clients:
            c.close()


def _figures(r: console_load.RoundResult, server_cpu_s: float | None) -> dict:
    ms = sorted(x * 1000 for x in r.latencies_s)
    q = statistics.quantiles(ms, n=100)
    n = len(ms)
    return {"requests": n, "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1),
            "mean_ms": round(statistics.fmean(ms), 1), "max_ms": round(ms[-1], 1),
            "requests_per_s": round(n / r.wall_s, 1),
            "server_cpu_ms_per_request": round(server_cpu_s * 1000 / n, 2) if server_cpu_s is not None else None,
            "client_cpu_ms_per_request": round(r.client_cpu_s * 1000 / n, 2)}


def _threads_round(clients: list[httpx.Client], requests: int, path: str) -> console_load.RoundResult:
    """The first harness: one thread per session, httpx sync clients, one GIL (kept to compare)."""
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [requests]
    size = [0]

    def worker(client: httpx.Client) -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            t0 = time.perf_counter()
            r = client.get(path)
            took = time.perf_counter() - t0
            assert r.status_code == 200, r.status_code
            with lock:
                latencies.append(took)
                size[0] = len(r.content)

    client0 = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return console_load.RoundResult(latencies, size[0], time.perf_counter() - started,
                                    time.process_time() - client0)


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
    ap.add_argument("--path", action="append", dest="paths",
                    help="a page to request, repeatable (default: / and then /healthz, a plain sync route with one "
                         "DuckDB query, for comparison)")
    ap.add_argument("--client", choices=("async", "threads"), action="append", dest="clients",
                    help="repeatable (default async); async: raw asyncio keep-alive connections (bench/console_load.py); threads: one httpx "
                         "thread per session (the first harness, client-bound at 50 sessions)")
    ap.add_argument("--procs", type=int, default=1, help="async client: spread the sessions over N processes")
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
            for result in run(url, token, args.sessions, args.requests, proc.pid, tuple(args.paths or ("/", "/healthz")),
                              args.rounds, tuple(args.clients or ("async",)), args.procs):
                print(json.dumps({"bench": "console_owner_page", "owner": owner, **result}), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
