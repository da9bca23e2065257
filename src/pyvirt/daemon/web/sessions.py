"""Web console sessions: random ids in an HttpOnly cookie, kept in the daemon's memory.

A session belongs to a user of :mod:`pyvirt.api.users` and holds its CSRF token: every
state-changing request of the session must carry it in ``X-CSRF-Token`` (the page reads it
from the ``pyvirt_csrf`` cookie, which a page of another site can neither read nor set: the
double-submit pattern, checked against the server's copy too). Sessions end on logout, after
``idle`` seconds without a request, ``lifetime`` seconds after login, when the user is
deleted, or when the daemon restarts.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "SESSION_COOKIE", "Session", "SessionStore"]

SESSION_COOKIE = "pyvirt_session"
CSRF_COOKIE = "pyvirt_csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass
class Session:
    """One logged-in browser."""

    id: str
    user: str
    csrf: str
    created: float
    seen: float

    def csrf_ok(self, token: str | None) -> bool:
        """True if ``token`` is this session's CSRF token."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """The open sessions (bounded: the oldest go first)."""

    def __init__(self, *, idle: float = 3600.0, lifetime: float = 12 * 3600.0,
                 max_sessions: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.idle, self.lifetime, self.max_sessions, self.clock = (
            idle,
            lifetime,
            max_sessions,
            clock,
        )
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str) -> Session:
        """A new session of ``user``."""
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now)
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].seen)]
            self._sessions[session.id] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session ``sid`` (its idle clock restarts), or None."""
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.seen > self.idle or now - session.created > self.lifetime:
                del self._sessions[sid]
                return None
            session.seen = now
            return session

    def drop(self, sid: str | None) -> None:
        """End the session ``sid`` (logout)."""
        with self._lock:
            self._sessions.pop(sid or "", None)

    def drop_user(self, user: str) -> None:
        """End every session of ``user``."""
        with self._lock:
            for sid in [k for k, s in self._sessions.items() if s.user == user]:
                del self._sessions[sid]
