"""Web-console sessions, CSRF tokens and the sign-in rate limit (issue 12 item 2).

Sessions are server-side, in this process's memory: a dict keyed by a random id (32 bytes, urlsafe); the
cookie carries only that id (HttpOnly, SameSite=Strict, Secure over https). Why not a signed cookie: a
server-side session ends at once on sign-out or when its token is revoked, needs no signing key to keep
secret, and the server is one process anyway (DuckDB admits one writer, docs/architecture.md). The cost:
a restart signs everyone out. A session holds the bearer token it was opened with (memory only, never
sent back), so every request re-checks it against the live ``TokenTable``: a revoked token ends its
sessions within a second. A session ends ``lifetime_s`` after sign-in or ``idle_s`` after its last request.

CSRF: every session has its own random token, put in every form (field ``csrf``; the upload form carries
it in its action URL, because the multipart body is streamed to disk unparsed) and compared in constant
time. The sign-in form (no session yet) uses a double-submit cookie ``settle_login_csrf``.

Must not import the routes or the settlement modules.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

SESSION_COOKIE = "settle_session"
LOGIN_CSRF_COOKIE = "settle_login_csrf"
LANG_COOKIE = "settle_lang"


@dataclass
class Session:
    token: str  # the bearer token signed in with (memory only)
    token_id: str
    csrf: str
    created: float
    last_seen: float
    data: dict = field(default_factory=dict)  # e.g. the operator's last upload report


class SessionStore:
    """Sessions by id, thread-safe, with absolute and idle expiry (``time.monotonic`` seconds)."""

    def __init__(self, lifetime_s: float, idle_s: float, clock=time.monotonic) -> None:
        self.lifetime_s, self.idle_s, self._clock = lifetime_s, idle_s, clock
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token: str, token_id: str) -> tuple[str, Session]:
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        session = Session(token=token, token_id=token_id, csrf=secrets.token_urlsafe(24), created=now, last_seen=now)
        with self._lock:
            self._purge(now)
            self._by_id[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if now - session.created > self.lifetime_s or now - session.last_seen > self.idle_s:
                del self._by_id[session_id]
                return None
            session.last_seen = now
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)

    def __len__(self) -> int:
        return len(self._by_id)

    def _purge(self, now: float) -> None:
        """Under the lock: forget expired sessions (on each sign-in, so the dict stays bounded)."""
        dead = [k for k, s in self._by_id.items()
                if now - s.created > self.lifetime_s or now - s.last_seen > self.idle_s]
        for k in dead:
            del self._by_id[k]


class LoginLimiter:
    """At most ``max_attempts`` sign-in attempts per client address in any ``window_s`` (sliding window)."""

    def __init__(self, max_attempts: int, window_s: float, clock=time.monotonic) -> None:
        self.max_attempts, self.window_s, self._clock = max_attempts, window_s, clock
        self._attempts: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> tuple[bool, int]:
        """Record an attempt; (allowed, seconds to wait when refused)."""
        now = self._clock()
        with self._lock:
            q = self._attempts.setdefault(client, deque())
            while q and now - q[0] > self.window_s:
                q.popleft()
            if len(q) >= self.max_attempts:
                return False, max(1, int(self.window_s - (now - q[0])) + 1)
            q.append(now)
            if len(self._attempts) > 10_000:  # forget idle clients
                for k in [k for k, v in self._attempts.items() if not v or now - v[-1] > self.window_s]:
                    del self._attempts[k]
            return True, 0


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))


def new_csrf() -> str:
    return secrets.token_urlsafe(24)
