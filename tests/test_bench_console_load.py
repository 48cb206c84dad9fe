"""The console benchmark's load generator (bench/console_load.py) against a small keep-alive HTTP/1.1 server:
each session its own connection and cookie, every answer read to its end (Content-Length and chunked), the
exact request count, a non-200 answer failing the run."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import console_load  # noqa: E402


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries a session's requests
    seen: list[tuple[int, str, str]] = []  # (client port, path, cookie)
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with self.lock:
            # this server's own list: a handler thread of an earlier test's server, still answering a late
            # request of that test's client, must not write into the current test's list
            self.server.seen.append((self.client_address[1], self.path, self.headers.get("Cookie", "")))
        if self.path == "/len":
            body = b"x" * 1234
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = _Handler.seen = []  # the tests read _Handler.seen: the current server's requests
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_the_request_is_a_kept_alive_uncompressed_get_with_the_session_cookie():
    assert console_load.request_bytes("127.0.0.1", 8000, "/", "settle_session=abc") == (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept-Encoding: identity\r\nUser-Agent: bench\r\n"
        b"Cookie: settle_session=abc\r\n\r\n")


def test_each_session_keeps_one_connection_and_its_own_cookie(server):
    result = console_load.run_round("127.0.0.1", server, "/len", ["s=1", "s=2", "s=3"], 10)
    assert len(result.latencies_s) == 10 and all(x > 0 for x in result.latencies_s)
    assert result.body_bytes == 1234
    assert len(_Handler.seen) == 10
    by_port = {}
    for port, path, cookie in _Handler.seen:
        assert path == "/len"
        by_port.setdefault(port, set()).add(cookie)
    assert sorted(c for cookies in by_port.values() for c in cookies) == ["s=1", "s=2", "s=3"]
    assert all(len(cookies) == 1 for cookies in by_port.values()) and len(by_port) == 3


def test_chunked_answers_with_trailers_are_read_to_their_end(server):
    result = console_load.run_round("127.0.0.1", server, "/chunked", ["s=1"], 4)
    assert (len(result.latencies_s), result.body_bytes) == (4, 12)
    assert len({port for port, _, _ in _Handler.seen}) == 1  # the 4 answers came back on one connection


def test_a_non_200_answer_fails_the_round(server):
    with pytest.raises(console_load.BadAnswer, match=r"^GET /missing: HTTP 404$"):
        console_load.run_round("127.0.0.1", server, "/missing", ["s=1", "s=2"], 5)


def test_several_client_processes_share_the_sessions_and_the_budget(server):
    result = console_load.run_round("127.0.0.1", server, "/len", ["s=1", "s=2", "s=3"], 7, procs=2)
    assert (len(result.latencies_s), result.body_bytes) == (7, 1234)
    assert len(_Handler.seen) == 7
    assert {cookie for _, _, cookie in _Handler.seen} == {"s=1", "s=2", "s=3"}


def test_a_failing_client_process_fails_the_run(server):
    with pytest.raises(console_load.BadAnswer, match=r"^GET /missing: HTTP 404$"):
        console_load.run_round("127.0.0.1", server, "/missing", ["s=1", "s=2"], 4, procs=2)


def test_a_client_process_that_cannot_connect_fails_the_run_with_its_own_error():
    # a port nobody listens on: every worker fails before the barrier; the cause is raised, not the broken barrier
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        console_load.run_round("127.0.0.1", port, "/len", ["s=1", "s=2"], 4, procs=2)
