"""The server's endpoint file and its local admin credential (issue 11 item 6: one door while the server runs).

While `settle serve` owns the DuckDB file no other process can open it, so the CLI goes through the API.
At start the server creates a fresh regulator token labelled ``local admin (endpoint file)`` (stored
hashed like every token) and writes ``<db>.server.json`` beside the database, mode 0600: url, pid,
started_at, db, token_id and the token. At shutdown the token is revoked and the file removed. Local admin
tokens left live by a server that died are revoked at the next start.

``ActorDep`` names who acts: the ``X-Settle-Acting-As`` header (the CLI's ``--by`` / OS user, percent-encoded
UTF-8) when the caller holds the local admin credential, else the token itself (``token:<id>``), so four eyes
compares the real people. ``LocalAdminDep`` admits only that credential. Must not import the routes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote

import duckdb
from fastapi import Depends, Request

from api.auth import current_token
from api.errors import ApiError
from settlement.access import tokens
from settlement.access.tokens import TokenInfo

LABEL = "local admin (endpoint file)"
ACTING_AS = "X-Settle-Acting-As"
URL_ENV = "SETTLE_ENDPOINT_URL"  # set by `settle serve`; without it (tests, other hosts) no file is written
MAX_ACTOR = 200


def endpoint_path(db: Path) -> Path:
    return db.with_name(db.name + ".server.json")


@dataclass(frozen=True)
class LocalAdmin:
    token_id: str
    path: Path
    pid: int


def publish(writer: duckdb.DuckDBPyConnection, db: Path) -> LocalAdmin | None:
    """Create the local admin token and write the endpoint file (only when `settle serve` gave a url)."""
    url = os.environ.get(URL_ENV)
    if not url:
        return None
    pid = os.getpid()
    for info in tokens.list_tokens(writer):  # a server that died left its credential live: end it
        if info.live and info.label == LABEL:
            tokens.revoke_token(writer, info.token_id, by=f"server:{pid} (start)")
    created = tokens.create_token(writer, "regulator", label=LABEL, created_by=f"server:{pid}")
    path = endpoint_path(db)
    body = {"url": url.rstrip("/"), "pid": pid, "db": str(db.resolve()),
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "token_id": created.info.token_id, "token": created.token}
    tmp = path.with_name(f"{path.name}.{pid}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, json.dumps(body, indent=2).encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return LocalAdmin(token_id=created.info.token_id, path=path, pid=pid)


def withdraw(writer: duckdb.DuckDBPyConnection, admin: LocalAdmin | None) -> None:
    """Revoke the local admin token; remove the endpoint file if it is still this server's."""
    if admin is None:
        return
    try:
        tokens.revoke_token(writer, admin.token_id, by=f"server:{admin.pid} (shutdown)")
    finally:
        try:
            if json.loads(admin.path.read_text(encoding="utf-8")).get("pid") == admin.pid:
                admin.path.unlink()
        except (OSError, ValueError):
            pass


def local_admin_id(request: Request) -> str | None:
    admin = getattr(request.app.state, "local_admin", None)
    return admin.token_id if admin is not None else None


async def acting(request: Request, token: TokenInfo = Depends(current_token)) -> str:
    """Who acts: the named person for the local admin credential, else the token."""
    named = " ".join(unquote(request.headers.get(ACTING_AS, "")).split())  # percent-encoded UTF-8: 张三
    if named and token.token_id == local_admin_id(request):
        return named[:MAX_ACTOR]
    return token.who


async def local_admin(request: Request, token: TokenInfo = Depends(current_token)) -> TokenInfo:
    if token.token_id != local_admin_id(request):
        raise ApiError(403, "forbidden", "this endpoint is for the server's local admin credential "
                                         "(the `settle` command line on the server's machine)")
    return token


ActorDep = Annotated[str, Depends(acting)]
LocalAdminDep = Annotated[TokenInfo, Depends(local_admin)]
