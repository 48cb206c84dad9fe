"""Integrity flags over HTTP (issue 13, CONTRACT "Integrity flags"), the routes `settle flags` uses while the
server holds the store (issue 11 item 6): `GET /v1/flags?year=` (the flags of the year's latest run with
their latest review) and `POST /v1/flags/{flag_id}/review` (a reviewer's decision, append-only). Regulator
only; the reviewer is ``ActorDep`` (the CLI's `--by` through the local admin credential, else the token).
Answers are the core's results as JSON (``api.wire``); refusals come back from ``settlement.integrity.flags``
as ``UserError`` (404 no run / no flag, 422 invalid). Thin edge; imported only by ``api.routes``.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse

from api.deps import CursorDep, RegulatorDep, StateDep
from api.endpoint import ActorDep
from api.errors import responses
from api.models import SAYS_SOMETHING
from api.wire import wire
from settlement.integrity.flags import review_flag, year_flags

router = APIRouter(prefix="/v1/flags", tags=["flags"])

INT32 = 2**31 - 1  # any year the CLI takes: one without a run is a 404 with the core's message, not a 422


@router.get("", summary="The integrity flags of a year's latest run with their latest review (regulator)",
            description="As `settle flags --year Y --format json` (ordered by code, then flag id). 404 when the "
                        "year has no settlement run.", responses=responses(401, 403, 404, 422))
def get_flags(token: RegulatorDep, con: CursorDep,
              year: int = Query(..., ge=-INT32, le=INT32, description="settlement year")) -> JSONResponse:
    return JSONResponse(wire(year_flags(con, year)))


@router.post("/{flag_id}/review", summary="Record a reviewer's decision on a flag (regulator; append-only)",
             description="As `settle flags review`: the latest review of a flag counts. 404 for an unknown flag.",
             responses=responses(400, 401, 403, 404, 422))
def post_review(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep,
                flag_id: int = Path(..., ge=0, le=2**62, description="flag id from GET /v1/flags"),
                outcome: str = Body(..., embed=True, pattern="^(cleared|confirmed)$"),
                comment: str = Body(..., embed=True, min_length=1, max_length=2000, pattern=SAYS_SOMETHING)) -> JSONResponse:
    review = review_flag(con, flag_id, by=by, outcome=outcome, comment=comment)
    state.data_changed()
    return JSONResponse(wire(review))
