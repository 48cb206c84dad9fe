"""Settling and explaining for the command line through the server (issue 11 item 6):
`POST /v1/settlements` (every year, or `?year=`, as `settle run`), `GET /v1/explain/dataset/{id}?year=`,
`GET /v1/explain/platform/{id}?year=`, `GET /v1/payouts.csv` (the exact bytes of `settle payouts
--format csv`, also `?state=`). Answers are the core's results as JSON (``api.wire``); the CLI prints
them as it prints its own. Thin edge; imported only by ``api.routes``.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from api.deps import CursorDep, OwnerOrRegulatorDep, RegulatorDep, ScopeDep, StateDep
from api.endpoint import ActorDep
from api.errors import ApiError, responses
from api.wire import wire
from ledgers import ledger
from settlement.access import scope as access
from settlement.core.params import load_params

router = APIRouter(tags=["settlements"])

YearQuery = Query(..., ge=1900, le=9999, description="Settlement year")
Limit = Query(50, ge=0, le=100_000, description="excluded trades to list")


@router.post("/v1/settlements", summary="Settle every year, or one (regulator), as `settle run [--year]`",
             description="`no_run` names the policy window when the year has no in-scope day (nothing recorded).",
             responses=responses(401, 403, 409, 422))
def post_settlements(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep,
                     year: int | None = Query(None, ge=1900, le=9999, description="only this year")) -> JSONResponse:
    from settlement.run import settle_years

    try:
        settled = settle_years(con, year, params=load_params(), started_by=by)
    except ledger.LedgerConflict as exc:
        raise ApiError(409, "conflict", f"another settlement run committed first: {exc}; run again") from None
    finally:
        # every year commits on its own: a conflict in a later year follows committed earlier ones, which the
        # regulator's SQL snapshot and the console must show (they are keyed by the generation)
        state.data_changed()
    if settled.outside_window:
        start, end = settled.outside_window
        return JSONResponse({"runs": [], "no_run": {"start": start, "end": end}})
    return JSONResponse({"runs": wire(settled.runs), "no_run": None})


@router.get("/v1/explain/dataset/{dataset_id}", summary="Clause 6 for one dataset (its owner, regulator)",
            description="As `settle explain dataset`: one explanation per owner of the year (or `owner=`).",
            responses=responses(401, 403, 404, 422))
def get_explain_dataset(token: OwnerOrRegulatorDep, scope: ScopeDep, con: CursorDep,
                        dataset_id: str = Path(...), year: int = YearQuery, owner: str | None = Query(None),
                        limit: int = Limit) -> JSONResponse:
    from settlement.core.identifiers import normalise_code
    from settlement.explain import NoRun, explain_dataset_owners

    dataset_id = dataset_id.strip()
    own = access.visible_dataset(con, scope, dataset_id) if not scope.everything else None
    owner_id = own or (normalise_code(owner) if owner else None)
    try:
        return JSONResponse(wire(explain_dataset_owners(con, dataset_id, year, limit=limit, params=load_params(),
                                                        owner_id=owner_id)))
    except NoRun as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get("/v1/explain/platform/{platform_id}", summary="Clause 7 for one platform (regulator)",
            description="As `settle explain platform`.", responses=responses(401, 403, 404, 422))
def get_explain_platform(token: RegulatorDep, con: CursorDep, platform_id: str = Path(...), year: int = YearQuery,
                         limit: int = Limit) -> JSONResponse:
    from settlement.core.identifiers import normalise_code
    from settlement.explain import NoRun, explain_platform

    try:
        return JSONResponse(wire(explain_platform(con, normalise_code(platform_id), year, limit=limit)))
    except NoRun as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get("/v1/payouts.csv", tags=["payouts"], response_class=Response, responses=responses(401, 403, 422),
            summary="Payouts as the CSV of CONTRACT (`settle payouts --format csv`), cut to the caller's scope",
            description="`state=proposed|approved|disbursed` (regulator) gives the Σ in that state.")
def get_payouts_csv(scope: ScopeDep, con: CursorDep,
                    year: int | None = Query(None, ge=1900, le=9999, description="only this year"),
                    state: str | None = Query(None, pattern="^(proposed|approved|disbursed)$")) -> Response:
    if state is None:
        df = access.visible_payouts(con, scope, year)
    elif scope.everything:
        df = ledger.payouts(con, year, state=state)
    else:
        raise ApiError(403, "forbidden", "payouts by state need a regulator token")
    return Response(ledger.payouts_csv(df), media_type="text/csv; charset=utf-8")
