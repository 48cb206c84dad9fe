"""Regulator SQL console in the Datasette manner: the query lives in the URL (``/sql?sql=...&page=N``) so it
can be shared, pages go past the row cap, ``/sql.csv?sql=...`` streams the whole result as CSV, and the
table and column comments (``duckdb_tables()`` / ``duckdb_columns()``) sit beside the editor.

Same walls as `POST /v1/sql` (``api.sql_guard``): DuckDB's parser must see one SELECT-type statement, the
query runs in the sandbox over a snapshot with the same time limit and concurrency slots, and every query
is logged in ``sql_log``. Paging wraps the statement as ``SELECT * FROM (<sql>) LIMIT n OFFSET m`` (the
wrapped text passes the same parser check; without an ORDER BY the row order is DuckDB's). The CSV
streams from one snapshot with ``fetchmany`` (a consistent cut, never the whole result in memory); it uses
the sandbox's snapshot refcount (``_acquire``/``_release``) because ``SqlSandbox.run`` returns at most a
capped page. Must not import the other page modules.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from urllib.parse import urlencode

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.console.regulator import regulator_only
from api.console.web import page
from api.sql_guard import SNAPSHOT_CATALOG, SqlRefusal, check_read_only, jsonable, log_query
from api.state import get_state

router = APIRouter(include_in_schema=False)
CSV_BATCH = 10_000
EXAMPLES = (
    ("Payouts per year and clause", "SELECT year, clause, sum(amount) AS total, count(DISTINCT beneficiary_id) AS "
     "beneficiaries\nFROM ledger_entries GROUP BY ALL ORDER BY ALL"),
    ("Exclusions by reason", "SELECT year, clause, reason, count(*) AS trades\nFROM current_exclusions\n"
     "GROUP BY ALL ORDER BY ALL"),
    ("Datasets with names and owners", "SELECT dataset_id, name, owner_id, owner_from, owner_until, certified_on\n"
     "FROM datasets ORDER BY dataset_id"),
    ("Trades of one platform", "SELECT * FROM trades\nWHERE platform_id = '913301108573022438'\nORDER BY traded_at"),
    ("Settlement runs", "SELECT run_id, year, started_at, entries_appended, started_by FROM settlement_runs ORDER BY run_id"),
)


def schema_comments(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every table and view of the store with its comment and its columns' (the regulator schema)."""
    objects = con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
        "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE database_name = current_database() "
        "AND NOT internal ORDER BY 1").fetchall()
    cols: dict[str, list] = {}
    for table, column, dtype, comment in con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal ORDER BY table_name, column_index").fetchall():
        if (table, column) != ("api_tokens", "token_sha256"):  # never in the regulator's snapshot either
            cols.setdefault(table, []).append((column, dtype, comment))
    return [{"name": n, "comment": c, "columns": cols.get(n, [])} for n, c in objects]


def _run_page(state, who, sql: str, page_no: int, size: int):
    """(result | refusal, paged?) for one page of ``sql`` through the sandbox, logged like `POST /v1/sql`."""
    settings = state.settings
    started = time.perf_counter()
    if not state.sql_slots.acquire(timeout=settings.sql_time_limit_s):
        return SqlRefusal("too_many_queries", f"{settings.sql_max_concurrent} queries are already running", "busy"), False
    try:
        raw = sql.strip().rstrip(";")
        wrapped = f"SELECT * FROM (\n{raw}\n) AS q LIMIT {size + 1} OFFSET {(page_no - 1) * size}"
        outcome = state.sandbox.run(wrapped, row_cap=size, time_limit_s=settings.sql_time_limit_s,
                                    generation=state.generation)
        paged = True
        if isinstance(outcome, SqlRefusal) and outcome.code in ("sql_syntax", "sql_not_read_only"):
            outcome = state.sandbox.run(sql, row_cap=size, time_limit_s=settings.sql_time_limit_s,
                                        generation=state.generation)
            paged = False  # the statement itself decides; page 1 only
    finally:
        state.sql_slots.release()
    ms = (time.perf_counter() - started) * 1000
    if isinstance(outcome, SqlRefusal):
        log_query(state.writer, who=who.token.who, sql=sql, row_count=None, ms=ms, outcome=outcome.outcome,
                  message=outcome.message)
    else:
        log_query(state.writer, who=who.token.who, sql=sql, row_count=len(outcome.rows), ms=ms,
                  outcome="truncated" if outcome.truncated else "ok", message=None)
    return outcome, paged


