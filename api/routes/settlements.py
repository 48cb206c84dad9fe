"""`POST /v1/settlements/{year}` (regulator): settle one year, as `settle run --year YEAR`."""

from __future__ import annotations

from fastapi import APIRouter, Path

from api.deps import CursorDep, RegulatorDep, StateDep
from api.errors import ApiError, responses
from api.models import RunOut
from ledgers import ledger
from settlement.core.params import load_params

router = APIRouter(prefix="/v1/settlements", tags=["settlements"])

Year = Path(..., ge=1900, le=2999, description="Settlement year (calendar year of the local date, P3)",
            examples=[2024])


def _entry_json(e: ledger.Entry) -> dict:
    return {"entry_id": e.entry_id, "run_id": e.run_id, "year": e.year, "clause": e.clause,
            "beneficiary_id": e.beneficiary_id, "dataset_id": e.dataset_id or "",
            "amount": ledger.format_amount(e.amount), "kind": e.kind, "created_at": e.created_at.isoformat(),
            "hash": e.hash}


@router.post(
    "/{year}", response_model=RunOut, responses=responses(401, 403, 409, 422),
    summary="Settle one year (regulator): what the run appended to the ledger",
    description="Same as `settle run --year YEAR`: appends only the deltas (P13); unchanged inputs append nothing.",
)
def post_settlement(state: StateDep, token: RegulatorDep, con: CursorDep, year: int = Year) -> RunOut:
    from settlement.run import run_settlement  # the settlement stage (issue 4b)

    try:
        result = run_settlement(con, year, params=load_params())
    except ledger.LedgerConflict as exc:
        raise ApiError(409, "conflict", f"another settlement run committed first: {exc}; run again") from None
    state.data_changed()
    return RunOut(run_id=result.run_id, year=result.year, appended_count=len(result.appended),
                  total_appended=ledger.format_amount(result.total_appended),
                  appended=[_entry_json(e) for e in result.appended])
