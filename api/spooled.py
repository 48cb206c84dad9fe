"""A route's uploaded file: the ``file`` part of a multipart request streamed to disk, worked on with a
store cursor on a worker thread, removed.

Shared by every route that takes a file (`POST /v1/uploads`, `POST /v1/local-uploads`,
`POST /v1/registries/{kind}`): the size cap (413), the media type (415) and a malformed form (422) answer
alike on all of them, with the CONTRACT error envelope. The streaming itself is ``api.upload_stream``.
Must not import the routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import anyio
import duckdb
from fastapi import Request

from api.errors import ApiError
from api.state import ApiState
from api.upload_stream import BadUpload, UploadTooLarge, spool_upload

T = TypeVar("T")


async def with_spooled_file(request: Request, state: ApiState, work: Callable[[duckdb.DuckDBPyConnection, Path, str], T],
                            *, what: str = "the file") -> T:
    """Stream the ``file`` part of ``request`` to a private spool directory, run ``work(cursor, path, file_name)``
    on a worker thread (it blocks on the store) with a cursor of its own, then remove the spool whatever happened."""
    settings = state.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.upload_max_bytes + 64 * 1024:
        raise ApiError(413, "payload_too_large", f"upload exceeds the size cap of {settings.upload_max_bytes} bytes")
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", f"send {what} as multipart/form-data with a part named 'file'")
    try:
        spooled = await spool_upload(content_type, request.stream(), spool_root=settings.resolved_upload_dir(),
                                     max_bytes=settings.upload_max_bytes)
    except UploadTooLarge as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from None
    except BadUpload as exc:
        raise ApiError(422, "validation_error", str(exc)) from None

    def run() -> T:
        cur = state.cursor()
        try:
            return work(cur, spooled.path, spooled.file_name)
        finally:
            cur.close()

    try:
        return await anyio.to_thread.run_sync(run)
    finally:
        spooled.remove()
