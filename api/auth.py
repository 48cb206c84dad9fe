"""Bearer-token authentication and role checks (CONTRACT "HTTP API", issue 5).

401: no token, an unknown token or a revoked one. 403: a known token of the wrong role for the route.
Another platform's / enterprise's resource is not a 403 but a 404 like a missing one
(``settlement.access.scope``). Tokens are looked up by their SHA-256 in the in-memory
``settlement.access.tokens.TokenTable``. Imports ``api.state``; must not import the routes or ``api.deps``.
"""

from __future__ import annotations

from typing import Callable

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.state import get_state
from settlement.access.tokens import TokenInfo

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="A token from `settle tokens create` (roles operator / owner / regulator).",
)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def current_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> TokenInfo:
    # async on purpose: the lookup is a dict hit (TokenTable), cheaper inline than a thread-pool hop.
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "missing bearer token: send Authorization: Bearer <token>",
                       headers=_CHALLENGE)
    state = get_state(request)
    info = state.token_table.lookup(state.cursor, credentials.credentials)
    if info is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token", headers=_CHALLENGE)
    return info


def require(*roles: str) -> Callable[..., TokenInfo]:
    """Dependency: the caller's token, which must have one of ``roles`` (else 403)."""

    async def check(token: TokenInfo = Depends(current_token)) -> TokenInfo:
        if token.role not in roles:
            raise ApiError(403, "forbidden",
                           f"this endpoint needs {_a(' or '.join(roles))} token; yours is {_a(token.role)} token")
        return token

    return check


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
