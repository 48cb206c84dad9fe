"""`GET /v1/payouts`: current ledger balances per key, cut to the caller's scope (``scope.visible_payouts``)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Query, Response

from api.deps import CursorDep, ScopeDep, StateDep
from api.errors import responses
from api.models import PayoutsOut
from ledgers import ledger
from settlement.access import scope as access

router = APIRouter(prefix="/v1/payouts", tags=["payouts"])


@router.get(
    "", response_model=PayoutsOut, responses=responses(401, 422),
    summary="Current payouts (owner: its own; operator: its platform's; regulator: all)",
    description=(
        "One row per key with a non-zero Σ of ledger entries, as `settle payouts --format json`. "
        "An owner sees the rows whose beneficiary is its enterprise; an operator the rows whose beneficiary "
        "is its platform enterprise (the clause-7 subsidy, and clause-6 awards if it also owns datasets)."
    ),
)
def get_payouts(
    state: StateDep,
    scope: ScopeDep,
    con: CursorDep,
    year: int | None = Query(None, ge=1900, le=2999, description="Only this year", examples=[2024]),
) -> Response:
    # The ledger is append-only (P13): its entry count names its state, so a cached answer for the same
    # count, year and scope is exact. Saves the query and the JSON rendering on repeated reads.
    version = con.execute("SELECT count(*) FROM ledger_entries").fetchall()[0][0]
    key = (version, year, scope)
    body = state.payouts_cache.get(key)
    if body is None:
        rows = ledger.payouts_records(access.visible_payouts(con, scope, year))
        total = sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))
        body = PayoutsOut(year=year, scope=scope.label, total=ledger.format_amount(total),
                          payouts=rows).model_dump_json()
        state.payouts_cache.put(key, body)
    return Response(content=body, media_type="application/json")
