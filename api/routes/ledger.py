"""`GET /v1/ledger/verify` (regulator): verify the hash-chained ledger, as `settle ledger verify`;
`GET /v1/ledger/export?format=csv|parquet` (regulator): every entry in chain order, the file `settle ledger
export` writes (the CLI saves these bytes while the server holds the store, issue 11 item 6)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import CursorDep, RegulatorDep
from api.errors import responses
from api.models import VerifyOut
from ledgers import ledger

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

EXPORT_MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
ENTRIES_HEADER = "X-Ledger-Entries"


@router.get("/verify", response_model=VerifyOut, responses=responses(401, 403),
            summary="Verify the hash-chained ledger (regulator)")
def get_ledger_verify(token: RegulatorDep, con: CursorDep) -> VerifyOut:
    v = ledger.verify(con)
    return VerifyOut(ok=v.ok, entries_checked=v.entries_checked, runs_checked=v.runs_checked,
                     first_bad_entry_id=v.first_bad_entry_id, message=v.message)


@router.get("/export", response_class=FileResponse, summary="Every ledger entry in chain order (regulator)",
            description="The file of `settle ledger export --format csv|parquet`: amount exact, created_at as UTC "
                        "text and its epoch microseconds (the value hashed), so the chain can be re-verified from "
                        f"the file alone. `{ENTRIES_HEADER}` is the number of entries.",
            responses={200: {"content": {m: {} for m in EXPORT_MEDIA.values()},
                             "description": "The export file"}, **responses(401, 403, 422)})
def get_ledger_export(token: RegulatorDep, con: CursorDep,
                      format: str = Query(..., pattern="^(csv|parquet)$", description="csv | parquet")
                      ) -> FileResponse:
    folder = Path(tempfile.mkdtemp(prefix="settle-ledger-export-"))  # removed once the response is sent
    out = folder / f"ledger.{format}"
    try:
        n = ledger.export(con, format, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(out, media_type=EXPORT_MEDIA[format], filename=out.name, headers={ENTRIES_HEADER: str(n)},
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
