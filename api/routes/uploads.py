"""`/v1/uploads`: stream a trade file to disk, ingest it exactly as the CLI does; get; retract.

Thin edge: formatting only; ``settlement.inputs.ingest`` does the work (CONTRACT "Trades") and
``settlement.access.scope`` decides what an operator may see: another platform's upload answers 404 like a
missing one. Must not hold rules or SQL; imported only by ``api.routes``.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path as FilePath

import duckdb
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from api.deps import CursorDep, OperatorDep, OperatorOrRegulatorDep, ScopeDep, StateDep
from api.endpoint import ActorDep
from api.errors import ApiError, responses
from api.models import RejectedUploadOut, UploadReportOut, UploadSummaryOut
from api.spooled import with_spooled_file
from settlement.access import scope as access
from settlement.access.tokens import TokenInfo
from settlement.inputs import errors_out, ingest

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])

_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary",
                                            "description": "Trade file: .csv, .parquet, .jsonl or .xlsx"}},
                },
                "example": {"file": "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n..."},
            }
        },
    }
}


def _ingest(cur: duckdb.DuckDBPyConnection, path: FilePath, file_name: str, *, rejected_dir: FilePath,
            token: TokenInfo, accept_valid: bool) -> tuple[ingest.UploadReport, bool]:
    """The report, and whether its rejected rows were kept for ``GET /v1/uploads/{id}/rejected-rows``."""
    report = ingest.ingest_file(cur, path, file_name=file_name, uploaded_by=token.who,
                                accept_valid=accept_valid, platform_scope=token.scope_id)
    return report, errors_out.keep_rejected_rows(cur, report, path, rejected_dir) is not None


def rejected_rows_url(upload_id: int) -> str:
    return f"/v1/uploads/{upload_id}/rejected-rows"


@router.post(
    "",
    status_code=201,
    summary="Upload a trade file (operator)",
    description=(
        "Multipart body with one part `file`. The body is streamed to disk in chunks (never held in memory) "
        "and refused with 413 beyond the size cap (`SETTLE_UPLOAD_MAX_BYTES`). Then the same ingest as "
        "`settle ingest` runs, limited to the operator's platform (rows of another platform are errors). "
        "201: stored (or partial with `accept_valid=true`); 200: the same bytes as a live upload of the "
        "operator's own platform, nothing stored (`status` = duplicate, `duplicate_of`); 422: rejected, with "
        "the full report. Another platform's upload never counts as the same bytes: its rows are errors. "
        "When rows were rejected, `rejected_rows_url` links to them in the file's own columns plus "
        "`error_column` and `error_reason` (as `settle ingest --errors-out` writes them)."
    ),
    response_model=UploadReportOut,
    responses={200: {"model": UploadReportOut, "description": "Same bytes as a live upload: nothing stored"},
               422: {"model": RejectedUploadOut, "description": "Rejected upload (report) or invalid request"},
               **responses(401, 403, 413, 415, 503)},
    openapi_extra=_MULTIPART_BODY,
)
async def post_upload(
    request: Request,
    state: StateDep,
    token: OperatorDep,
    accept_valid: bool = Query(False, description="Store valid rows and keep bad ones aside (CONTRACT)"),
) -> JSONResponse:
    report, kept = await with_spooled_file(
        request, state, partial(_ingest, rejected_dir=state.settings.rejected_rows_dir(), token=token,
                                accept_valid=accept_valid), what="the trade file")
    body = report.to_json_dict() | {"rejected_rows_url": rejected_rows_url(report.upload_id) if kept else None}
    if report.rejected:
        first = f"; first: {report.file_error or report.errors[0].reason}" if (report.file_error or report.errors) else ""
        message = f"upload rejected, nothing stored: {report.errors_total or 1} error(s){first}"
        raise ApiError(422, "upload_rejected", message, details=body.get("errors", []), extra=body)
    if report.status == "duplicate":
        return JSONResponse(status_code=200, content=body)
    state.data_changed()
    return JSONResponse(status_code=201, content=body)


def _summary_json(summary: ingest.UploadSummary) -> dict:
    d = asdict(summary)
    d["platform_ids"] = list(summary.platform_ids)
    return d


UploadId = Path(..., ge=1, le=2**62, description="Upload id from the upload report", examples=[12])


@router.get("/{upload_id}", summary="One upload's summary (its operator, regulator)",
            response_model=UploadSummaryOut, responses=responses(401, 403, 404, 422))
def get_upload(token: OperatorOrRegulatorDep, scope: ScopeDep, con: CursorDep,
               upload_id: int = UploadId) -> JSONResponse:
    return JSONResponse(_summary_json(access.visible_upload(con, scope, upload_id)))


@router.post("/{upload_id}/retract", summary="Retract an upload (its operator, regulator)",
             description="Its trades stay stored for audit and count for nothing from the next run on (P9).",
             response_model=UploadSummaryOut, responses=responses(401, 403, 404, 409, 422))
def retract_upload(state: StateDep, token: OperatorOrRegulatorDep, scope: ScopeDep, con: CursorDep, by: ActorDep,
                   upload_id: int = UploadId) -> JSONResponse:
    retracted = access.retract_visible_upload(con, scope, upload_id, by=by)
    state.data_changed()
    return JSONResponse(_summary_json(retracted))


@router.get("/{upload_id}/rejected-rows", summary="An upload's rejected rows to fix in Excel (its operator, regulator)",
            description="The rejected rows of an upload sent through this API, in the file's own columns plus "
                        "`error_column` and `error_reason`: CSV (UTF-8 with BOM), or xlsx for an xlsx upload. "
                        "404 when the upload has none kept (no rejected rows, or the CLI loaded it with no server "
                        "running).",
            response_class=FileResponse, responses=responses(401, 403, 404, 422))
def get_rejected_rows(state: StateDep, token: OperatorOrRegulatorDep, scope: ScopeDep, con: CursorDep,
                      upload_id: int = UploadId) -> FileResponse:
    access.visible_upload(con, scope, upload_id)  # out of scope = not found, before the file is looked at
    kept = errors_out.find_kept_rejected_rows(state.settings.rejected_rows_dir(), upload_id)
    if kept is None:
        raise ApiError(404, "not_found", f"upload {upload_id} has no rejected rows kept by the server "
                                         "(`settle ingest FILE --errors-out PATH` writes them from the file)")
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if kept.suffix == ".xlsx"
             else "text/csv; charset=utf-8")
    return FileResponse(kept, media_type=media, filename=kept.name)
