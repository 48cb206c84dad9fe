"""A regulator-SQL worker process: ``python -m api.sql_worker '<config json>'`` (started by ``api.sql_pool``).

Why a process (issue 15): DuckDB builds a whole vector (2048 rows) before the first row comes back and
checks ``interrupt()`` only between chunks, so ``SELECT repeat('x', 1000000) FROM range(1500)`` ran 51.8 s
past a 10 s limit and took the server to 6.4 GB. Here the query runs in its own address space, capped by
``RLIMIT_AS`` (``SETTLE_SQL_PROCESS_MEMORY_BYTES``); the server SIGKILLs it at the time limit, whatever
DuckDB is doing, and a worker that runs out of memory takes nobody else with it.

The worker opens the snapshot file itself with the same sandbox as ever (``api.sql_sandbox.open_sandbox``:
READ_ONLY, external access off, configuration locked, no extension autoload, TimeZone UTC, threads,
memory_limit). Protocol, one request at a time: the server writes one JSON line
``{"snapshot", "sql", "row_cap", "byte_cap"}`` to stdin; the worker answers on stdout with lines
``S`` (the query starts: the time limit counts from here), ``C <columns json>``, ``R <n> <json array of n rows>`` (batches), then ``E <{"truncated_by", "rss"}>`` or,
at any point, ``X <{"code", "message", "outcome", "rss"}>`` (``rss``: the worker's resident bytes after the
query; the server replaces a worker that kept much memory, e.g. after DuckDB's out-of-memory error). It stops reading the result at the row cap or when
the next row would take the rows' JSON past the byte cap. Nothing else is ever written to that stream
(fd 1 is pointed at stderr). It exits when stdin closes or its parent dies.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import sys
from typing import BinaryIO

from api.sql_results import jsonable
from api.sql_sandbox import SNAPSHOT_CATALOG, open_sandbox, refusal_for

BATCH = 1000
IDLE_CHECK_S = 5.0  # an idle worker lets go of a snapshot the server has deleted


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the server dies (best effort; stdin EOF is the fallback)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _rss() -> int:
    """This process's resident memory now, in bytes (the server recycles a worker that kept a lot)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def answer(con, request: dict, out: BinaryIO) -> None:
    """Run one query and write its answer lines; a refusal is an ``X`` line, never an exception."""
    row_cap, byte_cap = int(request["row_cap"]), int(request["byte_cap"])
    cur = con.cursor()
    try:
        cur.execute(f"USE {SNAPSHOT_CATALOG}")
        out.write(b"S\n")  # the time limit starts now
        out.flush()
        cur.execute(request["sql"])
        columns = [{"name": d[0], "type": str(d[1])} for d in cur.description or []]
        out.write(b"C " + _dumps(columns) + b"\n")
        out.flush()
        count = size = 0
        truncated_by = None
        while truncated_by is None:
            batch = cur.fetchmany(BATCH)
            if not batch:
                break
            encoded = []
            for row in batch:
                if count == row_cap:
                    truncated_by = "rows"
                    break
                text = _dumps([jsonable(v) for v in row])
                if size + len(text) + 1 > byte_cap:  # +1: the comma between rows
                    truncated_by = "bytes"
                    break
                encoded.append(text)
                size += len(text) + 1
                count += 1
            if encoded:
                out.write(b"R %d [" % len(encoded) + b",".join(encoded) + b"]\n")
                out.flush()
        out.write(b"E " + _dumps({"truncated_by": truncated_by, "rss": _rss()}) + b"\n")
    except (Exception, MemoryError) as exc:
        refusal = refusal_for(exc)
        out.write(b"X " + _dumps({"code": refusal.code, "message": refusal.message, "outcome": refusal.outcome,
                                  "rss": _rss()}) + b"\n")
    finally:
        cur.close()
        out.flush()


def serve(config: dict, requests: BinaryIO, out: BinaryIO) -> None:
    current: tuple[str, object] | None = None  # (snapshot path, sandbox connection)
    while True:
        ready, _, _ = select.select([requests], [], [], IDLE_CHECK_S)
        if not ready:
            if current is not None and not os.path.exists(current[0]):
                current[1].close()
                current = None
            continue
        line = requests.readline()
        if not line:
            return
        request = json.loads(line)
        if current is None or current[0] != request["snapshot"]:
            if current is not None:
                current[1].close()
                current = None
            try:
                con = open_sandbox(request["snapshot"], memory_limit=config["memory_limit"],
                                   threads=config["threads"])
            except (Exception, MemoryError) as exc:
                refusal = refusal_for(exc)
                out.write(b"X " + _dumps({"code": "sql_unavailable" if refusal.code == "sql_error" else refusal.code,
                                          "message": refusal.message, "outcome": "error"}) + b"\n")
                out.flush()
                continue
            current = (request["snapshot"], con)
        answer(current[1], request, out)


def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    _die_with_parent()
    cap = int(config.get("address_space_bytes") or 0)
    if cap > 0:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to the log, never into the answer stream
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's; it closes our stdin
    serve(config, sys.stdin.buffer, out)


if __name__ == "__main__":
    main(sys.argv)
