"""Regulator SQL console in the Datasette manner: the query lives in the URL (``/sql?sql=...&page=N``) so it
can be shared, pages go past the row cap, ``/sql.csv?sql=...`` streams the whole result as CSV, and the
table and column comments (``duckdb_tables()`` / ``duckdb_columns()``) sit beside the editor.

Same walls as `POST /v1/sql` (``api.sql_guard``): DuckDB's parser must see one SELECT-type statement, the
query runs in the sandbox over a snapshot with the same time limit and concurrency slots, and every query
is logged in ``sql_log``. Paging wraps the statement as ``SELECT * FROM (<sql>) LIMIT n OFFSET m`` (the
wrapped text passes the same parser check; without an ORDER BY the row order is DuckDB's). The CSV
streams chunk by chunk (each one ``SqlSandbox.run`` of at most the row cap, never the whole result in
memory), all from one snapshot: a rebuild in between stops the download short and is logged. Must not
import the other page modules.
"""

from __future__ import annotations

import csv
import io
import json
import time
from contextlib import closing
from urllib.parse import urlencode

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.console.regulator import regulator_only
from api.console.web import page
from api.sql_guard import SqlRefusal, log_query
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
        log_query(state.writer, who=who.token.who, sql=sql, row_count=len(_payload(outcome)["rows"]), ms=ms,
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
    with closing(state.cursor()) as cur:
        schema = schema_comments(cur)
    result = refusal = None
    paged = False
    if sql.strip():
        outcome, paged = _run_page(state, who, sql, page_no, size)
        if isinstance(outcome, SqlRefusal):
            refusal = outcome
        else:
            result = _payload(outcome)
    links = {
        "next": "/sql?" + urlencode({"sql": sql, "page": page_no + 1}),
        "prev": "/sql?" + urlencode({"sql": sql, "page": page_no - 1}),
        "csv": "/sql.csv?" + urlencode({"sql": sql}),
    }
    examples = [(title, "/sql?" + urlencode({"sql": q})) for title, q in EXAMPLES]
    return page(request, "sql.html", status=400 if refusal else 200, who=who, sql=sql, result=result,
                refusal=refusal, paged=paged, page_no=page_no, size=size, links=links, schema=schema,
                examples=examples)


def _payload(outcome) -> dict:
    """A sandbox answer as JSON data, whichever form ``SqlSandbox.run`` returns it in."""
    if hasattr(outcome, "to_json_bytes"):
        return json.loads(outcome.to_json_bytes())
    return outcome.to_json_dict()


def _csv_chunks(state, who, sql: str, first: dict, chunk: int):
    """CSV text: the first chunk's rows, then further chunks (``LIMIT chunk OFFSET k`` through
    ``SqlSandbox.run``) until one is not truncated. Every chunk must come from the same snapshot
    (``snapshot_at``); when the snapshot was rebuilt meanwhile the download stops short rather than mix
    two cuts, and the log says so."""
    started, rows, outcome, message = time.perf_counter(), 0, "ok", "csv download"
    raw = sql.strip().rstrip(";")
    payload = first
    try:
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        buf.write("\ufeff")  # BOM: Excel opens UTF-8 names correctly
        out.writerow([c["name"] for c in payload["columns"]])
        while True:
            out.writerows([[_cell(v) for v in row] for row in payload["rows"]])
            rows += len(payload["rows"])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if not payload["truncated"] or not payload["rows"]:
                break
            nxt = state.sandbox.run(f"SELECT * FROM (\n{raw}\n) AS q LIMIT {chunk + 1} OFFSET {rows}",
                                    row_cap=chunk, time_limit_s=state.settings.sql_time_limit_s,
                                    generation=state.generation)
            if isinstance(nxt, SqlRefusal):
                outcome, message = nxt.outcome, f"csv stopped after {rows} rows: {nxt.message}"
                break
            nxt_payload = _payload(nxt)
            if nxt_payload["snapshot_at"] != first["snapshot_at"]:
                outcome, message = "error", f"csv stopped after {rows} rows: the snapshot was rebuilt"
                break
            payload = nxt_payload
    finally:
        log_query(state.writer, who=who.token.who, sql=sql, row_count=rows, ms=(time.perf_counter() - started) * 1000,
                  outcome=outcome, message=message)


def _cell(value) -> object:
    return "" if value is None else value if not isinstance(value, (list, dict)) else json.dumps(value, ensure_ascii=False)


@router.get("/sql.csv")
def sql_csv(request: Request):
    """The whole result as CSV, streamed chunk by chunk (each chunk at most the row cap, read by the
    same sandbox and checks as `POST /v1/sql`)."""
    who, refused = regulator_only(request)
    if who is None:
        return refused
    state = get_state(request)
    settings = state.settings
    sql = request.query_params.get("sql", "")
    chunk = settings.sql_row_cap
    first, paged = _run_page(state, who, sql, 1, chunk)
    if isinstance(first, SqlRefusal) or not paged:
        refusal = first if isinstance(first, SqlRefusal) else SqlRefusal(
            "sql_error", "this statement cannot be paged; run it on the SQL page", "error")
        return page(request, "sql.html", status=400, who=who, sql=sql, result=None, refusal=refusal, paged=False,
                    page_no=1, size=settings.console_page_rows, links={}, schema=[], examples=[])
    return StreamingResponse(_csv_chunks(state, who, sql, _payload(first), chunk),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="query.csv"'})
