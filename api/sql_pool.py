"""Server side of the SQL worker processes (``api.sql_worker``): a small pool, and one query with a deadline.

Each regulator query is sent to an idle worker process; the server reads its answer lines with
``select`` until the time limit, then SIGKILLs the worker (whatever DuckDB is doing in it), answers
``sql_timeout`` and starts a fresh worker in the background. A worker that dies on its own (its
``RLIMIT_AS`` reached: DuckDB's allocation fails, or the process is killed) answers ``sql_too_big``. The
server never holds more than about the byte cap of one answer: rows stay the JSON text the worker wrote.
Must not import FastAPI, the routes or the store.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from api.sql_results import SqlRefusal
from api.sql_sandbox import TOO_BIG

log = logging.getLogger("settle.api.sql")
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
_FRAMING_SLACK = 1024 * 1024  # columns line, batch headers: beyond byte cap + this the worker is misbehaving
# A fresh worker (Python, duckdb import, the sandbox over the snapshot) must reach its query within this
# long; the time limit counts from the query's start (the worker's ``S`` line), as it did in-process.
START_BUDGET_S = 30.0
# A worker still holding this much after its query (glibc and DuckDB keep freed memory) is replaced.
RECYCLE_RSS_BYTES = 256 * 1024 * 1024


class SqlWorker:
    """One worker process; used by one query at a time."""

    def __init__(self, config: dict) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "api.sql_worker", json.dumps(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env,
                                     close_fds=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_kill(self) -> None:
        """SIGKILL now; reaping (the kernel frees a big address space slowly) is ``kill``'s, later."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.signal_kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Close stdin (the worker exits), then make sure."""
        try:
            self.proc.stdin.close()
            self.proc.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


@dataclass
class WorkerAnswer:
    columns: list[dict]
    rows_json: bytes
    row_count: int
    truncated_by: str | None


class WorkerPool:
    """Idle workers ready for a query; more are started when all are busy (the route's semaphore bounds them)."""

    def __init__(self, config: dict, *, prestart: int = 1, max_idle: int = 4) -> None:
        self.config = config
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[SqlWorker] = []
        self._all: set[SqlWorker] = set()
        self._closed = False
        for _ in range(prestart):
            self._idle.append(self._start())

    def _start(self) -> SqlWorker:
        worker = SqlWorker(self.config)
        with self._lock:
            self._all.add(worker)
        return worker

    def acquire(self) -> SqlWorker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
                self._all.discard(worker)
        return self._start()

    def release(self, worker: SqlWorker) -> None:
        with self._lock:
            keep = not self._closed and worker.alive and len(self._idle) < self.max_idle
            if keep:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
        if not keep:
            worker.stop()

    def discard(self, worker: SqlWorker) -> None:
        """``worker`` was SIGKILLed: reap it and start a fresh one, in the background."""
        with self._lock:
            self._all.discard(worker)
            closed = self._closed

        def replace() -> None:
            worker.kill()
            if not closed:
                self.release(self._start())

        threading.Thread(target=replace, name="sql-worker-replace", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            worker.stop()


def run_query(pool: WorkerPool, snapshot: Path, sql: str, *, row_cap: int, byte_cap: int,
              time_limit_s: float) -> WorkerAnswer | SqlRefusal:
    """Send ``sql`` to a worker and collect its answer before ``time_limit_s``; kill it otherwise."""
    worker = pool.acquire()
    request = {"snapshot": str(Path(snapshot).resolve()), "sql": sql, "row_cap": row_cap, "byte_cap": byte_cap}
    answer = _Answer(time_limit_s)
    try:
        worker.proc.stdin.write(json.dumps(request).encode() + b"\n")
        outcome = _read_answer(worker, answer, byte_cap + _FRAMING_SLACK)
    except (BrokenPipeError, OSError):
        outcome = "died"
    if outcome == "timeout":
        worker.signal_kill()
        ran = time.monotonic() - (answer.started or answer.sent)
        pool.discard(worker)
        if answer.started is None:
            log.warning("SQL worker did not start the query within %s s", START_BUDGET_S)
        return SqlRefusal("sql_timeout", f"query stopped after the {time_limit_s:g} s time limit ({ran:.1f} s)",
                          "timeout")
    if outcome in ("died", "too_long"):
        worker.kill()
        code = worker.proc.returncode
        pool.discard(worker)
        how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        log.warning("SQL worker ended (%s) during a query", how)
        return SqlRefusal("sql_too_big", f"{TOO_BIG} (its process ended: {how})", "too_big")
    if answer.rss > RECYCLE_RSS_BYTES:
        worker.signal_kill()
        pool.discard(worker)
    else:
        pool.release(worker)
    return outcome


class _Answer:
    """Accumulates one answer's lines."""

    def __init__(self, time_limit_s: float) -> None:
        self.columns: list[dict] = []
        self.parts: list[bytes] = []
        self.count = 0
        self.time_limit_s = time_limit_s
        self.sent = time.monotonic()
        self.started: float | None = None  # when the worker began executing the query
        self.deadline = self.sent + START_BUDGET_S
        self.rss = 0  # the worker's resident bytes after the query

    def line(self, line: bytes) -> WorkerAnswer | SqlRefusal | None:
        kind, _, payload = line.partition(b" ")
        if kind == b"S":
            self.started = time.monotonic()
            self.deadline = self.started + self.time_limit_s
        elif kind == b"R":
            n, _, rows = payload.partition(b" ")
            self.parts.append(rows[1:-1])
            self.count += int(n)
        elif kind == b"C":
            self.columns = json.loads(payload)
        elif kind == b"E":
            end = json.loads(payload)
            self.rss = int(end.get("rss") or 0)
            return WorkerAnswer(self.columns, b"[" + b",".join(self.parts) + b"]", self.count, end["truncated_by"])
        elif kind == b"X":
            bad = json.loads(payload)
            self.rss = int(bad.get("rss") or 0)
            return SqlRefusal(bad["code"], bad["message"], bad["outcome"])
        return None


def _read_answer(worker: SqlWorker, answer: _Answer, max_bytes: int) -> WorkerAnswer | SqlRefusal | str:
    """The worker's answer lines until ``E``/``X``; "timeout", "died" or "too_long" otherwise."""
    fd = worker.proc.stdout.fileno()
    buf = bytearray()
    scanned = received = 0
    while True:
        newline = buf.find(b"\n", scanned)
        while newline >= 0:
            done = answer.line(bytes(buf[:newline]))
            if done is not None:
                return done
            del buf[:newline + 1]
            newline = buf.find(b"\n")
        scanned = len(buf)
        remaining = answer.deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return "timeout"
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return "died"
        received += len(chunk)
        if received > max_bytes:
            return "too_long"
        buf += chunk
