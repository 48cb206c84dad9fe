"""End to end through the API: registries loaded, trades uploaded by the operator, the year settled by the
regulator, then payouts and dataset status read by each role (P10, P11, P12 with hand-worked amounts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlement.tools.credit_codes import credit_code
from settlement.inputs.registry import load_registry
from tests.support.api import (  # noqa: F401  (fixtures)
    OWNER_A, OWNER_B, PLATFORM_A, ApiEnv, trade_csv, trade_row,
)

A = ApiEnv.auth
BUYERS = [credit_code(301 + i) for i in range(5)]  # BUYERS[4] is controlled by OWNER_A


def load(env: ApiEnv, kind: str, tmp: Path, text: str) -> None:
    path = tmp / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    cur = env.state.cursor()
    try:
        report = load_registry(cur, kind, path, loaded_by="test")
    finally:
        cur.close()
    assert report.status != "rejected", report


@pytest.fixture
def settled(api: ApiEnv, tmp_path: Path) -> ApiEnv:
    load(api, "datasets", tmp_path, "dataset_id,owner_id,name,certified_on,certified_until\n"
                                    f"DS-A1,{OWNER_A},A's dataset,2023-05-08,\n"
                                    f"DS-B1,{OWNER_B},B's dataset,2023-05-08,\n")
    load(api, "platforms", tmp_path, f"platform_id,name,certified_on,certified_until\n{PLATFORM_A},Platform A,2023-01-01,\n")
    load(api, "affiliations", tmp_path, "a_id,b_id,relation,share,valid_from,valid_to,exempt\n"
                                        f"{OWNER_A},{BUYERS[4]},control,,,,false\n")
    rows = [trade_row(f"T{i}", buyer=b, amount="1000.00", at=f"2024-0{i + 1}-10T10:00:00") for i, b in enumerate(BUYERS[:4])]
    rows.append(trade_row("T4", buyer=BUYERS[4], amount="500.00", at="2024-06-10T10:00:00"))
    rows.append(trade_row("TB", dataset="DS-B1", seller=OWNER_B, buyer=BUYERS[0], amount="300.00"))
    r = api.client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(*rows))}, headers=A(api.operator_a))
    assert r.status_code == 201 and r.json()["rows_stored"] == 6, r.text
    return api


def test_settle_then_read_payouts_and_status_by_role(settled: ApiEnv):
    api = settled
    run = api.client.post("/v1/settlements/2024", headers=A(api.regulator))
    assert run.status_code == 200, run.text
    appended = {(e["clause"], e["beneficiary_id"], e["dataset_id"]): e["amount"] for e in run.json()["appended"]}
    # Clause 6, DS-A1: 4 unrelated callers > 3 (P10.4); BUYERS[4] is related to the owner (control, P5) and
    # excluded (P10.2). base = 4 × 1000.00 = 4000.00; gross = round(10% × 4000.00) = 400.00.
    # DS-B1: 1 caller, not > 3: nothing. Clause 7, platform A: the 4 unrelated sales of DS-A1 plus TB
    # (buyer BUYERS[0] and seller OWNER_B unrelated) = 4300.00; the BUYERS[4] sale is related (P11.2);
    # subsidy = round(1% × 4300.00) = 43.00.
    assert appended == {(6, OWNER_A, "DS-A1"): "400.00", (7, PLATFORM_A, ""): "43.00"}
    assert run.json()["total_appended"] == "443.00"
    again = api.client.post("/v1/settlements/2024", headers=A(api.regulator)).json()
    assert again["appended"] == [] and again["total_appended"] == "0.00"  # unchanged inputs append nothing (P13)

    own = api.client.get("/v1/payouts", params={"year": 2024}, headers=A(api.owner_a)).json()
    assert [(p["clause"], p["dataset_id"], p["amount"]) for p in own["payouts"]] == [(6, "DS-A1", "400.00")]
    assert api.client.get("/v1/payouts", headers=A(api.owner_b)).json()["payouts"] == []
    op = api.client.get("/v1/payouts", headers=A(api.operator_a)).json()
    assert [(p["clause"], p["amount"]) for p in op["payouts"]] == [(7, "43.00")]

    status = api.client.get("/v1/datasets/DS-A1/status", params={"year": 2024}, headers=A(api.owner_a))
    assert status.status_code == 200, status.text
    s = status.json()
    assert (s["unrelated_callers"], s["caller_threshold"], s["callers_missing"], s["qualifies"]) == (4, 3, 0, True)
    assert (s["base"], s["gross"], s["payable"], s["target"], s["ledger_balance"]) == (
        "4000.00", "400.00", "400.00", "400.00", "400.00")
    assert (s["owner_cap"], s["cap_used"], s["cap_remaining"], s["capped"]) == ("1000000.00", "400.00", "999600.00", False)
    assert s["excluded_by_reason"] == {"RELATED_PARTY": 1} and s["excluded_total"] == 1
    assert [(e["trade_id"], e["reason"]) for e in s["excluded"]] == [("T4", "RELATED_PARTY")]

    b = api.client.get("/v1/datasets/DS-B1/status", params={"year": 2024}, headers=A(api.regulator)).json()
    assert (b["unrelated_callers"], b["callers_missing"], b["qualifies"], b["base"], b["gross"]) == (1, 3, False, "300.00", "0.00")


def test_dataset_status_scope_and_not_found(settled: ApiEnv):
    api = settled
    q = {"year": 2024}
    # cross-tenant: owner B asks about owner A's dataset: 404 exactly like a dataset that does not exist
    # (issue 15 item 6); operators have no dataset view at all (wrong role: 403)
    r = api.client.get("/v1/datasets/DS-A1/status", params=q, headers=A(api.owner_b))
    assert r.status_code == 404 and r.json()["error"] == {
        "code": "not_found", "message": "no dataset 'DS-A1' in the dataset registry", "details": []}
    r = api.client.get("/v1/datasets/NOPE/status", params=q, headers=A(api.owner_b))
    assert r.status_code == 404 and r.json()["error"] == {
        "code": "not_found", "message": "no dataset 'NOPE' in the dataset registry", "details": []}
    assert api.client.get("/v1/datasets/DS-A1/status", params=q, headers=A(api.operator_a)).status_code == 403
    r = api.client.get("/v1/datasets/NOPE/status", params=q, headers=A(api.regulator))
    assert r.status_code == 404 and "NOPE" in r.json()["error"]["message"]
    r = api.client.get("/v1/datasets/DS-A1/status", params=q, headers=A(api.owner_a))
    assert r.status_code == 404 and "no settlement run for 2024" in r.json()["error"]["message"]
    assert api.client.get("/v1/datasets/DS-A1/status", headers=A(api.owner_a)).status_code == 422  # year required


def test_retraction_through_the_api_claws_back(settled: ApiEnv):
    api = settled
    api.client.post("/v1/settlements/2024", headers=A(api.regulator))
    upload_id = api.query("SELECT max(id) FROM uploads")[0][0]
    assert api.client.post(f"/v1/uploads/{upload_id}/retract", headers=A(api.operator_a)).status_code == 200
    run = api.client.post("/v1/settlements/2024", headers=A(api.regulator)).json()
    # every trade retracted (P9): both keys are clawed back to zero
    assert sorted((e["clause"], e["amount"], e["kind"]) for e in run["appended"]) == [
        (6, "-400.00", "adjustment"), (7, "-43.00", "adjustment")]
    assert api.client.get("/v1/payouts", headers=A(api.regulator)).json()["payouts"] == []
    assert api.client.get("/v1/ledger/verify", headers=A(api.regulator)).json()["ok"] is True
