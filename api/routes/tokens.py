"""Token administration for regulators while the server runs: list, create, revoke (``settlement.access.tokens``).

Why over HTTP as well as the CLI: the server holds the database (DuckDB: one writing process), so
`settle tokens revoke` needs the server stopped; a leaked token can be revoked here at once.
Must not hold rules; imported only by ``api.routes``.
"""

from __future__ import annotations

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import CursorDep, RegulatorDep, StateDep
from api.endpoint import ActorDep
from api.errors import ApiError, responses
from api.models import TokenCreatedOut, TokenCreateIn, TokenOut
from settlement.access import tokens

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])

TokenId = Path(..., min_length=1, max_length=64, description="Public token id", examples=["tok_1a2b3c4d5e6f"])


@router.get("", response_model=list[TokenOut], responses=responses(401, 403),
            summary="List tokens (regulator): ids, roles, scopes, state; never tokens or hashes")
def list_tokens(token: RegulatorDep, con: CursorDep) -> JSONResponse:
    return JSONResponse([t.to_json_dict() for t in tokens.list_tokens(con)])


@router.post("", status_code=201, response_model=TokenCreatedOut, responses=responses(400, 401, 403, 422),
             summary="Create a token (regulator); the response is the only time the token is shown")
def create_token(body: TokenCreateIn, state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep) -> JSONResponse:
    problem = tokens.token_request_problem(body.role, body.scope_id)
    if problem:
        raise ApiError(422, "validation_error", problem)
    created = tokens.create_token(con, body.role, scope_id=body.scope_id, label=body.label, created_by=by)
    state.token_table.invalidate()
    return JSONResponse({**created.info.to_json_dict(), "token": created.token}, status_code=201)


@router.post("/{token_id}/revoke", response_model=TokenOut, responses=responses(401, 403, 404, 422),
             summary="Revoke a token (regulator): refused with 401 from the next request on")
def revoke_token(state: StateDep, token: RegulatorDep, by: ActorDep, con: CursorDep,
                 token_id: str = TokenId) -> JSONResponse:
    info = tokens.revoke_token(con, token_id, by=by)
    if info is None:
        raise ApiError(404, "not_found", f"no token with id {token_id!r}")
    state.token_table.invalidate()
    return JSONResponse(info.to_json_dict())
