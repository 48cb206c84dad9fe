"""Bearer-token authentication and role checks (CONTRACT "HTTP API", issue 5).

401: no token, an unknown token or a revoked one. 403: a known token outside its scope (wrong role, or
another platform's / enterprise's resource). Tokens are looked up by their SHA-256 (``settlement.access.tokens``).
Must not import the routes.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.state import get_state
from settlement.access import tokens
from settlement.access.tokens import TokenInfo

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="A token from `settle tokens create` (roles operator / owner / regulator).",
)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenTable:
    """The live tokens by hash, in memory, reloaded from ``api_tokens`` at most every ``ttl_s`` seconds.

    Why: a DuckDB lookup costs ~1 ms wall per request (measured), a dict lookup nothing. Staleness is
    bounded by ``ttl_s``; an unknown token forces a reload (rate-limited, so guessing cannot flood the
    store). While the server runs no other process can write the file (DuckDB: one writer), so tokens
    change only through this process.
    """

    def __init__(self, ttl_s: float = 1.0, min_reload_s: float = 0.2) -> None:
        self.ttl_s, self.min_reload_s = ttl_s, min_reload_s
        self._by_hash: dict[str, TokenInfo] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _reload(self, state, now: float) -> None:
        cur = state.cursor()
        try:
            self._by_hash = tokens.live_tokens(cur)
        finally:
            cur.close()
        self._loaded_at = now

    def invalidate(self) -> None:
        """Reload on the next lookup (after a token was created or revoked through the API)."""
        with self._lock:
            self._loaded_at = float("-inf")

    def lookup(self, state, token: str) -> TokenInfo | None:
        digest = tokens.hash_token(token)
        now = time.monotonic()
        with self._lock:
            if now - self._loaded_at > self.ttl_s:
                self._reload(state, now)
            info = self._by_hash.get(digest)
            if info is None and now - self._loaded_at > self.min_reload_s:
                self._reload(state, now)
                info = self._by_hash.get(digest)
            return info


async def current_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> TokenInfo:
    # async on purpose: the lookup is a dict hit (TokenTable), cheaper inline than a thread-pool hop.
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "missing bearer token: send Authorization: Bearer <token>",
                       headers=_CHALLENGE)
    state = get_state(request)
    info = state.token_table.lookup(state, credentials.credentials)
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


def forbid(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)
