"""`GET /v1/affiliates/explain?a=&b=&on=` (regulator): why two parties are related, or why the nearest records
do not qualify (P5-P8), as `settle affiliates explain` prints it while the server holds the store (issue 11
item 6). The equity threshold is the dated policy parameter (P6) in force on ``on``, without a date its most
recent value, as the CLI takes it. Thin edge over ``settlement.affiliates.explain``; only ``api.routes``
imports it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import CursorDep, RegulatorDep
from api.errors import ApiError, responses
from api.models import SAYS_SOMETHING
from api.wire import wire
from settlement.affiliates.explain import explain_relation
from settlement.core.identifiers import normalise_party_id
from settlement.core.params import ParameterNotInForce, load_params

router = APIRouter(prefix="/v1/affiliates", tags=["affiliates"])

THRESHOLD_PARAM = "affiliates.equity_threshold"


def party_id() -> Any:  # one Query per parameter: FastAPI keeps each parameter's name on its Query object
    return Query(..., min_length=1, max_length=64, pattern=SAYS_SOMETHING, description="credit code or P: person id")


def _threshold(on: dt.date | None) -> Decimal:
    loaded = load_params()
    if on is None:  # "were they ever related?": the value of the period that starts last
        return max((p for p in loaded.periods if p.name == THRESHOLD_PARAM), key=lambda p: p.valid_from).value
    try:
        return loaded.value(THRESHOLD_PARAM, on)
    except ParameterNotInForce as exc:
        # 404: a well-formed date for which no threshold exists (the policy window), said as the CLI says it
        raise ApiError(404, "not_found", f"{exc} (P6): choose a date inside the policy window") from None


@router.get("/explain", summary="Why two parties are related, or why not (regulator), as `settle affiliates explain`",
            description="The explanation (`related`, `text`, the records cited as `steps`) and the "
                        "`equity_threshold` applied. `on` omitted: every non-exempt record counts, dates ignored. "
                        "404 for a date outside the policy window (no threshold in force).",
            responses=responses(401, 403, 404, 422))
def get_explain(token: RegulatorDep, con: CursorDep, a: str = party_id(), b: str = party_id(),
                on: dt.date | None = Query(None, description="trade date (P8); omitted: dates ignored")
                ) -> JSONResponse:
    threshold = _threshold(on)
    result = explain_relation(con, normalise_party_id(a), normalise_party_id(b), on=on, equity_threshold=threshold)
    return JSONResponse(wire(result) | {"equity_threshold": str(threshold)})
