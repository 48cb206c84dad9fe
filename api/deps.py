"""FastAPI dependencies as ``Annotated`` aliases, so a route states what it needs in its signature.

``StateDep`` (the running app's ``ApiState``), ``CursorDep`` (a fresh cursor for the request, closed after
it), ``TokenDep`` (any live token), ``RegulatorDep`` / ``OperatorDep`` / ``OperatorOrRegulatorDep`` /
``OwnerOrRegulatorDep`` (a token of those roles, else 403), ``ScopeDep`` (the caller's
``settlement.access.scope.Scope``). Imports ``api.auth`` and ``api.state``; must not import the routes.
"""

from __future__ import annotations

from typing import Annotated

import duckdb
from fastapi import Depends

from api.auth import current_token, require
from api.state import ApiState, db_cursor, get_state
from settlement.access.scope import Scope
from settlement.access.tokens import TokenInfo


async def current_scope(token: TokenInfo = Depends(current_token)) -> Scope:
    return Scope.of(token)


StateDep = Annotated[ApiState, Depends(get_state)]
CursorDep = Annotated[duckdb.DuckDBPyConnection, Depends(db_cursor)]
TokenDep = Annotated[TokenInfo, Depends(current_token)]
ScopeDep = Annotated[Scope, Depends(current_scope)]
RegulatorDep = Annotated[TokenInfo, Depends(require("regulator"))]
OperatorDep = Annotated[TokenInfo, Depends(require("operator"))]
OperatorOrRegulatorDep = Annotated[TokenInfo, Depends(require("operator", "regulator"))]
OwnerOrRegulatorDep = Annotated[TokenInfo, Depends(require("owner", "regulator"))]
