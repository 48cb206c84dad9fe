"""API bearer tokens: create, list, revoke, look up (CONTRACT "HTTP API", issue 5).

Owns the ``api_tokens`` table (migration 0005). A token is shown once at creation and stored only as its
SHA-256; its public ``token_id`` is what `settle tokens list|revoke` use. Roles:
- ``operator`` acts for one platform (``scope_id`` = platform_id),
- ``owner`` sees one enterprise's datasets and payouts (``scope_id`` = its credit code, P4),
- ``regulator`` reads everything (``scope_id`` NULL).

Must not import the API, the CLI or the ledger: the API and the CLI both call this module.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Callable

import duckdb
from stdnum.cn import uscc

ROLES = ("operator", "owner", "regulator")
# Roles whose scope_id is a credit code, and what the scope means (for messages).
SCOPED_ROLES = {"operator": "platform", "owner": "enterprise"}
TOKEN_PREFIX = "stl_"


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token, never the token itself."""

    token_id: str
    role: str
    scope_id: str | None
    label: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    @property
    def who(self) -> str:
        """How the token is named in uploads.uploaded_by and sql_log.who."""
        return f"token:{self.token_id}"

    def to_json_dict(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["revoked_at"] = self.revoked_at.isoformat() if self.revoked_at else None
        return d


@dataclass(frozen=True)
class CreatedToken:
    """A new token: ``token`` is the bearer secret, shown once and never stored."""

    info: TokenInfo
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_credit_code(value: str) -> str:
    # P4: upper-cased, surrounding spaces stripped.
    return value.strip().upper()


def token_request_problem(role: str, scope_id: str | None) -> str | None:
    """Why (role, scope_id) cannot make a token, or None when it can. User input errors come back as text."""
    if role not in ROLES:
        return f"unknown role {role!r}: use one of {', '.join(ROLES)}"
    if role == "regulator":
        return "a regulator token takes no platform or enterprise" if scope_id else None
    what = SCOPED_ROLES[role]
    if not scope_id:
        return f"an {role} token needs --{what} ID (a unified social credit code)"
    code = normalise_credit_code(scope_id)
    if not uscc.is_valid(code):  # P4: check character verified
        return f"{what} id {scope_id!r} is not a valid unified social credit code (P4)"
    return None


_COLUMNS = "token_id, role, scope_id, label, created_at, created_by, revoked_at, revoked_by"


def _info(row: tuple) -> TokenInfo:
    return TokenInfo(*row)


def create_token(
    con: duckdb.DuckDBPyConnection, role: str, *, scope_id: str | None = None, label: str | None = None, created_by: str
) -> CreatedToken:
    """Create and store a token. Call ``token_request_problem`` first: bad input here is a bug (ValueError)."""
    problem = token_request_problem(role, scope_id)
    if problem:
        raise ValueError(problem)
    scope = normalise_credit_code(scope_id) if scope_id else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(6)
    con.execute(
        "INSERT INTO api_tokens (token_id, token_sha256, role, scope_id, label, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, now(), ?)",
        [token_id, hash_token(token), role, scope, label, created_by],
    )
    info = get_token(con, token_id)
    assert info is not None
    return CreatedToken(info=info, token=token)


def get_token(con: duckdb.DuckDBPyConnection, token_id: str) -> TokenInfo | None:
    rows = con.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = ?", [token_id]).fetchall()
    return _info(rows[0]) if rows else None


def list_tokens(con: duckdb.DuckDBPyConnection) -> list[TokenInfo]:
    rows = con.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, token_id").fetchall()
    return [_info(r) for r in rows]


def revoke_token(con: duckdb.DuckDBPyConnection, token_id: str, *, by: str) -> TokenInfo | None:
    """Revoke a live token (idempotent for an already revoked one). None when the id is unknown."""
    if get_token(con, token_id) is None:
        return None
    con.execute(
        "UPDATE api_tokens SET revoked_at = now(), revoked_by = ? WHERE token_id = ? AND revoked_at IS NULL",
        [by, token_id],
    )
    return get_token(con, token_id)


def live_tokens(con: duckdb.DuckDBPyConnection) -> dict[str, TokenInfo]:
    """Every live token by its SHA-256 (the API keeps this small map in memory)."""
    rows = con.execute(f"SELECT token_sha256, {_COLUMNS} FROM api_tokens WHERE revoked_at IS NULL").fetchall()
    return {r[0]: _info(r[1:]) for r in rows}


def authenticate(con: duckdb.DuckDBPyConnection, token: str) -> TokenInfo | None:
    """The live token whose hash matches, else None (unknown or revoked: the API answers 401)."""
    if not token:
        return None
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", [hash_token(token)]
    ).fetchall()
    return _info(rows[0]) if rows else None


class TokenTable:
    """The live tokens by hash, in memory, reloaded from ``api_tokens`` at most every ``ttl_s`` seconds.

    Why: a DuckDB lookup costs ~1 ms wall per request (measured), a dict lookup nothing. Staleness is
    bounded by ``ttl_s``; an unknown token forces a reload (rate-limited, so guessing cannot flood the
    store). While the server runs no other process can write the file (DuckDB: one writer), so tokens
    change only through this process. ``cursor`` opens a fresh cursor of the store (closed after use).
    """

    def __init__(self, ttl_s: float = 1.0, min_reload_s: float = 0.2) -> None:
        self.ttl_s, self.min_reload_s = ttl_s, min_reload_s
        self._by_hash: dict[str, TokenInfo] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _reload(self, cursor: Callable[[], duckdb.DuckDBPyConnection], now: float) -> None:
        cur = cursor()
        try:
            self._by_hash = live_tokens(cur)
        finally:
            cur.close()
        self._loaded_at = now

    def invalidate(self) -> None:
        """Reload on the next lookup (after a token was created or revoked through the API)."""
        with self._lock:
            self._loaded_at = float("-inf")

    def lookup(self, cursor: Callable[[], duckdb.DuckDBPyConnection], token: str) -> TokenInfo | None:
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            if now - self._loaded_at > self.ttl_s:
                self._reload(cursor, now)
            info = self._by_hash.get(digest)
            if info is None and now - self._loaded_at > self.min_reload_s:
                self._reload(cursor, now)
                info = self._by_hash.get(digest)
            return info
