"""The command line through a running `settle serve` (issue 11 item 6: one door while the server runs).

DuckDB admits one process on a file, so while the server owns the store every other `settle` command goes
through its HTTP API. The server writes ``<db>.server.json`` beside the database (url, pid, started_at and a
local admin credential, mode 0600; ``api.endpoint``). ``find_server`` reads it:
- no file: None (the command opens the store as before);
- a file that is not a regular file, owned by someone else, or readable by group or others: refused, one
  line on stderr, None;
- a stale file (its pid is not running, or nothing answers at its url): one line on stderr, removed, None;
- else a ``Server``: the commands call its routes and rebuild the core's results with ``decode``, so they
  print exactly what they print without a server (same text, CSV bytes and exit codes).

Who acts is sent as ``X-Settle-Acting-As`` (the command's `--by`, else cli:<OS user>; percent-encoded UTF-8,
as a header carries ASCII only: `--by 张三` stays 张三); the server honours it only for its local admin
credential. An API error becomes the CLI's user error: its message on one line, exit 1. Imports nothing of
``api`` (the edges are independent).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import stat
import time
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import quote

import typer

from settlement.cli._app import current_user, fail

if TYPE_CHECKING:
    import httpx  # imported when a server is found: commands without one do not pay for it

ACTING_AS = "X-Settle-Acting-As"
CONNECT_WAIT_S = 3.0  # a server between writing its file and listening answers within this


def endpoint_path(db: Path) -> Path:
    return db.with_name(db.name + ".server.json")


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _refusal(path: Path, st: os.stat_result) -> str | None:
    """Why the endpoint file must not be trusted, or None."""
    if not stat.S_ISREG(st.st_mode):
        return f"ignoring server endpoint file {path}: not a regular file"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"ignoring server endpoint file {path}: owned by uid {st.st_uid}, not by you"
    if st.st_mode & 0o077:
        return (f"ignoring server endpoint file {path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read it "
                "(it holds a credential; it must be 0600)")
    return None


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _answers(url: str) -> bool:
    import httpx

    deadline = time.monotonic() + CONNECT_WAIT_S
    while True:
        try:
            return httpx.get(f"{url}/healthz", timeout=5.0).status_code == 200
        except httpx.TransportError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


def find_server(db: Path) -> Server | None:
    """The server running on ``db`` per its endpoint file, or None (see the module docstring)."""
    path = endpoint_path(db)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    refusal = _refusal(path, st)
    if refusal:
        _warn(refusal)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        url, token, pid = str(data["url"]).rstrip("/"), str(data["token"]), data.get("pid")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _stale(path, f"unreadable ({type(exc).__name__})")
    if not _pid_alive(pid):
        return _stale(path, f"its server (pid {pid}) is not running")
    if not _answers(url):
        return _stale(path, f"nothing answers at {url}")
    return Server(url, token)


def _stale(path: Path, why: str) -> None:
    try:
        path.unlink()
        done = "removed"
    except OSError:
        done = "ignored"
    _warn(f"stale server endpoint file {path} ({why}): {done}; opening the database directly")
    return None


class Server:
    """A running server of the store and the local admin credential to reach it."""

    def __init__(self, url: str, token: str) -> None:
        import httpx

        self.url = url
        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                    timeout=httpx.Timeout(30.0, read=None))

    def call(self, method: str, path: str, *, by: str | None = None, accept: tuple[int, ...] = (),
             **kwargs: Any) -> httpx.Response:
        """One request; a 2xx (or a status in ``accept``) comes back, any other error exits 1 with its message."""
        import httpx

        headers = {ACTING_AS: quote(by or current_user(), safe=" ")}
        params = {k: v for k, v in (kwargs.pop("params", None) or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, headers=headers, params=params, **kwargs)
        except httpx.TransportError as exc:
            fail(f"the server at {self.url} did not answer ({type(exc).__name__}: {exc})")
        if response.is_success or response.status_code in accept:
            return response
        fail(error_message(response))

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()

    def upload(self, path: str, file: Path, *, accept: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        with file.open("rb") as handle:
            return self.call("POST", path, files={"file": (file.name, handle, "application/octet-stream")},
                             accept=accept, **kwargs)


def error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"the server answered {response.status_code}: {response.text[:200]}"


def report_of(response: httpx.Response) -> dict:
    """A file report from 2xx or from a 422 that carries it beside the error; else the error, exit 1."""
    body = response.json()
    if response.is_success:
        return body
    if isinstance(body, dict) and "status" in body:
        return {k: v for k, v in body.items() if k != "error"}
    fail(error_message(response))


# ------------------------------------------------------------------------------------ results from JSON


def decode(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` (dataclasses, Decimal, date, datetime, tuples, lists, dicts, optionals)
    from the JSON the server's ``api.wire`` made of it."""
    if data is None or tp is Any:
        return data
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return decode(kinds[0], data) if len(kinds) == 1 else data
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: decode(hints[f.name], data[f.name])
                     for f in dataclasses.fields(tp) if f.init and f.name in data})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], x) for x in data)
        return tuple(decode(a, x) for a, x in zip(args, data)) if args else tuple(data)
    if origin is list:
        return [decode(args[0], x) for x in data]
    if origin is dict:
        return {decode(args[0], k): decode(args[1], v) for k, v in data.items()}
    return _scalar(tp, data)


def _scalar(tp: Any, data: Any) -> Any:
    if tp is Decimal:
        return Decimal(str(data))
    if tp is dt.datetime:
        return dt.datetime.fromisoformat(data)
    if tp is dt.date:
        return dt.date.fromisoformat(data)
    if tp is int and isinstance(data, str):
        return int(data)
    return data


def payouts_frame(text: str):
    """The payouts CSV of CONTRACT back into the frame ``ledgers.ledger.payouts`` returns."""
    import csv
    import io

    import polars as pl

    rows = list(csv.reader(io.StringIO(text)))[1:]
    return pl.DataFrame(
        {"year": [int(r[0]) for r in rows], "clause": [int(r[1]) for r in rows],
         "beneficiary_id": [r[2] for r in rows], "dataset_id": [r[3] for r in rows],
         "amount": [Decimal(r[4]) for r in rows]},
        schema={"year": pl.Int32, "clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String,
                "amount": pl.Decimal(18, 2)},
    )
