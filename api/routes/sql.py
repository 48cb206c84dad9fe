"""`POST /v1/sql` for regulators: one read statement, sandboxed, capped, timed, logged (``api.sql_guard``).
Must not hold rules; imported only by ``api.routes``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from api.deps import RegulatorDep, StateDep
from api.errors import ApiError, responses
from api.models import SqlOut, SqlRequest
from api.sql_guard import SqlRefusal, log_query

router = APIRouter(prefix="/v1/sql", tags=["sql"])


@router.post(
    "", response_model=SqlOut, responses=responses(400, 401, 403, 422, 429, 503),
    summary="Run one read-only SQL statement (regulator)",
    description=(
        "Exactly one SELECT-type statement (SELECT, WITH, FROM, VALUES, SHOW, DESCRIBE), decided by DuckDB's "
        "own parser. It runs in a sandbox (a separate DuckDB instance in a worker process, over a read-only "
        "snapshot of the store, file/network/extension access disabled, configuration locked, memory capped by "
        "`SETTLE_SQL_PROCESS_MEMORY_BYTES`), is killed after `SETTLE_SQL_TIME_LIMIT_S`, returns at most "
        "min(limit, `SETTLE_SQL_ROW_CAP`) rows and at most `SETTLE_SQL_BYTE_CAP` bytes of rows with "
        "`truncated` set (and `truncated_by` rows | bytes) when there was more, and is logged in the `sql_log` "
        "table. Tables: see CONTRACT \"Regulator schema\"; `SELECT * FROM duckdb_tables()` lists them with "
        "their comments. Refusals are 400 with code sql_syntax | sql_empty | sql_not_read_only | "
        "sql_access_denied | sql_timeout | sql_too_big | sql_error."
    ),
)
def post_sql(body: SqlRequest, state: StateDep, token: RegulatorDep) -> Response:
    settings = state.settings
    cap = min(body.limit or settings.sql_row_cap, settings.sql_row_cap)
    started = time.perf_counter()
    # At most sql_max_concurrent queries at once, so regulators cannot take every core from the service.
    if not state.sql_slots.acquire(timeout=settings.sql_time_limit_s):
        message = f"{settings.sql_max_concurrent} queries are already running; try again shortly"
        log_query(state.writer, who=token.who, sql=body.sql, row_count=None,
                  ms=(time.perf_counter() - started) * 1000, outcome="busy", message=message)
        raise ApiError(429, "too_many_queries", message, headers={"Retry-After": "5"})
    try:
        outcome = state.sandbox.run(body.sql, row_cap=cap, time_limit_s=settings.sql_time_limit_s,
                                    generation=state.generation, byte_cap=settings.sql_byte_cap)
    finally:
        state.sql_slots.release()
    ms = (time.perf_counter() - started) * 1000
    if isinstance(outcome, SqlRefusal):
        log_query(state.writer, who=token.who, sql=body.sql, row_count=None, ms=ms, outcome=outcome.outcome,
                  message=outcome.message)
        status = 503 if outcome.code == "sql_unavailable" else 400
        raise ApiError(status, outcome.code, outcome.message, details=outcome.details)
    log_query(state.writer, who=token.who, sql=body.sql, row_count=outcome.row_count, ms=ms,
              outcome="truncated" if outcome.truncated else "ok",
              message=f"truncated by {outcome.truncated_by}" if outcome.truncated_by == "bytes" else None)
    # The rows go out as the JSON bytes the worker wrote (the SqlOut shape), never re-parsed here.
    return Response(outcome.to_json_bytes(), media_type="application/json")


@router.get(
    "/snapshot", responses={200: {"content": {"application/octet-stream": {}},
                                         "description": "A DuckDB database file"}, **responses(401, 403)},
    response_class=FileResponse,
    summary="Download a consistent read-only copy of the store (regulator)",
    description=(
        "The snapshot `POST /v1/sql` reads: a complete DuckDB file (every table and view of the regulator "
        "schema with its comments; token hashes left out), consistent as of `X-Snapshot-At`. Open it with "
        "`duckdb -readonly copy.duckdb`. Copying the live file instead is only safe while the server is stopped."
    ),
)
def get_sql_snapshot(state: StateDep, token: RegulatorDep) -> FileResponse:
    path, built_at, release = state.sandbox.checkout_snapshot(state.generation)
    return FileResponse(path, media_type="application/octet-stream", filename="settlement-snapshot.duckdb",
                        headers={"X-Snapshot-At": built_at}, background=BackgroundTask(release))
