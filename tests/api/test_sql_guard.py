"""Regulator SQL (issue 5): DuckDB's parser decides read-only, a sandbox makes file/network/config access
impossible, a time limit interrupts, a row cap truncates, every query is logged.

The hostile list of the issue: each is refused with a 4xx and a clear message and leaves the database
(every table but sql_log, and the writer's settings) and the file system unchanged.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import duckdb
import pytest

from api.sql_guard import check_read_only, open_sandbox
from tests.support.api import (  # noqa: F401  (fixtures)
    ApiEnv, trade_csv, trade_row,
)

A = ApiEnv.auth


def sql(env: ApiEnv, text: str, token: str | None = None, **extra):
    return env.client.post("/v1/sql", json={"sql": text, **extra}, headers=A(token or env.regulator))


def store_fingerprint(env: ApiEnv) -> dict:
    """Every base table's row count and content hash (sql_log excluded: it must grow), plus the writer's settings."""
    cur = env.state.cursor()
    try:
        tables = [r[0] for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name <> 'sql_log' ORDER BY 1").fetchall()]
        out = {t: cur.execute(f'SELECT count(*), coalesce(sum(hash(t::VARCHAR)), 0) FROM "{t}" t').fetchall()[0]
               for t in tables}
        out["__settings__"] = tuple(cur.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'memory_limit', 'threads') ORDER BY 1").fetchall())
        out["__catalogs__"] = tuple(r[0] for r in cur.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall())
        return out
    finally:
        cur.close()


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".sqlsnap" not in str(p)}


# ------------------------------------------------------------------------------------ wall 1: the parser


@pytest.mark.parametrize("text", [
    "SELECT 1", "select * from trades", "FROM trades", "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "VALUES (1), (2)", "SHOW TABLES", "DESCRIBE trades", "SELECT 1;", "-- note\nSELECT 1",
])
def test_parser_accepts_single_read_statements(text: str):
    assert check_read_only(text, duckdb.connect()) is None


@pytest.mark.parametrize("text,code,message", [
    ("", "sql_empty", "no SQL statement"),
    (" ; ", "sql_empty", "no SQL statement"),
    ("SELEC 1", "sql_syntax", "syntax error"),
    ("SELECT 1; SELECT 2", "sql_not_read_only", "exactly one statement is allowed, got 2"),
    ("COPY trades TO 'x.csv'", "sql_not_read_only", "this is a COPY statement"),
    ("PRAGMA version", "sql_not_read_only", "this is a PRAGMA statement"),
    ("CHECKPOINT", "sql_not_read_only", "this is a CALL statement"),
    ("SET memory_limit = '1GB'", "sql_not_read_only", "this is a SET statement"),
    ("ATTACH 'x.duckdb' AS x", "sql_not_read_only", "this is a ATTACH statement"),
    ("INSTALL httpfs", "sql_not_read_only", "this is a LOAD statement"),
    ("EXPLAIN SELECT 1", "sql_not_read_only", "this is a EXPLAIN statement"),
    ("DELETE FROM trades", "sql_not_read_only", "this is a DELETE statement"),
])
def test_parser_refuses_everything_else(text: str, code: str, message: str):
    refusal = check_read_only(text, duckdb.connect())
    assert refusal is not None and refusal.code == code and message in refusal.message


# ------------------------------------------------------------------------------------ wall 2: the sandbox


def test_sandbox_refuses_file_config_and_catalog_changes_even_without_the_parser(tmp_path: Path):
    snap = tmp_path / "snap.duckdb"
    con = duckdb.connect(str(snap))
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.close()
    sandbox = open_sandbox(snap, memory_limit="256MB", threads=1)
    target = tmp_path / "out.csv"
    for statement, error in [
        (f"COPY (SELECT 1) TO '{target}'", duckdb.PermissionException),
        (f"SELECT * FROM read_text('{tmp_path / 'db.duckdb'}')", duckdb.PermissionException),
        (f"ATTACH '{tmp_path / 'other.duckdb'}' AS other", duckdb.PermissionException),
        ("LOAD httpfs", duckdb.PermissionException),
        ("SET enable_external_access = true", duckdb.InvalidInputException),
        ("SET lock_configuration = false", duckdb.InvalidInputException),
        ("INSERT INTO store.t VALUES (2)", duckdb.Error),  # the snapshot is attached READ_ONLY
    ]:
        with pytest.raises(error):
            sandbox.cursor().execute(statement).fetchall()
    assert not target.exists() and not (tmp_path / "other.duckdb").exists()
    assert sandbox.execute("SELECT count(*) FROM store.t").fetchall() == [(1,)]


# ------------------------------------------------------------------------------------ the hostile list


HOSTILE = [
    # (sql, expected code, words the message must contain)
    ("SELECT * FROM read_csv('/etc/passwd')", "sql_access_denied", "disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "sql_access_denied", "disabled"),
    ("SELECT * FROM read_parquet('/tmp/anything.parquet')", "sql_access_denied", "disabled"),
    ("SELECT * FROM glob('/*')", "sql_access_denied", "disabled"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "sql_access_denied", "disabled"),
    ("SELECT * FROM read_csv('~/.bashrc')", "sql_access_denied", "disabled"),
    ("SELECT * FROM read_blob('{db}')", "sql_access_denied", "disabled"),
    ("SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", "sql_access_denied", "disabled"),
    ("WITH x AS (SELECT 1) SELECT * FROM read_text('{db}')", "sql_access_denied", "disabled"),
    ("COPY trades TO '{tmp}/stolen.csv'", "sql_not_read_only", "COPY"),
    ("COPY (SELECT * FROM trades) TO '{tmp}/stolen.parquet' (FORMAT parquet)", "sql_not_read_only", "COPY"),
    ("EXPORT DATABASE '{tmp}/exported'", "sql_not_read_only", "EXPORT"),
    ("ATTACH '{tmp}/evil.duckdb' AS evil", "sql_not_read_only", "ATTACH"),
    ("INSTALL httpfs", "sql_not_read_only", "LOAD"),
    ("LOAD httpfs", "sql_not_read_only", "LOAD"),
    ("SET enable_external_access = true", "sql_not_read_only", "SET"),
    ("SET lock_configuration = false", "sql_not_read_only", "SET"),
    ("SET memory_limit = '100GB'", "sql_not_read_only", "SET"),
    ("RESET memory_limit", "sql_not_read_only", "SET"),
    ("PRAGMA database_size", "sql_not_read_only", "PRAGMA"),
    ("CHECKPOINT", "sql_not_read_only", "CALL"),
    ("CREATE TABLE evil (a INT)", "sql_not_read_only", "CREATE"),
    ("INSERT INTO uploads SELECT * FROM uploads", "sql_not_read_only", "INSERT"),
    ("UPDATE uploads SET status = 'stored'", "sql_not_read_only", "UPDATE"),
    ("DELETE FROM trade_rows", "sql_not_read_only", "DELETE"),
    ("DROP TABLE trade_rows", "sql_not_read_only", "DROP"),
    ("SELECT 1; DROP TABLE trade_rows", "sql_not_read_only", "exactly one statement"),
    ("SELECT getenv('HOME')", "sql_error", "getenv does not exist"),
    ("SELECT * FROM duckdb_secrets()", "sql_access_denied", "disabled"),
]


def test_hostile_sql_is_refused_and_changes_nothing(api: ApiEnv):
    upload = api.client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T1")))},
                             headers=A(api.operator_a))
    assert upload.status_code == 201
    before, files_before = store_fingerprint(api), files_under(api.db.parent)
    for template, code, words in HOSTILE:
        text = template.format(db=api.db, tmp=api.db.parent)
        r = sql(api, text)
        assert r.status_code == 400, (text, r.text)
        assert r.json()["error"]["code"] == code, (text, r.json())
        assert words in r.json()["error"]["message"], (text, r.json())
    assert store_fingerprint(api) == before
    assert files_under(api.db.parent) == files_before
    assert sql(api, "SELECT count(*) AS n FROM trades").json()["rows"] == [[1]]
    logged = api.query("SELECT outcome, count(*) FROM sql_log GROUP BY ALL ORDER BY ALL")
    refused = sum(1 for _, code, _ in HOSTILE if code == "sql_not_read_only")
    denied = sum(1 for _, code, _ in HOSTILE if code == "sql_access_denied")
    assert logged == [("denied", denied), ("error", 1), ("ok", 1), ("refused", refused)]


def test_only_regulators_may_query(api: ApiEnv):
    for token in (api.owner_a, api.operator_a):
        assert sql(api, "SELECT 1", token).status_code == 403
    assert sql(api, "SELECT 1", "stl_bogus").status_code == 401
    assert api.query("SELECT count(*) FROM sql_log") == [(0,)]  # not even logged: never reached the SQL


def test_request_body_validation_is_422(api: ApiEnv):
    r = api.client.post("/v1/sql", json={"sql": "SELECT 1", "limit": 0}, headers=A(api.regulator))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = api.client.post("/v1/sql", json={"query": "SELECT 1"}, headers=A(api.regulator))
    assert r.status_code == 422


# ------------------------------------------------------------------------------------ limits


def test_long_query_is_interrupted_and_the_server_keeps_answering(api: ApiEnv):
    api.state.settings.sql_time_limit_s = 0.5
    started = time.perf_counter()
    r = sql(api, "SELECT count(*) FROM range(1000000000000) a")  # ~100 s of work on this machine
    elapsed = time.perf_counter() - started
    assert r.status_code == 400 and r.json()["error"]["code"] == "sql_timeout"
    assert "0.5 s time limit" in r.json()["error"]["message"]
    assert elapsed < 5
    assert api.client.get("/healthz").status_code == 200
    assert sql(api, "SELECT 42 AS answer").json()["rows"] == [[42]]
    assert api.query("SELECT outcome FROM sql_log ORDER BY log_id") == [("timeout",), ("ok",)]


def test_ten_million_rows_are_capped(api: ApiEnv):
    started = time.perf_counter()
    r = sql(api, "SELECT range AS n, range * 2 AS twice FROM range(10000000)")
    assert time.perf_counter() - started < 5
    body = r.json()
    assert r.status_code == 200
    assert body["truncated"] is True and body["row_count"] == 1000 and body["row_cap"] == 1000
    assert body["rows"][:2] == [[0, 0], [1, 2]] and body["rows"][-1] == [999, 1998]
    assert body["columns"] == [{"name": "n", "type": "BIGINT"}, {"name": "twice", "type": "BIGINT"}]
    small = sql(api, "SELECT * FROM range(5)").json()
    assert small["truncated"] is False and small["row_count"] == 5
    limited = sql(api, "SELECT * FROM range(5)", limit=3).json()
    assert limited["truncated"] is True and limited["rows"] == [[0], [1], [2]]
    over = sql(api, "SELECT * FROM range(5000)", limit=50_000).json()
    assert over["row_cap"] == 1000 and over["truncated"] is True  # the server cap wins
    assert api.query("SELECT outcome, row_count FROM sql_log ORDER BY log_id") == [
        ("truncated", 1000), ("ok", 5), ("truncated", 3), ("truncated", 1000)]


def test_values_are_exact_json(api: ApiEnv):
    r = sql(api, "SELECT 12.30::DECIMAL(18,2) AS amount, DATE '2024-12-31' AS d, "
                 "TIMESTAMPTZ '2025-01-01 00:30:00+08' AS ts, NULL AS nothing, [1, 2] AS l, 'x' AS s, "
                 "'nan'::DOUBLE AS n, {'a': 1} AS st, '\\xAA'::BLOB AS b")
    # money stays an exact string (P1); instants in UTC ISO-8601; blobs base64; NaN as text (not JSON)
    assert r.json()["rows"] == [["12.30", "2024-12-31", "2024-12-31T16:30:00+00:00", None, [1, 2], "x", "nan",
                                 {"a": 1}, "qg=="]]


# ------------------------------------------------------------------------------------ log, snapshot


def test_every_query_is_logged_and_regulators_can_read_the_log(api: ApiEnv):
    api.state.sandbox.max_age_s = 0  # rebuild the snapshot every query: the log is then always current
    sql(api, "SELECT 1 AS one")
    sql(api, "DROP TABLE trade_rows")
    rows = sql(api, "SELECT who, sql, row_count, outcome, message FROM sql_log ORDER BY log_id").json()["rows"]
    regulator_id = api.query("SELECT token_id FROM api_tokens WHERE role = 'regulator' AND revoked_at IS NULL")[0][0]
    assert rows[0] == [f"token:{regulator_id}", "SELECT 1 AS one", 1, "ok", None]
    assert rows[1][:4] == [f"token:{regulator_id}", "DROP TABLE trade_rows", None, "refused"]
    assert "DROP" in rows[1][4]
    assert api.query("SELECT count(*) FROM sql_log WHERE ms >= 0 AND queried_at <= now()") == [(3,)]


def test_snapshot_sees_api_writes_at_once_and_hides_token_hashes(api: ApiEnv):
    assert sql(api, "SELECT count(*) FROM trades").json()["rows"] == [[0]]
    api.client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T1"), trade_row("T2")))},
                    headers=A(api.operator_a))
    assert sql(api, "SELECT count(*) FROM trades").json()["rows"] == [[2]]
    columns = [c["name"] for c in sql(api, "SELECT * FROM api_tokens").json()["columns"]]
    assert "token_sha256" not in columns and "token_id" in columns
    # The sandbox may read its own snapshot file's bytes (DuckDB allows attached files): no hash is in it.
    snapshot_path = sql(api, "SELECT path FROM duckdb_databases() WHERE database_name = 'store'").json()["rows"][0][0]
    blob = sql(api, f"SELECT content FROM read_blob('{snapshot_path}')").json()["rows"][0][0]
    raw = base64.b64decode(blob)
    assert len(raw) > 0
    for (digest,) in api.query("SELECT token_sha256 FROM api_tokens"):
        assert digest.encode() not in raw
    assert sql(api, "SELECT token_sha256 FROM api_tokens").json()["error"]["code"] == "sql_error"
    comments = sql(api, "SELECT comment FROM duckdb_tables() WHERE table_name = 'sql_log'").json()["rows"]
    assert comments[0][0].startswith("Every query sent to POST /v1/sql")


def test_a_long_query_does_not_block_uploads_or_payouts(api: ApiEnv):
    api.state.settings.sql_time_limit_s = 3.0
    sql(api, "SELECT 1")  # build the snapshot first
    result: dict = {}

    def long_query():
        started = time.perf_counter()
        result["response"] = sql(api, "SELECT count(*) FROM range(1000000000000) a")
        result["seconds"] = time.perf_counter() - started

    worker = threading.Thread(target=long_query)
    worker.start()
    time.sleep(0.3)
    started = time.perf_counter()
    up = api.client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T9")))}, headers=A(api.operator_a))
    pay = api.client.get("/v1/payouts", headers=A(api.owner_a))
    side_seconds = time.perf_counter() - started
    worker.join()
    assert up.status_code == 201 and pay.status_code == 200
    assert side_seconds < 2.0, side_seconds  # done while the 3 s query was still running
    assert result["response"].json()["error"]["code"] == "sql_timeout" and result["seconds"] >= 2.9


def test_regulator_downloads_a_consistent_read_only_copy(api: ApiEnv, tmp_path: Path):
    api.client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T1"), trade_row("T2")))},
                    headers=A(api.operator_a))
    assert api.client.get("/v1/sql/snapshot", headers=A(api.owner_a)).status_code == 403
    r = api.client.get("/v1/sql/snapshot", headers=A(api.regulator))
    assert r.status_code == 200 and r.headers["x-snapshot-at"]
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(r.content)
    con = duckdb.connect(str(copy), read_only=True)  # what `duckdb -readonly copy.duckdb` does
    try:
        assert con.execute("SELECT trade_id, amount::VARCHAR FROM trades ORDER BY 1").fetchall() == [
            ("T1", "100.00"), ("T2", "100.00")]
        assert "token_sha256" not in [r[0] for r in con.execute("DESCRIBE api_tokens").fetchall()]
    finally:
        con.close()


def test_a_slow_snapshot_rebuild_never_holds_a_query_beyond_the_wait(api: ApiEnv, monkeypatch):
    from api import sql_guard

    assert sql(api, "SELECT count(*) FROM trades").json()["rows"] == [[0]]  # first snapshot built
    real_build = sql_guard.build_snapshot

    def slow_build(writer, target):  # a big store: the rebuild takes a while
        time.sleep(1.0)
        real_build(writer, target)

    monkeypatch.setattr(sql_guard, "build_snapshot", slow_build)
    api.state.sandbox.wait_s = 0.1
    api.client.post("/v1/uploads", files={"file": ("t.csv", trade_csv(trade_row("T1")))}, headers=A(api.operator_a))
    started = time.perf_counter()
    stale = sql(api, "SELECT count(*) FROM trades").json()
    assert time.perf_counter() - started < 0.9
    assert stale["rows"] == [[0]]  # the previous snapshot, answered at once
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fresh = sql(api, "SELECT count(*) FROM trades").json()
        if fresh["rows"] == [[1]]:
            break
        time.sleep(0.2)
    assert fresh["rows"] == [[1]]  # the background rebuild landed


def test_queries_beyond_the_concurrency_limit_get_429_and_are_logged(api: ApiEnv):
    api.state.sql_slots = threading.BoundedSemaphore(1)
    api.state.sql_slots.acquire()  # one query is "running"
    api.state.settings.sql_time_limit_s = 0.3
    r = sql(api, "SELECT 1")
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_queries"
    assert r.headers["retry-after"] == "5"
    api.state.sql_slots.release()
    assert sql(api, "SELECT 1").status_code == 200
    assert api.query("SELECT outcome FROM sql_log ORDER BY log_id") == [("busy",), ("ok",)]
