"""HTTP API (issue 5): every endpoint and role with FastAPI's test client, cross-tenant attempts included.

401 = missing / unknown / revoked token; 403 = known token of the wrong role; 404 = missing, or another
tenant's resource (the same answer, issue 15 item 6); every error in the CONTRACT envelope
{"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

import pytest

from tests.support.api import (  # noqa: F401  (fixtures)
    BUYER_1, BUYER_2, OWNER_A, OWNER_B, PLATFORM_A, PLATFORM_B, ApiEnv, append_ledger,
    trade_csv, trade_row,
)

A = ApiEnv.auth


def assert_error(response, status: int, code: str, message_part: str = "") -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert message_part in body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body


def spooled_files(env: ApiEnv) -> list:
    root = env.settings.resolved_upload_dir()
    return [p for p in root.rglob("*")] if root.exists() else []


def upload(env: ApiEnv, token: str, content: bytes, name: str = "trades.csv", **params):
    return env.client.post("/v1/uploads", files={"file": (name, content, "text/csv")}, params=params,
                           headers=A(token))


# ---------------------------------------------------------------------------------------------- auth


def test_healthz_needs_no_token(api: ApiEnv):
    r = api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "schema_version": api.query("SELECT max(version) FROM schema_version")[0][0]}


@pytest.mark.parametrize("method,path", [
    ("get", "/v1/payouts"), ("get", "/v1/uploads/1"), ("post", "/v1/uploads/1/retract"),
    ("post", "/v1/settlements/2024"), ("get", "/v1/ledger/verify"), ("post", "/v1/uploads"),
    ("get", "/v1/datasets/DS-A1/status?year=2024"), ("get", "/v1/sql/snapshot"),
])
def test_missing_unknown_and_revoked_tokens_get_401(api: ApiEnv, method: str, path: str):
    call = getattr(api.client, method)
    assert_error(call(path), 401, "unauthorized", "missing bearer token")
    assert_error(call(path, headers=A("stl_not-a-real-token")), 401, "unauthorized", "unknown or revoked")
    assert_error(call(path, headers=A(api.revoked)), 401, "unauthorized", "unknown or revoked")
    assert_error(call(path, headers={"Authorization": "Basic abc"}), 401, "unauthorized")


def test_a_token_revoked_while_serving_is_refused_within_the_reload_interval(api: ApiEnv):
    from settlement.access import tokens

    assert api.client.get("/v1/payouts", headers=A(api.owner_a)).status_code == 200
    cur = api.state.cursor()
    info = tokens.authenticate(cur, api.owner_a)
    tokens.revoke_token(cur, info.token_id, by="test")
    cur.close()
    api.state.token_table.ttl_s = 0  # the server reloads its token table at most every second; now at once
    assert_error(api.client.get("/v1/payouts", headers=A(api.owner_a)), 401, "unauthorized", "unknown or revoked")


def test_sql_without_token_is_401(api: ApiEnv):
    assert_error(api.client.post("/v1/sql", json={"sql": "SELECT 1"}), 401, "unauthorized")


@pytest.mark.parametrize("who,method,path,body", [
    ("owner_a", "post", "/v1/sql", {"sql": "SELECT 1"}),
    ("operator_a", "post", "/v1/sql", {"sql": "SELECT 1"}),
    ("owner_a", "post", "/v1/settlements/2024", None),
    ("operator_a", "post", "/v1/settlements/2024", None),
    ("owner_a", "get", "/v1/ledger/verify", None),
    ("operator_a", "get", "/v1/ledger/verify", None),
    ("owner_a", "get", "/v1/uploads/1", None),
    ("owner_a", "post", "/v1/uploads/1/retract", None),
    ("operator_a", "get", "/v1/datasets/DS-A1/status?year=2024", None),
])
def test_known_token_out_of_role_gets_403(api: ApiEnv, who: str, method: str, path: str, body):
    kwargs = {"headers": A(getattr(api, who))}
    if body is not None:
        kwargs["json"] = body
    r = getattr(api.client, method)(path, **kwargs)
    assert_error(r, 403, "forbidden", "token")


def test_regulator_and_owner_cannot_upload(api: ApiEnv):
    content = trade_csv(trade_row("T1"))
    assert_error(upload(api, api.regulator, content), 403, "forbidden", "needs an operator token")
    assert_error(upload(api, api.owner_a, content), 403, "forbidden", "needs an operator token")
    assert api.query("SELECT count(*) FROM trade_rows") == [(0,)]


# ---------------------------------------------------------------------------------------------- uploads


def test_upload_stores_and_reports_like_the_cli(api: ApiEnv):
    r = upload(api, api.operator_a, trade_csv(trade_row("T1"), trade_row("T2", buyer=BUYER_2, amount="50.25")))
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["status"] == "stored"
    assert (report["rows_read"], report["rows_stored"], report["rows_duplicate"], report["rows_rejected"]) == (2, 2, 0, 0)
    assert report["file_name"] == "trades.csv"
    rows = api.query("SELECT trade_id, platform_id, amount::VARCHAR FROM trades ORDER BY trade_id")
    assert rows == [("T1", PLATFORM_A, "100.00"), ("T2", PLATFORM_A, "50.25")]
    uploaded_by = api.query("SELECT uploaded_by FROM uploads")[0][0]
    assert uploaded_by.startswith("token:tok_")


def test_same_bytes_again_is_200_duplicate_and_stores_nothing(api: ApiEnv):
    content = trade_csv(trade_row("T1"))
    first = upload(api, api.operator_a, content).json()
    r = upload(api, api.operator_a, content)
    assert r.status_code == 200
    assert r.json()["status"] == "duplicate" and r.json()["duplicate_of"] == first["upload_id"]
    assert api.query("SELECT count(*) FROM trade_rows") == [(1,)]


def test_rejected_upload_is_422_with_report_and_envelope_and_stores_nothing(api: ApiEnv):
    content = trade_csv(trade_row("T1"), trade_row("T2", amount="12.345"))
    r = upload(api, api.operator_a, content)
    body = assert_error(r, 422, "upload_rejected", "nothing stored")
    assert body["status"] == "rejected" and body["rows_rejected"] == 1 and body["rows_stored"] == 0
    assert [(e["row_number"], e["column"]) for e in body["errors"]] == [(3, "amount")]  # header = row 1
    assert body["error"]["details"] == body["errors"]
    assert api.query("SELECT count(*) FROM trade_rows") == [(0,)]


def test_accept_valid_stores_good_rows_and_is_201_partial(api: ApiEnv):
    content = trade_csv(trade_row("T1"), trade_row("T2", amount="12.345"))
    r = upload(api, api.operator_a, content, accept_valid="true")
    assert r.status_code == 201
    assert (r.json()["status"], r.json()["rows_stored"], r.json()["rows_rejected"]) == ("partial", 1, 1)
    assert api.query("SELECT trade_id FROM trades") == [("T1",)]


def test_operator_cannot_upload_another_platforms_trades(api: ApiEnv):
    r = upload(api, api.operator_a, trade_csv(trade_row("T1", platform=PLATFORM_B)))
    body = assert_error(r, 422, "upload_rejected")
    assert body["errors"][0]["column"] == "platform_id"
    assert api.query("SELECT count(*) FROM trade_rows") == [(0,)]


def test_upload_over_the_cap_is_413_and_leaves_no_spool_file(api: ApiEnv):
    big = trade_csv(*(trade_row(f"T{i}") for i in range(20_000)))  # ~2 MB > 1 MB cap of the fixture
    assert len(big) > api.settings.upload_max_bytes
    assert_error(upload(api, api.operator_a, big), 413, "payload_too_large", str(api.settings.upload_max_bytes))
    assert api.query("SELECT count(*) FROM uploads") == [(0,)]
    assert spooled_files(api) == []


def test_upload_cap_is_enforced_while_streaming_without_content_length(api: ApiEnv):
    boundary = "XyZ"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\n\r\n").encode()
    payload += b"x" * (api.settings.upload_max_bytes + 10) + f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    r = api.client.post("/v1/uploads", content=chunks(), headers={
        **A(api.operator_a), "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_error(r, 413, "payload_too_large")
    assert spooled_files(api) == []


def test_upload_that_exhausts_database_memory_is_503_and_cleans_up(api: ApiEnv, monkeypatch):
    import duckdb

    from settlement.inputs import ingest

    def out_of_memory(*args, **kwargs):
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block of size 256.0 KiB")

    monkeypatch.setattr(ingest, "ingest_file", out_of_memory)
    assert_error(upload(api, api.operator_a, trade_csv(trade_row("T1"))), 503, "out_of_memory", "SETTLE_MEMORY_LIMIT")
    assert spooled_files(api) == []
    assert api.client.get("/healthz").status_code == 200


def test_upload_needs_multipart_with_a_file_part(api: ApiEnv):
    r = api.client.post("/v1/uploads", content=b"trade_id\n", headers={**A(api.operator_a), "Content-Type": "text/csv"})
    assert_error(r, 415, "unsupported_media_type", "multipart/form-data")
    r = api.client.post("/v1/uploads", data={"other": "x"}, files={"notfile": ("a.csv", b"x")}, headers=A(api.operator_a))
    assert_error(r, 422, "validation_error", "'file'")


def test_upload_file_name_keeps_only_the_base_name(api: ApiEnv):
    r = upload(api, api.operator_a, trade_csv(trade_row("T1")), name="../../etc/evil.csv")
    assert r.status_code == 201
    assert r.json()["file_name"] == "evil.csv"


def test_get_upload_scope(api: ApiEnv):
    uid = upload(api, api.operator_a, trade_csv(trade_row("T1"))).json()["upload_id"]
    r = api.client.get(f"/v1/uploads/{uid}", headers=A(api.operator_a))
    assert r.status_code == 200 and r.json()["platform_ids"] == [PLATFORM_A] and r.json()["status"] == "stored"
    assert api.client.get(f"/v1/uploads/{uid}", headers=A(api.regulator)).status_code == 200
    # another platform's upload answers exactly like a missing one: same status, same message shape
    foreign = assert_error(api.client.get(f"/v1/uploads/{uid}", headers=A(api.operator_b)), 404, "not_found")
    missing = assert_error(api.client.get("/v1/uploads/999", headers=A(api.operator_a)), 404, "not_found", "999")
    assert foreign["error"]["message"] == f"no upload with id {uid}"
    assert missing["error"]["message"] == "no upload with id 999"


def test_operator_sees_its_own_rejected_upload_but_not_anothers(api: ApiEnv):
    uid = upload(api, api.operator_a, trade_csv(trade_row("T1", amount="x"))).json()["upload_id"]
    assert api.client.get(f"/v1/uploads/{uid}", headers=A(api.operator_a)).json()["status"] == "rejected"
    assert_error(api.client.get(f"/v1/uploads/{uid}", headers=A(api.operator_b)), 404, "not_found",
                 f"no upload with id {uid}")


def test_retract_scope_and_conflict(api: ApiEnv):
    uid = upload(api, api.operator_a, trade_csv(trade_row("T1"))).json()["upload_id"]
    assert_error(api.client.post(f"/v1/uploads/{uid}/retract", headers=A(api.operator_b)), 404, "not_found",
                 f"no upload with id {uid}")
    assert api.query("SELECT retracted FROM trades") == [(False,)]
    r = api.client.post(f"/v1/uploads/{uid}/retract", headers=A(api.operator_a))
    assert r.status_code == 200 and r.json()["status"] == "retracted" and r.json()["retracted_at"]
    assert api.query("SELECT retracted FROM trades") == [(True,)]  # stays stored for audit (P9)
    assert_error(api.client.post(f"/v1/uploads/{uid}/retract", headers=A(api.regulator)), 409, "conflict",
                 "already retracted")
    assert_error(api.client.post("/v1/uploads/999/retract", headers=A(api.regulator)), 404, "not_found")


def test_regulator_can_retract_any_upload(api: ApiEnv):
    uid = upload(api, api.operator_b, trade_csv(trade_row("T1", platform=PLATFORM_B))).json()["upload_id"]
    assert api.client.post(f"/v1/uploads/{uid}/retract", headers=A(api.regulator)).status_code == 200


# ---------------------------------------------------------------------------------------------- payouts


def seed_ledger(api: ApiEnv) -> None:
    append_ledger(api, 2024, [
        (6, OWNER_A, "DS-A1", "100.00"),
        (6, OWNER_B, "DS-B1", "30.00"),
        (7, PLATFORM_A, "", "5.00"),
    ])
    append_ledger(api, 2025, [(6, OWNER_A, "DS-A1", "7.10")])


def test_payouts_by_role(api: ApiEnv):
    seed_ledger(api)
    reg = api.client.get("/v1/payouts", headers=A(api.regulator)).json()
    assert reg["scope"] == "all"
    assert [(p["year"], p["clause"], p["beneficiary_id"], p["dataset_id"], p["amount"]) for p in reg["payouts"]] == sorted([
        (2024, 6, OWNER_A, "DS-A1", "100.00"), (2024, 6, OWNER_B, "DS-B1", "30.00"),
        (2024, 7, PLATFORM_A, "", "5.00"), (2025, 6, OWNER_A, "DS-A1", "7.10")])
    assert reg["total"] == "142.10"  # 100.00 + 30.00 + 5.00 + 7.10

    own = api.client.get("/v1/payouts", headers=A(api.owner_a), params={"year": 2024}).json()
    assert own["scope"] == f"owner {OWNER_A}" and own["year"] == 2024
    assert [(p["beneficiary_id"], p["dataset_id"], p["amount"]) for p in own["payouts"]] == [(OWNER_A, "DS-A1", "100.00")]
    assert own["total"] == "100.00"

    op = api.client.get("/v1/payouts", headers=A(api.operator_a)).json()
    assert [(p["clause"], p["beneficiary_id"], p["amount"]) for p in op["payouts"]] == [(7, PLATFORM_A, "5.00")]

    # cross-tenant: B's owner and B's operator see nothing of A
    assert [p["beneficiary_id"] for p in api.client.get("/v1/payouts", headers=A(api.owner_b)).json()["payouts"]] == [OWNER_B]
    assert api.client.get("/v1/payouts", headers=A(api.operator_b)).json()["payouts"] == []


def test_payouts_answer_follows_the_ledger_through_its_cache(api: ApiEnv):
    seed_ledger(api)
    first = api.client.get("/v1/payouts", params={"year": 2025}, headers=A(api.owner_a)).json()
    assert [p["amount"] for p in first["payouts"]] == ["7.10"]
    append_ledger(api, 2025, [(6, OWNER_A, "DS-A1", "9.99")])  # adjustment +2.89 appended
    again = api.client.get("/v1/payouts", params={"year": 2025}, headers=A(api.owner_a)).json()
    assert [p["amount"] for p in again["payouts"]] == ["9.99"] and again["total"] == "9.99"


def test_payouts_year_validation_is_422_envelope(api: ApiEnv):
    body = assert_error(api.client.get("/v1/payouts", params={"year": "abc"}, headers=A(api.regulator)), 422,
                        "validation_error", "year")
    assert body["error"]["details"][0]["loc"] == ["query", "year"]


# ---------------------------------------------------------------------------------------------- ledger, runs


def test_ledger_verify_for_regulator(api: ApiEnv):
    seed_ledger(api)
    r = api.client.get("/v1/ledger/verify", headers=A(api.regulator))
    assert r.status_code == 200
    assert r.json()["ok"] is True and r.json()["entries_checked"] == 4 and r.json()["runs_checked"] == 2


# ---------------------------------------------------------------------------------------------- misc errors


def test_unknown_route_and_wrong_method_use_the_envelope(api: ApiEnv):
    assert_error(api.client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(api.client.delete("/v1/payouts", headers=A(api.regulator)), 405, "method_not_allowed")
    r = api.client.delete("/v1/tokens", headers=A(api.regulator))
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"  # every route of the path, not the first


def test_openapi_documents_every_route_with_bearer_auth(api: ApiEnv):
    spec = api.client.get("/openapi.json").json()
    assert {"/healthz", "/v1/payouts", "/v1/uploads", "/v1/uploads/{upload_id}", "/v1/uploads/{upload_id}/retract",
            "/v1/settlements/{year}", "/v1/ledger/verify", "/v1/sql",
            "/v1/datasets/{dataset_id}/status"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    upload_op = spec["paths"]["/v1/uploads"]["post"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
    assert {"201", "401", "403", "413", "422"} <= set(upload_op["responses"])
    assert api.client.get("/docs").status_code == 200


def test_rejected_rows_come_back_in_the_files_own_columns_by_the_reports_link(api: ApiEnv):
    """Issue 10 item 4: the API report links to the rejected rows, as `settle ingest --errors-out` writes them."""
    content = trade_csv(trade_row("T1"), trade_row("T2", amount="12.345"), trade_row("T3", amount="1.2.3"))
    body = assert_error(upload(api, api.operator_a, content), 422, "upload_rejected")
    uid = body["upload_id"]
    assert body["rejected_rows_url"] == f"/v1/uploads/{uid}/rejected-rows"
    r = api.client.get(body["rejected_rows_url"], headers=A(api.operator_a))
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="upload-{uid}-rejected-rows.csv"'
    lines = r.content.decode("utf-8-sig").splitlines()
    sent = content.decode().splitlines()
    assert lines[0] == sent[0] + ",error_column,error_reason"
    assert [line.rsplit(",", 2)[0] for line in lines[1:]] == [sent[2], sent[3]]  # rows 3 and 4, as sent
    assert [line.split(",")[-2] for line in lines[1:]] == ["amount", "amount"]
    # the other platform's operator cannot tell it exists; the regulator can read it
    assert_error(api.client.get(body["rejected_rows_url"], headers=A(api.operator_b)), 404, "not_found")
    assert api.client.get(body["rejected_rows_url"], headers=A(api.regulator)).content == r.content
    stored = upload(api, api.operator_a, trade_csv(trade_row("T9")))
    assert stored.status_code == 201 and stored.json()["rejected_rows_url"] is None
    missing = api.client.get(f"/v1/uploads/{stored.json()['upload_id']}/rejected-rows", headers=A(api.operator_a))
    assert_error(missing, 404, "not_found", "has no rejected rows kept by the server")


def test_an_xlsx_uploads_rejected_rows_come_back_as_xlsx(api: ApiEnv, tmp_path):
    import polars as pl
    import xlsxwriter

    rows = [line.split(",") for line in trade_csv(trade_row("T1"), trade_row("T2", amount="12.345")).decode().splitlines()]
    book_path = tmp_path / "trades.xlsx"
    book = xlsxwriter.Workbook(str(book_path))
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write_string(r, c, value)
    book.close()
    r = api.client.post("/v1/uploads", files={"file": ("trades.xlsx", book_path.read_bytes(), "application/octet-stream")},
                        headers=A(api.operator_a))
    body = assert_error(r, 422, "upload_rejected")
    got = api.client.get(body["rejected_rows_url"], headers=A(api.operator_a))
    assert got.headers["content-disposition"] == f'attachment; filename="upload-{body["upload_id"]}-rejected-rows.xlsx"'
    (tmp_path / "back.xlsx").write_bytes(got.content)
    back = pl.read_excel(tmp_path / "back.xlsx", infer_schema_length=0)
    assert back.columns == rows[0] + ["error_column", "error_reason"]
    assert back.rows() == [tuple(rows[2]) + ("amount", "not a plain decimal with at most 2 decimals (digits and one '.')")]
