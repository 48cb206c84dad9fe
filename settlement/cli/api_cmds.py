"""CLI edge for the HTTP API: `settle serve` and `settle tokens create|list|revoke` (CONTRACT, issue 5).

Parses, calls ``settlement.access.tokens`` / ``api.app`` and formats; holds no rules.
While `settle serve` holds the store the token commands go through its token routes (``/v1/tokens``, with
the server's local admin credential: ``settlement.cli.dispatch``) and print the same; else they open the
file. The server's own local admin token shows in `settle tokens list` while it runs.
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Annotated
from urllib.parse import quote

import typer

from settlement.access import tokens
from settlement.cli import render
from settlement.cli._app import DbOption, choices, current_user, db_path, fail
from settlement.cli.dispatch import api, dispatch
from settlement.cli.remote import Server, decode
from settlement.cli.render import PrintFormat

tokens_app = typer.Typer(no_args_is_help=True, help="API bearer tokens (stored only as hashes).")


Role = choices("Role", "operator", "owner", "regulator")


@tokens_app.command("create")
def tokens_create(
    role: Annotated[Role, typer.Option("--role", help="operator | owner | regulator")],
    platform: Annotated[str | None, typer.Option("--platform", help="operator: the platform's credit code")] = None,
    enterprise: Annotated[str | None, typer.Option("--enterprise", help="owner: the enterprise's credit code")] = None,
    label: Annotated[str | None, typer.Option("--label", help="free note: who holds the token")] = None,
    db: DbOption = None,
) -> None:
    """Create a token; it is printed once, alone on the last line, and stored only as a hash."""
    if role is Role.operator and enterprise or role is Role.owner and platform:
        fail(f"--role {role.value} takes --{'platform' if role is Role.operator else 'enterprise'}, not the other")
    scope = platform or enterprise
    problem = tokens.token_request_problem(role.value, scope)
    if problem:
        fail(problem)
    def remote(server: Server) -> tokens.CreatedToken:
        answer = server.json("POST", "/v1/tokens", json={"role": role.value, "scope_id": scope, "label": label})
        return tokens.CreatedToken(decode(tokens.TokenInfo, answer), answer["token"])

    created = dispatch(db, remote=remote, local=lambda con: tokens.create_token(
        con, role.value, scope_id=scope, label=label, created_by=current_user()))
    info = created.info
    scope_text = f" for {info.scope_id}" if info.scope_id else ""
    typer.echo(f"created {info.role} token {info.token_id}{scope_text} (shown once; only its hash is stored):")
    typer.echo(created.token)


@tokens_app.command("list")
def tokens_list(
    fmt: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    db: DbOption = None,
) -> None:
    """List tokens (ids, roles, scopes, state); never the tokens themselves."""
    infos = dispatch(db, remote=api("GET", "/v1/tokens", shape=list[tokens.TokenInfo]), local=tokens.list_tokens,
                     read_only=True)
    if fmt is not PrintFormat.table:
        records = [i.to_json_dict() for i in infos]
        columns = [f.name for f in fields(tokens.TokenInfo)]
        typer.echo(render.as_json(records) if fmt is PrintFormat.json else render.records_csv(records, columns),
                   nl=fmt is PrintFormat.json)
        return
    typer.echo(render.tokens_table(infos))


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="token id from `settle tokens list`")], db: DbOption = None) -> None:
    """Revoke a token: it gets 401 from then on."""
    def remote(server: Server) -> tokens.TokenInfo | None:  # 404: unknown, said below as without a server
        answer = server.call("POST", f"/v1/tokens/{quote(token_id, safe='')}/revoke", accept=(404,))
        return decode(tokens.TokenInfo, answer.json()) if answer.is_success else None

    info = dispatch(db, remote=remote, local=lambda con: tokens.revoke_token(con, token_id, by=current_user()))
    if info is None:
        fail(f"no token with id {token_id!r} (see `settle tokens list`)")
    typer.echo(f"revoked {info.token_id} ({info.role}{' ' + info.scope_id if info.scope_id else ''})")


def serve(
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="log every request")] = True,
    db: DbOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs). One process owns the database; requests run on a thread pool."""
    import uvicorn

    path = db_path(db)
    if not path.exists():
        fail(f"no database at {path}: run `settle init --db {path}` first")
    # The app reads its settings from the environment (api.settings.Settings, prefix SETTLE_); uvicorn imports
    # it by name, so the CLI edge never imports the API edge (architecture contract, tests/test_architecture.py).
    os.environ["SETTLE_DB"] = str(path)
    # The app writes <db>.server.json with this url, so `settle` commands on the store go through it.
    local = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else \
        f"[{host}]" if ":" in host else host
    os.environ["SETTLE_ENDPOINT_URL"] = f"http://{local}:{port}"
    # One worker process: DuckDB admits a single writing process (see docs/architecture.md "HTTP API").
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=1, log_level="info",
                access_log=access_log)