@router.get("/sql")
def sql_page(request: Request):
    who, refused = regulator_only(request)
    if who is None:
        return refused
    state = get_state(request)
    sql = request.query_params.get("sql", "")
    raw_page = request.query_params.get("page", "1")
    page_no = int(raw_page) if raw_page.isdigit() and int(raw_page) >= 1 else 1
    size = state.settings.console_page_rows
    cur = state.cursor()
    try:
        schema = schema_comments(cur)
    finally:
        cur.close()
    result = refusal = None
    paged = False
    if sql.strip():
        outcome, paged = _run_page(state, who, sql, page_no, size)
        if isinstance(outcome, SqlRefusal):
            refusal = outcome
        else:
            result = outcome
    links = {
        "next": "/sql?" + urlencode({"sql": sql, "page": page_no + 1}),
        "prev": "/sql?" + urlencode({"sql": sql, "page": page_no - 1}),
        "csv": "/sql.csv?" + urlencode({"sql": sql}),
    }
    examples = [(title, "/sql?" + urlencode({"sql": q})) for title, q in EXAMPLES]
    return page(request, "sql.html", status=400 if refusal else 200, who=who, sql=sql, result=result,
                refusal=refusal, paged=paged, page_no=page_no, size=size, links=links, schema=schema,
                examples=examples)


def _csv_rows(state, who, sql: str, snap, cur, slot_held: list):
    """Generator of CSV text chunks from an executing cursor; releases the snapshot and slot at the end."""
    started, rows = time.perf_counter(), 0
    outcome, message = "ok", None
    try:
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow([d[0] for d in cur.description or []])
        yield "\ufeff" + buf.getvalue()
        while True:
            batch = cur.fetchmany(CSV_BATCH)
            if not batch:
                break
            buf = io.StringIO()
            out = csv.writer(buf, lineterminator="\n")
            out.writerows([[_cell(v) for v in row] for row in batch])
            rows += len(batch)
            yield buf.getvalue()
    except duckdb.Error as exc:
        outcome, message = "error", str(exc)[:500]
        raise
    finally:
        cur.close()
        state.sandbox._release(snap)
        if slot_held:
            state.sql_slots.release()
        log_query(state.writer, who=who.token.who, sql=sql, row_count=rows, ms=(time.perf_counter() - started) * 1000,
                  outcome=outcome, message=message or "csv download")


def _cell(value) -> object:
    v = jsonable(value)
    return v if not isinstance(v, (list, dict)) else str(v)


@router.get("/sql.csv")
def sql_csv(request: Request):
    who, refused = regulator_only(request)
    if who is None:
        return refused
    state = get_state(request)
    settings = state.settings
    sql = request.query_params.get("sql", "")
    parser = duckdb.connect(":memory:")
    try:
        refusal = check_read_only(sql, parser)
    finally:
        parser.close()
    if refusal is None and not state.sql_slots.acquire(timeout=settings.sql_time_limit_s):
        refusal = SqlRefusal("too_many_queries", f"{settings.sql_max_concurrent} queries are already running", "busy")
        slot = []
    else:
        slot = [True] if refusal is None else []
    snap = state.sandbox._acquire(state.generation) if refusal is None else None
    if refusal is None and snap is None:
        refusal = SqlRefusal("sql_unavailable", "the SQL snapshot could not be built; see the server log", "error")
    if refusal is not None:
        if slot:
            state.sql_slots.release()
        log_query(state.writer, who=who.token.who, sql=sql, row_count=None, ms=0, outcome=refusal.outcome,
                  message=refusal.message)
        return page(request, "sql.html", status=400, who=who, sql=sql, result=None, refusal=refusal, paged=False,
                    page_no=1, size=settings.console_page_rows, links={}, schema=[], examples=[])
    cur = snap.con.cursor()
    timer = threading.Timer(settings.sql_time_limit_s, cur.interrupt)  # the query's start, as /v1/sql
    try:
        cur.execute(f"USE {SNAPSHOT_CATALOG}")
        timer.start()
        cur.execute(sql)
    except duckdb.Error as exc:
        cur.close()
        state.sandbox._release(snap)
        state.sql_slots.release()
        bad = SqlRefusal("sql_error", f"{type(exc).__name__}: {str(exc)[:400]}", "error")
        log_query(state.writer, who=who.token.who, sql=sql, row_count=None, ms=0, outcome="error", message=bad.message)
        return page(request, "sql.html", status=400, who=who, sql=sql, result=None, refusal=bad, paged=False,
                    page_no=1, size=settings.console_page_rows, links={}, schema=[], examples=[])
    finally:
        timer.cancel()
    return StreamingResponse(_csv_rows(state, who, sql, snap, cur, slot), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="query.csv"'})
