"""The routes the command line uses while the server runs (issue 11 item 6) and the local admin credential:
the endpoint file (0600, revoked and removed at shutdown), X-Settle-Acting-As honoured only for it, the
unscoped upload only for it, uploads list cut to scope, payouts.csv as the CLI's CSV, lifecycle four eyes."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledgers import ledger
from settlement.core import store
from settlement.tools.credit_codes import credit_code
from tests.support.api import PLATFORM_A, ApiEnv, make_store, trade_csv, trade_row

ACT = "X-Settle-Acting-As"


@pytest.fixture
def served(api_settings, monkeypatch):
    """The app as `settle serve` runs it: with an endpoint url, so it writes <db>.server.json."""
    monkeypatch.setenv("SETTLE_ENDPOINT_URL", "http://127.0.0.1:1")
    made = make_store(api_settings.db)
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as client:
        env = ApiEnv(client=client, db=api_settings.db, settings=api_settings, **made)
        path = api_settings.db.with_name(api_settings.db.name + ".server.json")
        yield env, path, json.loads(path.read_text())


def auth(token: str, acting: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **({ACT: acting} if acting else {})}


def test_endpoint_file_lifecycle(api_settings, monkeypatch):
    monkeypatch.setenv("SETTLE_ENDPOINT_URL", "http://127.0.0.1:1")
    make_store(api_settings.db)
    path = api_settings.db.with_name(api_settings.db.name + ".server.json")
    with TestClient(create_app(api_settings)) as client:
        assert path.stat().st_mode & 0o777 == 0o600
        data = json.loads(path.read_text())
        assert data["url"] == "http://127.0.0.1:1" and data["token_id"].startswith("tok_")
        assert client.get("/v1/uploads", headers=auth(data["token"])).status_code == 200
    assert not path.exists()
    con = store.open_store(api_settings.db)
    try:
        label, revoked = con.execute("SELECT label, revoked_at IS NOT NULL FROM api_tokens WHERE token_id = ?",
                                     [data["token_id"]]).fetchall()[0]
    finally:
        con.close()
    assert label == "local admin (endpoint file)" and revoked


def test_no_endpoint_file_without_a_url(api: ApiEnv):
    assert not api.db.with_name(api.db.name + ".server.json").exists()


def test_local_upload_is_regulator_scope_and_names_the_person(served):
    env, _, data = served
    body = trade_csv(trade_row("t1"), trade_row("t2"))
    files = {"file": ("t.csv", body, "text/csv")}
    refused = env.client.post("/v1/local-uploads", files=files, headers=auth(env.regulator, "someone"))
    assert refused.status_code == 403
    made = env.client.post("/v1/local-uploads", files=files, headers=auth(data["token"], "cli:alice"))
    assert made.status_code == 201 and made.json()["rows_stored"] == 2
    listed = env.client.get("/v1/uploads", headers=auth(env.regulator)).json()
    assert [(u["file_name"], u["uploaded_by"]) for u in listed] == [("t.csv", "cli:alice")]
    assert env.client.get("/v1/uploads", headers=auth(env.operator_b)).json() == []
    again = env.client.post("/v1/local-uploads", files=files, headers=auth(data["token"]))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    bad = env.client.post("/v1/local-uploads", files={"file": ("b.csv", b"x\n1\n", "text/csv")},
                          headers=auth(data["token"]))
    assert bad.status_code == 422 and bad.json()["status"] == "rejected" and "error" in bad.json()


def test_acting_as_is_ignored_for_other_tokens(served):
    env, _, _ = served
    up = env.client.post("/v1/uploads", files={"file": ("a.csv", trade_csv(trade_row("t9")), "text/csv")},
                         headers=auth(env.operator_a, "cli:mallory"))
    assert up.status_code == 201
    summary = env.client.post(f"/v1/uploads/{up.json()['upload_id']}/retract",
                              headers=auth(env.regulator, "cli:mallory"))
    assert summary.status_code == 200
    assert env.query("SELECT uploaded_by FROM uploads")[0][0].startswith("token:")
    assert PLATFORM_A in summary.json()["platform_ids"]


def test_settle_payouts_csv_and_four_eyes(served):
    env, _, data = served
    rows = [trade_row(f"t{i}", buyer=credit_code(400 + i)) for i in range(5)]
    files = {"file": ("t.csv", trade_csv(*rows), "text/csv")}
    assert env.client.post("/v1/local-uploads", files=files, headers=auth(data["token"], "cli:a")).status_code == 201
    ran = env.client.post("/v1/settlements", headers=auth(data["token"], "cli:starter"))
    assert ran.status_code == 200 and ran.json()["no_run"] is None
    csv_text = env.client.get("/v1/payouts.csv", headers=auth(env.regulator)).text
    assert csv_text == ledger.payouts_csv(ledger.payouts(env.state.cursor()))
    assert env.client.get("/v1/payouts.csv?state=approved", headers=auth(env.owner_a)).status_code == 403
    runs = env.client.get("/v1/runs", headers=auth(env.regulator)).json()
    assert runs and {r["started_by"] for r in runs} == {"cli:starter"}
    for run in (r for r in runs if r["state"] == "proposed"):
        same = env.client.post(f"/v1/runs/{run['run_id']}/approve", json={}, headers=auth(data["token"], "cli:starter"))
        assert same.status_code == 403 and "four eyes" in same.json()["error"]["message"]
        ok = env.client.post(f"/v1/runs/{run['run_id']}/approve", json={}, headers=auth(data["token"], "cli:b"))
        assert ok.status_code == 200 and ok.json()["by"] == "cli:b"


def test_explain_without_a_run_is_404_with_the_cli_message(served):
    env, _, _ = served
    got = env.client.get("/v1/explain/platform/913301000000000016?year=2024", headers=auth(env.regulator))
    assert got.status_code in (404, 422)
    assert got.json()["error"]["message"]


def test_payouts_csv_is_the_ledger_csv(api: ApiEnv):
    got = api.client.get("/v1/payouts.csv", headers=auth(api.regulator))
    assert got.status_code == 200 and got.text == ledger.payouts_csv(ledger.payouts(api.state.cursor()))
