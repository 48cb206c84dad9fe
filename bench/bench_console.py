"""Web console: the owner's main page (`GET /`) p50/p99 at N concurrent sessions on loopback (issue 12).

A real `settle serve` subprocess on a free loopback port; each of ``--sessions`` threads signs in with its
own session (the owner's token) and requests `/` until ``--requests`` in total have been answered.
Without ``--db`` a small store is built from sample_trades (``settlement.tools.demo.load_and_settle``).
The server runs with ``SETTLE_LOGIN_MAX_ATTEMPTS`` raised, since every session signs in from 127.0.0.1.

    .venv/bin/python bench/bench_console.py [--db STORE --owner CREDIT_CODE] [--sessions 50] [--requests 2000]
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


def run(url: str, token: str, sessions: int, requests: int) -> dict:
    clients = [_signed_in(url, token) for _ in range(sessions)]
    for c in clients[:1]:  # warm: the first request computes and caches the page data
        assert c.get("/").status_code == 200
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
            r = client.get("/")
            ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, r.status_code
            with lock:
                latencies.append(ms)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for c in clients:
        c.close()
    q = statistics.quantiles(latencies, n=100)
    return {"sessions": sessions, "requests": len(latencies), "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1),
            "mean_ms": round(statistics.fmean(latencies), 1), "max_ms": round(max(latencies), 1),
            "requests_per_s": round(len(latencies) / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="a settled store to copy (default: sample_trades)")
    ap.add_argument("--owner", default=SAMPLE_OWNER, help="owner credit code to sign in as")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, token = _prepare(args.db, args.owner, Path(tmp))
        proc, url = _serve(db)
        try:
            result = run(url, token, args.sessions, args.requests)
        finally:
            proc.terminate()
            proc.wait(30)
    print(json.dumps({"bench": "console_owner_page", **result}))


if __name__ == "__main__":
    main()
