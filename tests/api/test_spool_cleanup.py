"""Issue 15 item 6: a server killed during an upload leaves its spool directory behind; the next server
removes it at start. The kill is a real SIGKILL of a real `settle serve` while a streamed upload is half
sent; only spool directories of dead processes are removed (another live server may share the folder)."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx

from api.upload_stream import remove_spool_leftovers
from tests.support.api import make_store, trade_csv, trade_row
from tests.support.live_server import children, start_server


def _dead_pid() -> int:
    pid = 4_000_000  # above the usual pid_max; checked anyway
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_remove_spool_leftovers_touches_only_dead_uploads(tmp_path: Path):
    root = tmp_path / "spool"
    dead = root / f"{_dead_pid()}-{uuid.uuid4().hex}"
    legacy = root / uuid.uuid4().hex  # the naming of earlier versions
    mine = root / f"{os.getpid()}-{uuid.uuid4().hex}"  # a starting server has no upload of its own yet
    live = root / f"{os.getppid()}-{uuid.uuid4().hex}"  # another live process's upload in progress
    other = root / "notes"
    for d in (dead, legacy, mine, live, other):
        d.mkdir(parents=True)
        (d / "trades.csv").write_bytes(b"x")
    stray = root / uuid.uuid4().hex[:31]  # not a name the spool makes
    stray.write_bytes(b"a file, not a spool directory")
    assert remove_spool_leftovers(root) == 3
    assert sorted(p.name for p in root.iterdir()) == sorted([live.name, other.name, stray.name])
    assert remove_spool_leftovers(tmp_path / "missing") == 0


def _start_upload(url: str, token: str, total: int) -> socket.socket:
    """A POST /v1/uploads whose body is declared ``total`` bytes long; sends the head and the first rows."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "spooltest" + uuid.uuid4().hex[:8]
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"POST /v1/uploads HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n").encode())
    sock.sendall(head + trade_csv(*(trade_row(f"T{i}") for i in range(2000))))
    return sock


def test_a_server_killed_mid_upload_leaves_a_spool_that_the_next_server_removes(tmp_path: Path):
    db = tmp_path / "spool.duckdb"
    made = make_store(db)
    spool_root = db.with_name(db.name + ".uploads")
    server = start_server(db)
    sock = None
    try:
        sock = _start_upload(server.url, made["operator_a"], 50 * 1024 * 1024)
        deadline = time.monotonic() + 20
        spooled: list[Path] = []
        while time.monotonic() < deadline:  # the server is writing the part to its spool file
            spooled = [f for f in spool_root.glob("*/*") if f.stat().st_size > 0] if spool_root.is_dir() else []
            if spooled:
                break
            time.sleep(0.05)
        assert spooled, "the upload never reached the spool folder"
        assert spooled[0].parent.name.startswith(f"{server.pid}-")
        workers = children(server.pid)
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(10)
    finally:
        if sock is not None:
            sock.close()
        server.stop()
    assert spooled[0].exists()  # a killed server cleans nothing up
    deadline = time.monotonic() + 10  # its SQL workers die with it (PR_SET_PDEATHSIG / stdin EOF)
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "api.sql_worker" in Path(f"/proc/{pid}/cmdline").read_text()]
    restarted = start_server(db)
    try:
        assert list(spool_root.iterdir()) == []
        assert not spooled[0].parent.exists()
        r = httpx.post(restarted.url + "/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T1")))},
                       headers={"Authorization": f"Bearer {made['operator_a']}"}, timeout=30)
        assert r.status_code == 201, r.text
        assert list(spool_root.iterdir()) == []  # a finished upload leaves nothing either
    finally:
        restarted.stop()
