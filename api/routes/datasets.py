"""`GET /v1/datasets/{dataset_id}/status`: clause-6 progress of one dataset (its owner, regulators).

Thin edge over ``settlement.explain.explain_dataset`` (the latest run of the year; computes no rule);
``settlement.access.scope.visible_dataset`` decides who may see it: another owner's dataset answers 404
like a missing one. Must not hold rules; imported only by ``api.routes``.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Path, Query

from api.deps import CursorDep, OwnerOrRegulatorDep, ScopeDep
from api.errors import ApiError, responses
from api.models import DatasetStatusOut
from ledgers.ledger import format_amount
from settlement import explain
from settlement.access import scope as access

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format_amount(Decimal(value))


@router.get(
    "/{dataset_id}/status", response_model=DatasetStatusOut, responses=responses(401, 403, 404, 422),
    summary="Clause-6 status of a dataset (its owner, regulator)",
    description=(
        "Unrelated callers so far and the threshold (P10.3–4), base, gross, projected payable, cap used "
        "(P10.5–7) and excluded trades counted by reason (P12), as the latest settlement run of the year "
        "computed them. 404 when the dataset is unknown or the year has no run yet."
    ),
)
def get_dataset_status(
    token: OwnerOrRegulatorDep,
    scope: ScopeDep,
    con: CursorDep,
    dataset_id: str = Path(..., min_length=1, max_length=64, examples=["DS-001"]),
    year: int = Query(..., ge=1900, le=2999, examples=[2024]),
    limit: int = Query(50, ge=0, le=1000, description="How many excluded trades to list"),
    owner: str | None = Query(None, min_length=1, max_length=64,
                              description="Regulator: which owner's result (P10.1 dated ownership); "
                                          "an owner always sees its own"),
) -> DatasetStatusOut:
    own = access.visible_dataset(con, scope, dataset_id)
    try:
        x = explain.explain_dataset(con, dataset_id, year, limit=limit, owner_id=own or owner)
    except explain.NoRun as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    as_of = con.execute("SELECT finished_at FROM settlement_runs WHERE run_id = ?", [x.run_id]).fetchall()
    cap_used = cap_remaining = None
    if x.owner_cap is not None:
        used = min(Decimal(x.owner_payable_total), Decimal(x.owner_cap))
        cap_used, cap_remaining = _money(used), _money(Decimal(x.owner_cap) - used)
    # P10.1: the registration periods of the year; an owner sees only its own (another owner is another tenant)
    periods = [p for p in x.periods if own is None or p.owner_id == own]
    return DatasetStatusOut(
        year=x.year, dataset_id=x.dataset_id, owner_id=x.owner_id, run_id=x.run_id,
        owner_periods=[{"owner_id": p.owner_id, "owner_from": p.owner_from and p.owner_from.isoformat(),
                        "owner_until": p.owner_until and p.owner_until.isoformat()} for p in periods],
        owners_in_year=[o for o in x.owners_in_year if own is None or o == own],
        as_of=as_of[0][0].isoformat() if as_of and as_of[0][0] else None,
        unrelated_callers=x.caller_groups, caller_threshold=x.caller_threshold, callers_missing=x.callers_missing,
        qualifies=x.qualifies, eligible_sales=x.eligible_sales, base=_money(x.base),
        rate=None if x.rate is None else str(x.rate), gross=_money(x.gross), prior_awards=_money(x.prior_awards),
        payable=_money(x.payable), owner_payable_total=_money(x.owner_payable_total), owner_cap=_money(x.owner_cap),
        cap_used=cap_used, cap_remaining=cap_remaining, capped=x.capped, target=_money(x.target),
        ledger_balance=_money(x.ledger_balance), excluded_by_reason=dict(x.excluded_by_reason),
        excluded_total=x.excluded_total,
        groups=[{"group_id": g.group_id, "counted": g.counted, "net_amount": _money(g.net_amount),
                 "buyers": [{"buyer_id": b, "eligible_sales": n, "net_amount": _money(net)} for b, n, net in g.buyers],
                 "merge_paths": list(g.merge_paths)}
                for g in x.groups],
        excluded=[{"platform_id": e.platform_id, "trade_id": e.trade_id, "kind": e.kind, "reason": e.reason,
                   "detail": e.detail} for e in x.excluded],
    )
