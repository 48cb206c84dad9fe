"""A real `settle serve` process on a free loopback port, for tests that must see the server as users run it
(separate process, its own RSS, SIGKILL), and the watchers such tests and the benchmarks run beside it
(/healthz latency, RSS peaks). Holds no tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, key: str) -> int:
    """VmRSS / VmHWM of a process, in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for_health(url: str, process: subprocess.Popen, seconds: float, log: str) -> None:
    """Return once GET ``url``/healthz answers 200. Raise RuntimeError naming ``log`` (where the server's
    output went) when ``process`` exits first, or after ``seconds`` (the process killed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"settle serve exited; see {log}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"settle serve did not answer /healthz within {seconds:g} s; see {log}")


def start_server(db: Path, seconds: float = 60, **env: str) -> LiveServer:
    """`settle serve --db DB` with ``env`` added, its output in ``<db>.server-<port>.log``; waits ``seconds``
    for /healthz (a loaded machine imports slowly)."""
    port = free_port()
    settle = Path(sys.executable).with_name("settle")
    log = open(db.with_name(db.name + f".server-{port}.log"), "w")
    process = subprocess.Popen([str(settle), "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port),
                                "--no-access-log"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, process, seconds, log.name)
    return LiveServer(url, process)


class HealthPoller(threading.Thread):
    """GET /healthz every 0.2 s; records each answer's latency (a timeout counts as its 5 s) and each failure
    (a status other than 200, or the client error)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.failures = url, [], []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get(self.url + "/healthz").status_code
                    if status != 200:
                        self.failures.append(status)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.perf_counter() - started)
                self.stop.wait(0.2)


class RssSampler(threading.Thread):
    """Peak VmRSS of a process every 50 ms and, with ``workers``, the peak of any of its child processes."""

    def __init__(self, pid: int, workers: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid, self.workers, self.peak, self.worker_peak = pid, workers, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            for child in children(self.pid) if self.workers else ():
                self.worker_peak = max(self.worker_peak, proc_status(child, "VmRSS"))
            self.stop.wait(0.05)


@contextmanager
def watched(url: str, pid: int, workers: bool = False) -> Iterator[tuple[HealthPoller, RssSampler]]:
    """/healthz polled and the server's RSS sampled while the block runs; both threads stopped after it."""
    poller, sampler = HealthPoller(url), RssSampler(pid, workers)
    poller.start()
    sampler.start()
    try:
        yield poller, sampler
    finally:
        poller.stop.set()
        sampler.stop.set()
        poller.join()
        sampler.join()
