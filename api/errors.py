"""The CONTRACT error envelope ``{"error": {"code", "message", "details": [...]}}`` for every error.

Owns ``ApiError``, the exception handlers (our errors, HTTP errors such as 404/405, request validation
422, and the last-resort 500) and the OpenAPI descriptions of error responses. Must not import routes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.sql_guard import SnapshotUnavailable
from settlement.core.errors import UserError

log = logging.getLogger("settle.api")

# settlement.core.errors.UserError codes → HTTP status.
USER_ERROR_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422, "forbidden": 403}
_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 429: "too_many_requests",
    422: "validation_error", 500: "internal_error", 503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None,
                 headers: dict[str, str] | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers
        self.extra = extra or {}  # more top-level keys beside "error" (e.g. a rejected upload's report)


class ErrorDetail(BaseModel):
    code: str = Field(examples=["forbidden"])
    message: str = Field(examples=["an owner token cannot use this endpoint"])
    details: list[Any] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorDetail


def envelope(code: str, message: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": jsonable_encoder(details or [])}}


# status: (description, example code, example message) of the OpenAPI error responses.
_ERROR_DOCS: dict[int, tuple[str, str, str]] = {
    400: ("Refused request", "bad_request", "..."),
    401: ("Missing, unknown or revoked bearer token",
          "unauthorized", "missing bearer token: send Authorization: Bearer <token>"),
    403: ("Known token, out of its scope",
          "forbidden", "this endpoint needs a regulator token; yours is an owner token"),
    404: ("No such resource", "not_found", "no upload with id 7"),
    409: ("Conflicts with the current state", "conflict", "upload 3 is already retracted"),
    413: ("Upload larger than the configured cap",
          "payload_too_large", "upload exceeds the size cap of 4294967296 bytes"),
    415: ("Not multipart/form-data", "unsupported_media_type", "send the trade file as multipart/form-data"),
    429: ("Too many regulator queries running at once",
          "too_many_queries", "2 queries are already running; try again shortly"),
    503: ("The server's database memory budget was exhausted; nothing stored",
          "out_of_memory", "the server ran out of its database memory budget ..."),
    422: ("Invalid request parameters or body",
          "validation_error", "invalid request: query.year: Input should be a valid integer"),
}
ERROR_RESPONSES: dict[int, dict] = {
    status: {"model": ErrorBody, "description": description,
             "content": {"application/json": {"example": envelope(code, message)}}}
    for status, (description, code, message) in _ERROR_DOCS.items()
}


def responses(*statuses: int) -> dict[int | str, dict]:
    return {s: ERROR_RESPONSES[s] for s in statuses}


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Methods of every documented route whose path template matches (from the OpenAPI paths: public API)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), request.url.path):
            methods |= {m.upper() for m in operations if m in _HTTP_METHODS}
    return sorted(methods)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = {**jsonable_encoder(exc.extra), **envelope(exc.code, exc.message, exc.details)}
        return _json(exc.status, body, exc.headers)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        status = USER_ERROR_STATUS.get(exc.code, 422)
        return _json(status, envelope(exc.code, exc.message))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # Starlette names only the first route's methods; list every route's
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return _json(exc.status_code, envelope(code, message), headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        message = f"invalid request: {'.'.join(first['loc'])}: {first['message']}"
        return _json(422, envelope("validation_error", message, details))

    @app.exception_handler(duckdb.OutOfMemoryException)
    async def _out_of_memory(_: Request, exc: duckdb.OutOfMemoryException) -> JSONResponse:
        # A resource limit of this server, not a bug in the request: nothing was stored (one transaction).
        log.warning("out of memory: %s", exc)
        return _json(503, envelope("out_of_memory", "the server ran out of its database memory budget "
                                   "(SETTLE_MEMORY_LIMIT) for this request; nothing was stored; retry later "
                                   "or ask the operator of the server to raise the limit"))

    @app.exception_handler(SnapshotUnavailable)
    async def _no_snapshot(_: Request, exc: SnapshotUnavailable) -> JSONResponse:
        return _json(503, envelope("sql_unavailable", str(exc)))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:  # a bug: logged, never a traceback out
        log.exception("unhandled error")
        return _json(500, envelope("internal_error", f"internal error ({type(exc).__name__}); see the server log"))
