"""The settlement lifecycle over HTTP (CONTRACT "Settlement lifecycle", issue 11 item 6), the routes the
command line uses while the server runs: runs list, approve, reject, notice, object, resolve an objection,
disburse, record a paid batch, a beneficiary's statement. Regulator only; who acts is ``ActorDep`` (the
CLI's `--by` through the local admin credential, else the token). Refusals (four eyes, a run not proposed,
unknown ids) come back from ``settlement.lifecycle`` as ``UserError`` (403 / 404 / 409 / 422).
Thin edge; imported only by ``api.routes``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Callable, Iterator, TypeVar

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response

from api.deps import CursorDep, RegulatorDep, StateDep
from api.endpoint import ActorDep
from api.errors import ApiError, responses
from api.models import SAYS_SOMETHING
from api.state import ApiState
from api.wire import wire
from settlement.core.errors import UserError

router = APIRouter(prefix="/v1", tags=["lifecycle"])
T = TypeVar("T")


@contextmanager
def refused_as_conflict() -> Iterator[None]:
    """A well-formed request the lifecycle refuses (unreviewed flags, a date before its batch ...) is a 409
    with the core's message: the request was valid, the state does not allow it."""
    try:
        yield
    except UserError as exc:
        if exc.code != "invalid":
            raise
        raise ApiError(409, "conflict", exc.message) from None


def step(state: ApiState, act: Callable[[], T]) -> T:
    """One step of the lifecycle: ``act()`` with its refusals as 409 (``refused_as_conflict``); the data
    changed, so the state's caches are told."""
    with refused_as_conflict():
        result = act()
    state.data_changed()
    return result

YearQuery = Query(..., ge=1900, le=9999, description="settlement year")
ERRORS = responses(400, 401, 403, 404, 409, 422)  # 400: a JSON body that does not parse
Text = Body(..., embed=True, min_length=1, max_length=2000, pattern=SAYS_SOMETHING)
MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


@router.get("/runs", summary="Every run with its review state (regulator), as `settle runs list --format json`",
            responses=ERRORS)
def get_runs(token: RegulatorDep, con: CursorDep,
             year: int | None = Query(None, ge=1900, le=9999, description="only this year")) -> JSONResponse:
    from settlement.lifecycle.review import run_records

    return JSONResponse(wire(run_records(con, year)))


@router.post("/runs/{run_id}/approve", summary="Approve a proposed run (four eyes)", responses=ERRORS)
def post_approve(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep, run_id: int = Path(..., ge=1),
                 comment: str | None = Body(None, embed=True),
                 acknowledge_flags: bool = Body(False, embed=True)) -> JSONResponse:
    from settlement.lifecycle.review import approve_run

    event = step(state, lambda: approve_run(con, run_id, by=by, comment=comment, acknowledge_flags=acknowledge_flags))
    return JSONResponse({"run_id": run_id, "by": by, "event": event})


@router.post("/runs/{run_id}/reject", summary="Reject a proposed run (four eyes)", responses=ERRORS)
def post_reject(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep, run_id: int = Path(..., ge=1),
                reason: str = Text) -> JSONResponse:
    from settlement.lifecycle.review import reject_run

    event = step(state, lambda: reject_run(con, run_id, by=by, reason=reason))
    return JSONResponse({"run_id": run_id, "by": by, "event": event})


@router.post("/notices", summary="Publish the public notice of a year's approved amounts not yet noticed",
             description="The notice and its lines; render it with `settle notice` (csv, xlsx, pdf).",
             responses=ERRORS)
def post_notice(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep, year: int = YearQuery
                ) -> JSONResponse:
    from settlement.lifecycle.notice import publish_notice

    return JSONResponse(wire(step(state, lambda: publish_notice(con, year, by=by))))


@router.post("/objections", summary="Object to a notice line: held back from disbursement until resolved",
             responses=ERRORS)
def post_objection(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep,
                   year: int = Body(..., embed=True, ge=1900, le=9999), beneficiary_id: str = Text, reason: str = Text,
                   dataset_id: str | None = Body(None, embed=True)) -> JSONResponse:
    from settlement.lifecycle.objections import object_line

    objection_id = step(state, lambda: object_line(con, year, beneficiary_id, by=by, reason=reason,
                                                   dataset_id=dataset_id))
    return JSONResponse({"objection_id": objection_id})


@router.post("/objections/{objection_id}/resolve", summary="Resolve an objection (upheld | dismissed)",
             responses=ERRORS)
def post_resolve(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep,
                 objection_id: int = Path(..., ge=1),
                 outcome: str = Body(..., embed=True, pattern="^(upheld|dismissed)$")) -> JSONResponse:
    from settlement.lifecycle.objections import resolve_objection

    event = step(state, lambda: resolve_objection(con, objection_id, by=by, outcome=outcome))
    return JSONResponse({"objection_id": objection_id, "outcome": outcome, "by": by, "event": event})


@router.post("/disbursements", summary="Record a batch of payment instructions for a year's amounts due",
             description="The batch (batch_id null when nothing is due) and its instructions.", responses=ERRORS)
def post_disburse(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep, year: int = YearQuery
                  ) -> JSONResponse:
    from settlement.lifecycle.disburse import disburse

    return JSONResponse(wire(step(state, lambda: disburse(con, year, by=by))))


@router.post("/disbursements/{batch_id}/paid", summary="Record the bank's confirmation that a batch was paid",
             responses=ERRORS)
def post_paid(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep, batch_id: str = Path(...),
              paid_on: dt.date = Body(..., embed=True)) -> JSONResponse:
    from settlement.lifecycle.disburse import confirm_paid

    event = step(state, lambda: confirm_paid(con, batch_id, paid_on=paid_on, by=by))
    return JSONResponse({"batch_id": batch_id.strip(), "paid_on": paid_on.isoformat(), "event": event})


@router.get("/statements/{beneficiary_id}", summary="A beneficiary's statement of a year (xlsx | pdf file)",
            response_class=Response, responses=ERRORS)
def get_statement(token: RegulatorDep, con: CursorDep, beneficiary_id: str = Path(...), year: int = YearQuery,
                  format: str = Query("xlsx", pattern="^(xlsx|pdf)$")) -> Response:
    from settlement.lifecycle.documents import write
    from settlement.lifecycle.statement import statement_document

    doc = statement_document(con, year, beneficiary_id.strip())
    with tempfile.TemporaryDirectory(prefix="settle-statement-") as tmp:
        out = FilePath(tmp) / f"statement.{format}"
        write(doc, format, out)
        content = out.read_bytes()
    return Response(content, media_type=MEDIA[format])
