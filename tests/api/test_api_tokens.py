"""Tokens (issue 5): stored only as SHA-256, roles and scopes checked, revocation, and the CLI commands."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.core import store

from settlement.access import tokens
from settlement.cli import app
from tests.support.api import OWNER_A, PLATFORM_A

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.duckdb"
    store.init(path)
    return path


def settle(db: Path, *args: str):
    return runner.invoke(app, [*args, "--db", str(db)])


def test_token_is_stored_only_as_its_hash(db: Path):
    con = store.open_store(db)
    made = tokens.create_token(con, "operator", scope_id=f"  {PLATFORM_A.lower()} ", created_by="t")
    rows = con.execute("SELECT token_sha256, role, scope_id FROM api_tokens").fetchall()
    assert rows == [(hashlib.sha256(made.token.encode()).hexdigest(), "operator", PLATFORM_A)]  # P4 normalised
    dump = con.execute("SELECT string_agg(t::VARCHAR, '|') FROM api_tokens t").fetchall()[0][0]
    assert made.token not in dump
    assert tokens.authenticate(con, made.token).token_id == made.info.token_id
    assert tokens.authenticate(con, made.token + "x") is None
    assert tokens.authenticate(con, "") is None
    con.close()


@pytest.mark.parametrize("role,scope,problem", [
    ("operator", None, "needs --platform"),
    ("owner", None, "needs --enterprise"),
    ("owner", "91330106MA2XXXXXX1", "not a valid unified social credit code"),
    ("regulator", PLATFORM_A, "takes no platform or enterprise"),
    ("admin", None, "unknown role"),
])
def test_token_request_problems(role, scope, problem):
    assert problem in tokens.token_request_problem(role, scope)


def test_revoked_token_no_longer_authenticates(db: Path):
    con = store.open_store(db)
    made = tokens.create_token(con, "regulator", created_by="t")
    assert tokens.revoke_token(con, made.info.token_id, by="t").revoked_by == "t"
    assert tokens.authenticate(con, made.token) is None
    assert tokens.revoke_token(con, "tok_nothing", by="t") is None
    con.close()


def test_cli_create_prints_the_token_alone_on_the_last_line(db: Path):
    r = settle(db, "tokens", "create", "--role", "owner", "--enterprise", OWNER_A, "--label", "owner A")
    assert r.exit_code == 0, r.output
    token = r.output.rstrip("\n").splitlines()[-1]
    assert token.startswith("stl_") and " " not in token
    con = store.open_store(db, read_only=True)
    info = tokens.authenticate(con, token)
    con.close()
    assert (info.role, info.scope_id, info.label) == ("owner", OWNER_A, "owner A")


def test_cli_list_and_revoke(db: Path):
    created = settle(db, "tokens", "create", "--role", "regulator").output.rstrip("\n").splitlines()
    token = created[-1]
    listed = json.loads(settle(db, "tokens", "list", "--format", "json").output)
    assert [(t["role"], t["revoked_at"]) for t in listed] == [("regulator", None)]
    token_id = listed[0]["token_id"]
    table = settle(db, "tokens", "list").output
    assert token_id in table and "live" in table and token not in table
    assert "sha256" not in json.dumps(listed)
    r = settle(db, "tokens", "revoke", token_id)
    assert r.exit_code == 0 and f"revoked {token_id}" in r.output
    assert json.loads(settle(db, "tokens", "list", "--format", "json").output)[0]["revoked_at"] is not None
    assert "revoked" in settle(db, "tokens", "list").output


@pytest.mark.parametrize("args,message", [
    (["--role", "operator"], "needs --platform"),
    (["--role", "owner", "--enterprise", "nope"], "not a valid unified social credit code"),
    (["--role", "owner", "--platform", PLATFORM_A], "takes --enterprise, not the other"),
    (["--role", "regulator", "--platform", PLATFORM_A], "takes no platform or enterprise"),
])
def test_cli_create_refuses_bad_scopes_with_exit_1(db: Path, args, message):
    r = settle(db, "tokens", "create", *args)
    assert r.exit_code == 1
    assert message in r.output
    con = store.open_store(db, read_only=True)
    assert con.execute("SELECT count(*) FROM api_tokens").fetchall() == [(0,)]
    con.close()


def test_cli_revoke_unknown_is_exit_1(db: Path):
    r = settle(db, "tokens", "revoke", "tok_missing")
    assert r.exit_code == 1 and "no token with id 'tok_missing'" in r.output


# ------------------------------------------------------------------------------------ over HTTP, while serving

from tests.support.api import ApiEnv  # noqa: E402


def test_regulator_manages_tokens_while_the_server_runs(api: ApiEnv):
    A = ApiEnv.auth
    assert api.client.get("/v1/tokens", headers=A(api.owner_a)).status_code == 403
    r = api.client.post("/v1/tokens", json={"role": "owner", "scope_id": OWNER_A, "label": "new"}, headers=A(api.regulator))
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"].startswith("stl_") and new["role"] == "owner" and new["created_by"].startswith("token:tok_")
    assert api.client.get("/v1/payouts", headers=A(new["token"])).status_code == 200  # usable at once
    listed = api.client.get("/v1/tokens", headers=A(api.regulator)).json()
    assert new["token_id"] in [t["token_id"] for t in listed]
    assert new["token"] not in str(listed) and "sha256" not in str(listed)
    r = api.client.post(f"/v1/tokens/{new['token_id']}/revoke", headers=A(api.regulator))
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert api.client.get("/v1/payouts", headers=A(new["token"])).status_code == 401  # refused at once
    assert api.client.post("/v1/tokens/tok_nothing/revoke", headers=A(api.regulator)).status_code == 404
    bad = api.client.post("/v1/tokens", json={"role": "owner", "scope_id": "nope"}, headers=A(api.regulator))
    assert bad.status_code == 422 and "not a valid unified social credit code" in bad.json()["error"]["message"]
