"""`GET /healthz`: liveness and schema version, no token needed."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CursorDep
from api.models import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and schema version (no token needed)", response_model=HealthOut)
def healthz(con: CursorDep) -> HealthOut:
    version = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    return HealthOut(status="ok", schema_version=version)
