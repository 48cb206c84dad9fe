"""The routes that let `settle flags`, `settle flags review`, `settle affiliates explain`, `settle ledger export`
and `settle tokens` work while the server holds the store (issue 11 item 6): regulator only (owner and
operator get 403), exact bodies, the same results the core gives on the same store."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledgers import ledger
from ledgers.export import verify_export
from settlement.core import store
from settlement.inputs import ingest, registry
from settlement.run import run_settlement
from settlement.core.params import load_params
from settlement.tools.credit_codes import credit_code
from tests.support.api import ApiEnv, make_store

SAMPLE = Path(__file__).resolve().parents[2] / "sample_trades"
OWNER = "913301024727064153"  # XH-EDU-QA's owner in the sample registry
TINY_BUYER = credit_code(703)


def thin_trades(path: Path) -> Path:
    """Three callers of 1000.00 and one of 10.00: the dataset qualifies only thanks to the tiny one
    (THIN_THRESHOLD, P10.4 threshold 3)."""
    buyers = [(credit_code(700 + i), amount) for i, amount in enumerate(("1000.00", "1000.00", "1000.00"))]
    rows = [f"THIN-{i},913301108573022438,XH-EDU-QA,{OWNER},{b},2024-06-0{i + 1}T10:00:00+08:00,{a}"
            for i, (b, a) in enumerate(buyers + [(TINY_BUYER, "10.00")])]
    path.write_text("trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def env(api_settings, tmp_path, monkeypatch):
    """A store with the sample registries and a settled 2024 that raises one flag; the app as `settle serve`
    runs it (with its local admin credential)."""
    monkeypatch.setenv("SETTLE_ENDPOINT_URL", "http://127.0.0.1:1")
    made = make_store(api_settings.db)
    con = store.open_store(api_settings.db)
    try:
        for kind in ("datasets", "platforms", "affiliations", "prior_awards"):
            registry.load_registry(con, kind, SAMPLE / f"{kind}.csv", loaded_by="test")
        ingest.ingest_file(con, thin_trades(tmp_path / "thin.csv"), uploaded_by="test")
        run_settlement(con, 2024, params=load_params(), started_by="test")
    finally:
        con.close()
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as client:
        env = ApiEnv(client=client, db=api_settings.db, settings=api_settings, **made)
        admin = json.loads(api_settings.db.with_name(api_settings.db.name + ".server.json").read_text())["token"]
        yield env, admin


def auth(token: str, acting: str | None = None) -> dict[str, str]:
    """``acting`` percent-encoded UTF-8, as the CLI sends it (a header carries ASCII only)."""
    return {"Authorization": f"Bearer {token}", **({"X-Settle-Acting-As": quote(acting, safe=" ")} if acting else {})}


def test_only_regulators(env):
    env, _ = env
    for token in (env.owner_a, env.operator_a):
        for method, path, body in (("GET", "/v1/flags?year=2024", None),
                                   ("POST", "/v1/flags/1/review", {"outcome": "cleared", "comment": "x"}),
                                   ("GET", f"/v1/affiliates/explain?a=P:0001&b={OWNER}", None),
                                   ("GET", "/v1/ledger/export?format=csv", None)):
            got = env.client.request(method, path, json=body, headers=auth(token))
            assert got.status_code == 403, (method, path)
            assert got.json()["error"]["code"] == "forbidden"


def test_flags_of_a_year_and_a_review(env):
    env, admin = env
    got = env.client.get("/v1/flags?year=2024", headers=auth(env.regulator))
    assert got.status_code == 200
    assert got.json() == [{
        "flag_id": 1, "year": 2024, "run_id": 1, "code": "THIN_THRESHOLD", "dataset_id": "XH-EDU-QA",
        "platform_id": None, "parties": sorted([TINY_BUYER, OWNER]), "evidence_trade_ids": ["THIN-3"],
        "figures": {"owner_id": OWNER, "caller_groups": 4, "caller_threshold": 3, "base": "3010.00",
                    "tiny_groups": [f"own:{TINY_BUYER}"], "tiny_net": "10.00", "groups_left": 3,
                    "tiny_share": "0.02"},
        "detail": f"dataset XH-EDU-QA of {OWNER} qualifies with 4 caller groups (needs more than 3, P10.4), "
                  "but its 1 smallest together net only 10.0 of a base of 3010.0 (under 2.0%); without them it has 3",
        "review": None, "reviewed_by": None, "reviewed_at": None, "review_comment": None}]
    reviewed = env.client.post("/v1/flags/1/review", json={"outcome": "confirmed", "comment": " staged buyer "},
                               headers=auth(admin, "审核员 王"))
    assert reviewed.status_code == 200
    body = reviewed.json()
    assert {k: v for k, v in body.items() if k != "reviewed_at"} == {
        "review_id": 1, "flag_id": 1, "outcome": "confirmed", "reviewed_by": "审核员 王", "comment": "staged buyer"}
    again = env.client.get("/v1/flags?year=2024", headers=auth(env.regulator)).json()[0]
    assert (again["review"], again["reviewed_by"], again["reviewed_at"], again["review_comment"]) == \
        ("confirmed", "审核员 王", body["reviewed_at"], "staged buyer")
    by_token = env.client.post("/v1/flags/1/review", json={"outcome": "cleared", "comment": "ok"},
                               headers=auth(env.regulator, "someone else"))  # the header counts only for the CLI
    assert by_token.json()["reviewed_by"].startswith("token:tok_")


def test_flag_refusals_carry_the_core_message(env):
    env, _ = env
    none = env.client.get("/v1/flags?year=2019", headers=auth(env.regulator))
    assert none.status_code == 404
    assert none.json()["error"]["message"] == "no settlement run of 2019: run `settle run --year 2019` first"
    unknown = env.client.post("/v1/flags/9/review", json={"outcome": "cleared", "comment": "x"},
                              headers=auth(env.regulator))
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "no flag 9"
    bad = env.client.post("/v1/flags/1/review", json={"outcome": "maybe", "comment": "x"}, headers=auth(env.regulator))
    assert bad.status_code == 422


def test_affiliates_explain(env):
    env, _ = env
    got = env.client.get("/v1/affiliates/explain", params={"a": " P:0001", "b": "91330110226429547r", "on": "2024-03-01"},
                         headers=auth(env.regulator))
    assert got.status_code == 200
    assert got.json() == {
        "related": True, "a_id": "P:0001", "b_id": "91330110226429547R", "on": "2024-03-01",
        "steps": [{"record_id": 2, "row_number": 3, "a_id": "P:0001", "b_id": "91330110226429547R",
                   "relation": "equity", "share": "0.4", "valid_from": None, "valid_to": None, "verdict": "counts"}],
        "text": "P:0001 and 91330110226429547R are related on 2024-03-01 (P7): P:0001 holds 40% of "
                "91330110226429547R (record 2) ≥ 25% (P6).",
        "equity_threshold": "0.25"}
    outside = env.client.get("/v1/affiliates/explain", params={"a": "P:0001", "b": OWNER, "on": "2030-03-01"},
                             headers=auth(env.regulator))
    assert outside.status_code == 404
    assert outside.json()["error"]["message"] == (
        "policy parameter 'affiliates.equity_threshold' is not in force on 2030-03-01 (valid: 2023-05-08..2026-05-08)"
        " (P6): choose a date inside the policy window")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ledger_export_is_the_file_the_cli_writes(env, tmp_path, fmt):
    env, _ = env
    got = env.client.get(f"/v1/ledger/export?format={fmt}", headers=auth(env.regulator))
    assert got.status_code == 200 and got.headers["X-Ledger-Entries"] == "2"
    assert got.headers["content-type"].startswith("text/csv" if fmt == "csv" else "application/vnd.apache.parquet")
    served, direct = tmp_path / f"served.{fmt}", tmp_path / f"direct.{fmt}"
    served.write_bytes(got.content)
    assert ledger.export(env.state.cursor(), fmt, direct) == 2
    assert served.read_bytes() == direct.read_bytes()
    assert verify_export(served).ok
    assert env.client.get("/v1/ledger/export?format=xlsx", headers=auth(env.regulator)).status_code == 422


def test_token_routes_name_the_person_for_the_local_admin(env):
    env, admin = env
    made = env.client.post("/v1/tokens", json={"role": "regulator", "label": "b"}, headers=auth(admin, "cli:张"))
    assert made.status_code == 201 and made.json()["created_by"] == "cli:张"
    revoked = env.client.post(f"/v1/tokens/{made.json()['token_id']}/revoke", headers=auth(admin, "cli:li"))
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "cli:li"


def bad_rows(path: Path) -> Path:
    """Two good rows and two rejected ones (an amount that is not money, a buyer id with a wrong check character)."""
    good = [f"OK-{i},913301108573022438,XH-EDU-QA,{OWNER},{credit_code(710 + i)},2024-07-01T10:00:00,5.00"
            for i in range(2)]
    bad = [f"BAD-1,913301108573022438,XH-EDU-QA,{OWNER},{credit_code(720)},2024-07-01T10:00:00,abc",
           f"=BAD-2,913301108573022438,XH-EDU-QA,{OWNER},{credit_code(721)[:-1]}0,2024-07-01T10:00:00,5.00"]
    path.write_text("trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n"
                    + "\n".join([good[0], bad[0], good[1], bad[1]]) + "\n")
    return path


@pytest.mark.parametrize("wanted", [None, "csv", "xlsx"])
def test_local_upload_keeps_the_rejected_rows_in_the_format_asked(env, tmp_path, wanted):
    from settlement.inputs.errors_out import write_rejected_rows

    env, admin = env
    file = bad_rows(tmp_path / "bad.csv")
    params = {"rejected_rows_format": wanted} if wanted else {}
    got = env.client.post("/v1/local-uploads", params=params, files={"file": ("bad.csv", file.read_bytes())},
                          headers=auth(admin, "cli:a"))
    assert got.status_code == 422 and got.json()["rows_rejected"] == 2
    upload_id = got.json()["upload_id"]
    assert got.json()["rejected_rows_url"] == f"/v1/uploads/{upload_id}/rejected-rows"
    rows = env.client.get(got.json()["rejected_rows_url"], headers=auth(env.regulator))
    assert rows.status_code == 200
    suffix = ".xlsx" if wanted == "xlsx" else ".csv"  # as asked, else as uploaded (CSV)
    direct = tmp_path / f"direct{suffix}"
    assert write_rejected_rows(env.state.cursor(), upload_id, file, direct) == 2
    if suffix == ".csv":
        assert rows.content == direct.read_bytes()
        lines = rows.content.decode("utf-8-sig").splitlines()
        assert lines[0] == "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,error_column,error_reason"
        assert lines[1] == (f"BAD-1,913301108573022438,XH-EDU-QA,{OWNER},{credit_code(720)},2024-07-01T10:00:00,abc,"
                            "amount,\"not a decimal amount: 'a' is not allowed (only digits, one '.' and ',' between "
                            "groups of three, as in 1,234,567.50)\"")
        assert lines[2].startswith("'=BAD-2,") and ",buyer_id; trade_id," in lines[2] and len(lines) == 3
    else:
        import polars as pl

        served = tmp_path / "served.xlsx"
        served.write_bytes(rows.content)
        assert pl.read_excel(served).equals(pl.read_excel(direct)) and pl.read_excel(served).height == 2
    refused = env.client.post("/v1/local-uploads", params={"rejected_rows_format": "pdf"},
                              files={"file": ("bad.csv", file.read_bytes())}, headers=auth(admin))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_error"
