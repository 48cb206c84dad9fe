"""One door for every command that reads or changes the store: through a running `settle serve`, or the file.

DuckDB admits one process on a file, so while the server owns the store a command goes through its API
(``settlement.cli.remote``), else it opens the file itself (issue 11 item 6). ``dispatch`` makes that choice
once for every command; the command gives the two ways to the same result and prints that result with one
formatter, so its body reads parse → dispatch → format:

    event = dispatch(db, remote=api("POST", f"/v1/runs/{run_id}/reject", by=by, json=..., pick="event"),
                     local=lambda con: reject_run(con, run_id, by=by, reason=reason))
    typer.echo(f"run {run_id} rejected by {by} (record {event})")

The remote side rebuilds the core's own result from the JSON (``decode``), so the formatter cannot tell
the two apart: same text, CSV bytes and exit codes either way. Errors keep their paths: an API error exits
1 with its message (``remote.Server.call``), a store that cannot be opened exits 1 (``_app.opened_store``),
a ``UserError`` of the core exits 1 (``_app.exit_code_of``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

import duckdb

from settlement.cli._app import fail, opened_store, server_for
from settlement.cli.remote import Server, decode

T = TypeVar("T")

Remote = Callable[[Server], T]
Local = Callable[[duckdb.DuckDBPyConnection], T]


def dispatch(db: Path | None, *, remote: Remote[T], local: Local[T], read_only: bool = False) -> T:
    """``remote(server)`` when `settle serve` owns this invocation's store, else ``local(con)`` on the opened
    file (read-only when asked; closed afterwards, also when ``local`` fails)."""
    server = server_for(db)
    if server is not None:
        return remote(server)
    with opened_store(db, read_only=read_only) as con:
        return local(con)


def api(method: str, path: str, *, shape: Any = Any, pick: str | None = None, **request: Any) -> Remote[Any]:
    """The usual remote side: one request (``by``, ``params``, ``json`` as ``Server.call`` takes them), its JSON
    answer, or the field ``pick`` of it, rebuilt as the core's ``shape`` (``Any``: the JSON as it is)."""

    def call(server: Server) -> Any:
        answer = server.json(method, path, **request)
        return decode(shape, answer if pick is None else answer[pick])

    return call


def store_only(message: str) -> Remote[Any]:
    """The remote side of a command that only works on the file: refuse with ``message`` (exit 1)."""

    def refuse(server: Server) -> NoReturn:
        fail(message)

    return refuse
