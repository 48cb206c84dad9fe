"""Scope (issues 15 item 6, 16): an operator's upload never reveals or touches another platform's data;
out-of-scope ids answer like missing ones; ``settlement.access.scope`` is the one place that decides.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from settlement.access.scope import (
    Scope,
    visible_dataset,
    visible_payouts,
    visible_upload,
)
from settlement.core import store
from settlement.core.errors import UserError
from settlement.inputs import ingest
from tests.support.api import (
    OWNER_A,
    OWNER_B,
    PLATFORM_A,
    PLATFORM_B,
    ApiEnv,
    append_ledger,
    make_store,
    trade_csv,
    trade_row,
)

A = ApiEnv.auth
ROOT = Path(__file__).resolve().parents[2]


def post(env: ApiEnv, token: str, content: bytes, **params):
    return env.client.post("/v1/uploads", files={"file": ("t.csv", content, "text/csv")}, params=params,
                           headers=A(token))


def upload_ids_named(body: dict) -> set[int]:
    """Every upload id a response names: its id fields and any 'upload N' in its text."""
    ids = {body[k] for k in ("upload_id", "duplicate_of", "id") if isinstance(body.get(k), int)}
    return ids | {int(n) for n in re.findall(r"upload (?:with id )?(\d+)", repr(body))}


def test_replayed_file_of_another_platform_is_rejected_and_names_no_foreign_upload(api: ApiEnv):
    content = trade_csv(trade_row("T1", platform=PLATFORM_B), trade_row("T2", platform=PLATFORM_B, amount="7.00"))
    theirs = post(api, api.operator_b, content)
    assert theirs.status_code == 201, theirs.text
    b_id = theirs.json()["upload_id"]

    r = post(api, api.operator_a, content)  # the same bytes, sent with platform A's token
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == "upload_rejected" and body["status"] == "rejected"
    assert body["duplicate_of"] is None and body["rows_stored"] == 0 and body["rows_rejected"] == 2
    assert [(e["row_number"], e["column"]) for e in body["errors"]] == [(2, "platform_id"), (3, "platform_id")]
    assert b_id not in upload_ids_named(body) and f"upload {b_id}" not in r.text
    assert body["upload_id"] != b_id
    # nothing of A stored; B's upload untouched
    assert api.query("SELECT upload_id, count(*) FROM trade_rows GROUP BY ALL") == [(b_id, 2)]
    assert api.query("SELECT status FROM uploads WHERE id = ?", [b_id]) == [("stored",)]

    # accept_valid changes nothing of that: every row is an error, none stored, no foreign id named
    again = post(api, api.operator_a, content, accept_valid="true")
    assert again.json()["rows_stored"] == 0 and again.json()["duplicate_of"] is None
    assert b_id not in upload_ids_named(again.json())
    assert api.query("SELECT count(*) FROM trade_rows") == [(2,)]


def test_a_duplicate_names_only_an_upload_the_caller_may_read(api: ApiEnv):
    content = trade_csv(trade_row("T1"))
    cur = api.state.cursor()
    try:  # the CLI (no scope) stored these bytes first: platform A's trades, so operator A may see them
        path = api.db.parent / "cli.csv"
        path.write_bytes(content)
        cli_id = ingest.ingest_file(cur, path, uploaded_by="cli-user").upload_id
    finally:
        cur.close()
    r = post(api, api.operator_a, content)
    assert r.status_code == 200 and r.json()["duplicate_of"] == cli_id
    assert api.client.get(f"/v1/uploads/{cli_id}", headers=A(api.operator_a)).status_code == 200
    assert api.client.get(f"/v1/uploads/{cli_id}", headers=A(api.operator_b)).status_code == 404


def test_out_of_scope_ids_answer_exactly_like_missing_ones(api: ApiEnv):
    b_id = post(api, api.operator_b, trade_csv(trade_row("T1", platform=PLATFORM_B))).json()["upload_id"]
    missing = b_id + 100
    for method, path in (("get", "/v1/uploads/{}"), ("post", "/v1/uploads/{}/retract")):
        foreign = getattr(api.client, method)(path.format(b_id), headers=A(api.operator_a))
        absent = getattr(api.client, method)(path.format(missing), headers=A(api.operator_a))
        assert (foreign.status_code, absent.status_code) == (404, 404)
        assert foreign.json() == {"error": {"code": "not_found", "message": f"no upload with id {b_id}", "details": []}}
        assert absent.json() == {"error": {"code": "not_found", "message": f"no upload with id {missing}",
                                           "details": []}}
    assert api.query("SELECT status FROM uploads WHERE id = ?", [b_id]) == [("stored",)]
    # a wrong ROLE stays 403
    assert api.client.get(f"/v1/uploads/{b_id}", headers=A(api.owner_a)).status_code == 403


def test_scope_functions_cut_every_answer(api: ApiEnv):
    append_ledger(api, 2024, [(6, OWNER_A, "DS-A1", "100.00"), (6, OWNER_B, "DS-B1", "30.00"),
                              (7, PLATFORM_A, "", "5.00")])
    a_id = post(api, api.operator_a, trade_csv(trade_row("T1"))).json()["upload_id"]
    cur = api.state.cursor()
    try:
        owner_a, operator_b, regulator = Scope("owner", OWNER_A), Scope("operator", PLATFORM_B), Scope("regulator", None)
        assert visible_payouts(cur, owner_a)["beneficiary_id"].to_list() == [OWNER_A]
        assert visible_payouts(cur, operator_b).is_empty()
        assert visible_payouts(cur, regulator).height == 3
        assert visible_upload(cur, regulator, a_id).id == a_id
        assert visible_upload(cur, Scope("operator", PLATFORM_A), a_id).platform_ids == (PLATFORM_A,)
        for scope in (operator_b, owner_a):
            try:
                visible_upload(cur, scope, a_id)
                raise AssertionError("out of scope upload was visible")
            except UserError as exc:
                assert (exc.code, exc.message) == ("not_found", f"no upload with id {a_id}")
        try:
            visible_dataset(cur, owner_a, "NOPE")
            raise AssertionError("unknown dataset was visible")
        except UserError as exc:
            assert (exc.code, exc.message) == ("not_found", "no dataset 'NOPE' in the dataset registry")
    finally:
        cur.close()


def test_uploads_platform_id_is_set_at_store_time_and_backfilled(api: ApiEnv):
    a_id = post(api, api.operator_a, trade_csv(trade_row("T1"))).json()["upload_id"]
    bad = post(api, api.operator_a, trade_csv(trade_row("T2", amount="x"))).json()["upload_id"]
    dup_only = post(api, api.operator_a, trade_csv(trade_row("T1"), "")).json()  # other bytes, every row stored
    cur = api.state.cursor()
    try:
        path = api.db.parent / "mixed.csv"
        path.write_bytes(trade_csv(trade_row("M1"), trade_row("M2", platform=PLATFORM_B)))
        mixed = ingest.ingest_file(cur, path, uploaded_by="cli-user").upload_id
    finally:
        cur.close()
    expected = {a_id: PLATFORM_A, bad: None, dup_only["upload_id"]: None, mixed: None}
    assert dict(api.query("SELECT id, platform_id FROM uploads")) == expected
    # the migration's backfill gives the same column for an existing store
    api.client.__exit__(None, None, None)
    con = store.connect(api.db)
    try:
        con.execute("ALTER TABLE uploads DROP COLUMN platform_id")
        con.execute("DELETE FROM schema_version WHERE version = 8")
        assert 8 in store.migrate(con)
        assert dict(con.execute("SELECT id, platform_id FROM uploads").fetchall()) == expected
        comment = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'uploads' "
                              "AND column_name = 'platform_id'").fetchall()[0][0]
        assert comment and "platform" in comment
    finally:
        con.close()


def test_store_memory_limit_comes_from_settings_and_the_environment(tmp_path: Path, monkeypatch):
    db = tmp_path / "m.duckdb"
    make_store(db)
    with TestClient(create_app(Settings(db=db, memory_limit="300MB"))) as client:
        cur = client.app.state.api.cursor()
        assert cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "286.1 MiB"
        cur.close()
    monkeypatch.setenv("SETTLE_MEMORY_LIMIT", "200MB")
    assert Settings(db=db).memory_limit == "200MB"


def test_state_does_not_import_auth_and_routes_do_not_import_each_other():
    def imported(path: Path) -> set[str]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        return names | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    assert not {m for m in imported(ROOT / "api/state.py") if m.startswith(("api.auth", "api.deps", "api.routes"))}
    assert "api.deps" not in imported(ROOT / "api/auth.py")
    for route in (ROOT / "api/routes").glob("*.py"):
        if route.name != "__init__.py":
            assert not {m for m in imported(route) if m.startswith("api.routes")}, route.name
