"""The console benchmark's load generator: N keep-alive sessions on raw asyncio streams, in one process or
split over a few, each request timed from its first byte written to its body's last byte read (issue 12).

Why not httpx: 50 httpx clients on 50 threads in one process (one GIL) cost more CPU per request than the
server's page on the same 2 cores, so the old harness mostly measured itself (its `/healthz` p99 was above
the page's). Here each session is one coroutine holding one TCP connection with its own session cookie; it
writes a fixed request and reads one HTTP/1.1 answer, parsing only the status line and the framing headers
(Content-Length or chunked). Closed loop, no think time: a session sends its next request when the last
answer is read, until the round's request budget is spent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from dataclasses import dataclass


class BadAnswer(Exception):
    """The server answered something this benchmark cannot count as a page (a bug of the run, not data)."""


@dataclass(frozen=True)
class RoundResult:
    latencies_s: list[float]  # one per answer, send to last body byte
    body_bytes: int  # of the last answer (the same page every time)
    wall_s: float  # from the first request sent to the last answer read, connections already open
    client_cpu_s: float  # user + system CPU of the client process(es) during the round


def request_bytes(host: str, port: int, path: str, cookie: str | None) -> bytes:
    """A GET asking for an uncompressed, kept-alive answer."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept-Encoding: identity", "User-Agent: bench"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, int]:
    """(status, body bytes) of one HTTP/1.1 answer read to its end, so the connection can carry the next."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        total = 0
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            total += size
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
            pass
        return status, total
    if length is None:
        raise BadAnswer(f"HTTP {status} with neither Content-Length nor chunked: {head[:200]!r}")
    await reader.readexactly(length)
    return status, length


async def _rounds_in_loop(host: str, port: int, path: str, cookies: list[str | None], requests: int,
                          started=None) -> RoundResult:
    """One round of ``requests`` answers over one connection per cookie. ``started``, when given, is called
    once the connections are open (a barrier across processes) before the clock starts."""
    conns = [await asyncio.open_connection(host, port, limit=1 << 22) for _ in cookies]
    budget = [requests]
    latencies: list[float] = []
    size = [0]

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        while budget[0] > 0:
            budget[0] -= 1  # one event loop: no lock needed
            t0 = time.perf_counter()
            writer.write(request)
            status, size[0] = await read_answer(reader)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise BadAnswer(f"GET {path}: HTTP {status}")

    if started is not None:
        started()
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(session(r, w, request_bytes(host, port, path, c)) for (r, w), c in zip(conns, cookies)))
    finally:
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        for _, writer in conns:
            writer.close()
    return RoundResult(latencies, size[0], wall, cpu)


def _worker(host: str, port: int, path: str, cookies: list[str | None], requests: int, barrier, out) -> None:
    passed = []

    def started() -> None:
        barrier.wait()
        passed.append(True)

    try:
        out.send(asyncio.run(_rounds_in_loop(host, port, path, cookies, requests, started)))
    except BaseException as e:  # the parent re-raises it: a failed worker must fail the run
        if not passed:  # only a worker that never reached the barrier must release the others
            barrier.abort()
        out.send(e)
    finally:
        out.close()


def run_round(host: str, port: int, path: str, cookies: list[str | None], requests: int,
              procs: int = 1) -> RoundResult:
    """``requests`` answers of ``path`` over ``len(cookies)`` concurrent sessions, in ``procs`` client processes
    (sessions dealt round-robin, the budget split evenly). Connections are opened before timing."""
    if procs <= 1:
        return asyncio.run(_rounds_in_loop(host, port, path, cookies, requests))
    procs = min(procs, len(cookies))
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    groups = [cookies[i::procs] for i in range(procs)]
    pipes, workers = [], []
    for i, group in enumerate(groups):
        share = requests // procs + (1 if i < requests % procs else 0)
        receive, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_worker, args=(host, port, path, group, share, barrier, send), daemon=True)
        p.start()
        pipes.append(receive)
        workers.append(p)
    try:
        try:
            barrier.wait(600)
        except threading.BrokenBarrierError:  # a worker failed before starting: its pipe carries why
            pass
        t0 = time.perf_counter()
        parts = [pipe.recv() for pipe in pipes]
        wall = time.perf_counter() - t0
    finally:
        for p in workers:
            p.join(30)
    # The cause, not its echo: a worker that fails before the barrier breaks it for the others, whose
    # BrokenBarrierError says only that someone else failed.
    errors = sorted((p for p in parts if isinstance(p, BaseException)),
                    key=lambda e: isinstance(e, threading.BrokenBarrierError))
    if errors:
        raise errors[0]
    return RoundResult([x for part in parts for x in part.latencies_s], parts[-1].body_bytes, wall,
                       sum(part.client_cpu_s for part in parts))
