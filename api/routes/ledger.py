"""`GET /v1/ledger/verify` (regulator): verify the hash-chained ledger, as `settle ledger verify`."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CursorDep, RegulatorDep
from api.errors import responses
from api.models import VerifyOut
from ledgers import ledger

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])


@router.get("/verify", response_model=VerifyOut, responses=responses(401, 403),
            summary="Verify the hash-chained ledger (regulator)")
def get_ledger_verify(token: RegulatorDep, con: CursorDep) -> VerifyOut:
    v = ledger.verify(con)
    return VerifyOut(ok=v.ok, entries_checked=v.entries_checked, runs_checked=v.runs_checked,
                     first_bad_entry_id=v.first_bad_entry_id, message=v.message)
