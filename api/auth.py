"""Bearer-token authentication and role checks (CONTRACT "HTTP API", issue 5).

401: no token, an unknown token or a revoked one. 403: a known token outside its scope (wrong role, or
another platform's / enterprise's resource). Tokens are looked up by their SHA-256 (``settlement.tokens``).
Must not import the routes.
"""

from __future__ import annotations

from typing import Callable

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.state import get_state
from settlement import tokens
from settlement.tokens import TokenInfo

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="A token from `settle tokens create` (roles operator / owner / regulator).",
)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def current_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> TokenInfo:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "missing bearer token: send Authorization: Bearer <token>",
                       headers=_CHALLENGE)
    cur = get_state(request).cursor()
    try:
        info = tokens.authenticate(cur, credentials.credentials)
    finally:
        cur.close()
    if info is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token", headers=_CHALLENGE)
    return info


def require(*roles: str) -> Callable[..., TokenInfo]:
    """Dependency: the caller's token, which must have one of ``roles`` (else 403)."""

    def check(token: TokenInfo = Depends(current_token)) -> TokenInfo:
        if token.role not in roles:
            raise ApiError(403, "forbidden",
                           f"this endpoint needs {_a(' or '.join(roles))} token; yours is {_a(token.role)} token")
        return token

    return check


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def forbid(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)
