"""Inputs for the command line through the server (issue 11 item 6): `GET /v1/uploads` (the list, cut to
the caller's scope), `POST /v1/local-uploads` (a trade file uploaded by the local admin, regulator scope:
no platform limit, like `settle ingest`), `POST /v1/registries/{kind}` (a registry or relation file, as
`settle load KIND FILE`). Thin edge: ``settlement.inputs`` does the work; imported only by ``api.routes``.
"""

from __future__ import annotations

from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.deps import CursorDep, OperatorOrRegulatorDep, ScopeDep, StateDep
from api.endpoint import ActorDep, LocalAdminDep
from api.errors import ApiError, responses
from api.spooled import with_spooled_file
from settlement.access import scope as access
from settlement.inputs import errors_out, ingest, registry

router = APIRouter(tags=["uploads"])

KINDS = ("datasets", "platforms", "affiliations", "prior-awards")


@router.get("/v1/uploads", summary="Every upload the caller may see (operator: its platform's; regulator: all)",
            description="As `settle uploads list --format json`.", responses=responses(401, 403))
def list_uploads(token: OperatorOrRegulatorDep, scope: ScopeDep, con: CursorDep) -> JSONResponse:
    records = [u.__dict__ | {"platform_ids": list(u.platform_ids)} for u in access.visible_uploads(con, scope)]
    return JSONResponse(records)


@router.post("/v1/local-uploads", summary="Upload a trade file as the local admin (regulator scope, as the CLI)",
             description="The report of `settle ingest`: 201 stored or partial, 200 duplicate, 422 rejected "
                         "(the report beside the error), with `rejected_rows_url` as `POST /v1/uploads` gives it. "
                         "Only the server's local admin credential.",
             responses=responses(400, 401, 403, 413, 415, 422))
async def post_local_upload(request: Request, state: StateDep, token: LocalAdminDep, by: ActorDep,
                            accept_valid: bool = Query(False, description="Store valid rows, keep bad rows aside"),
                            rejected_rows_format: str | None = Query(
                                None, pattern="^(csv|xlsx)$", description="keep the rejected rows as csv | xlsx "
                                "(`settle ingest --errors-out`); default: xlsx for an xlsx upload, else csv")
                            ) -> JSONResponse:
    def work(cur, path: FilePath, file_name: str) -> tuple[ingest.UploadReport, bool]:
        report = ingest.ingest_file(cur, path, file_name=file_name, uploaded_by=by, accept_valid=accept_valid)
        kept = errors_out.keep_rejected_rows(cur, report, path, state.settings.rejected_rows_dir(),
                                             rejected_rows_format)
        return report, kept is not None

    report, kept = await with_spooled_file(request, state, work)
    body = report.to_json_dict() | {"rejected_rows_url": f"/v1/uploads/{report.upload_id}/rejected-rows" if kept
                                    else None}
    if report.rejected:
        raise ApiError(422, "upload_rejected", "upload rejected, nothing stored", extra=body)
    if report.status != "duplicate":
        state.data_changed()
    return JSONResponse(status_code=200 if report.status == "duplicate" else 201, content=body)


@router.post("/v1/registries/{kind}", summary="Load a registry or relation file (local admin), as `settle load`",
             description="200 loaded or unchanged; 422 rejected (the report beside the error). Only the server's "
                         "local admin credential (the command line), as trade files without a platform scope.",
             responses=responses(400, 401, 403, 413, 415, 422), tags=["registries"])
async def post_registry(request: Request, state: StateDep, token: LocalAdminDep, by: ActorDep,
                        kind: str = Path(..., description=" | ".join(KINDS), pattern="^(" + "|".join(KINDS) + ")$"),
                        ) -> JSONResponse:
    def work(cur, path: FilePath, file_name: str) -> registry.LoadReport:
        return registry.load_registry(cur, kind.replace("-", "_"), path, loaded_by=by, file_name=file_name)

    report = await with_spooled_file(request, state, work)
    body = report.to_json_dict()
    if report.rejected:
        raise ApiError(422, "load_rejected", "registry file rejected, nothing loaded", extra=body)
    state.data_changed()
    return JSONResponse(body)
