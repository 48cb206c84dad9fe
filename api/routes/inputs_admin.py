"""Inputs for the command line through the server (issue 11 item 6): `GET /v1/uploads` (the list, cut to
the caller's scope), `POST /v1/local-uploads` (a trade file uploaded by the local admin, regulator scope:
no platform limit, like `settle ingest`), `POST /v1/registries/{kind}` (a registry or relation file, as
`settle load KIND FILE`). Thin edge: ``settlement.inputs`` does the work; imported only by ``api.routes``.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Callable

import anyio
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.deps import CursorDep, OperatorOrRegulatorDep, ScopeDep, StateDep
from api.endpoint import ActorDep, LocalAdminDep
from api.errors import ApiError, responses
from api.upload_stream import BadUpload, UploadTooLarge, spool_upload
from settlement.access import scope as access
from settlement.inputs import ingest, registry

router = APIRouter(tags=["uploads"])

KINDS = ("datasets", "platforms", "affiliations", "prior-awards")


@router.get("/v1/uploads", summary="Every upload the caller may see (operator: its platform's; regulator: all)",
            description="As `settle uploads list --format json`.", responses=responses(401, 403))
def list_uploads(token: OperatorOrRegulatorDep, scope: ScopeDep, con: CursorDep) -> JSONResponse:
    records = [u.__dict__ | {"platform_ids": list(u.platform_ids)} for u in access.visible_uploads(con, scope)]
    return JSONResponse(records)


async def _spooled_run(request: Request, state, work: Callable) -> object:
    """Stream the multipart ``file`` part to disk, run ``work(cursor, path, file_name)`` on a thread."""
    settings = state.settings
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data with a part named 'file'")
    try:
        spooled = await spool_upload(content_type, request.stream(), spool_root=settings.resolved_upload_dir(),
                                     max_bytes=settings.upload_max_bytes)
    except UploadTooLarge as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from None
    except BadUpload as exc:
        raise ApiError(422, "validation_error", str(exc)) from None

    def run() -> object:
        cur = state.cursor()
        try:
            return work(cur, spooled.path, spooled.file_name)
        finally:
            cur.close()

    try:
        return await anyio.to_thread.run_sync(run)
    finally:
        spooled.remove()


@router.post("/v1/local-uploads", summary="Upload a trade file as the local admin (regulator scope, as the CLI)",
             description="The report of `settle ingest`: 201 stored or partial, 200 duplicate, 422 rejected "
                         "(the report beside the error). Only the server's local admin credential.",
             responses=responses(400, 401, 403, 413, 415, 422))
async def post_local_upload(request: Request, state: StateDep, token: LocalAdminDep, by: ActorDep,
                            accept_valid: bool = Query(False, description="Store valid rows, keep bad rows aside")
                            ) -> JSONResponse:
    def work(cur, path: FilePath, file_name: str) -> ingest.UploadReport:
        return ingest.ingest_file(cur, path, file_name=file_name, uploaded_by=by, accept_valid=accept_valid)

    report = await _spooled_run(request, state, work)
    body = report.to_json_dict()
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

    report = await _spooled_run(request, state, work)
    body = report.to_json_dict()
    if report.rejected:
        raise ApiError(422, "load_rejected", "registry file rejected, nothing loaded", extra=body)
    state.data_changed()
    return JSONResponse(body)
