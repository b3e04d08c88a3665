"""The dashboard's sign-in sessions: a random cookie value, kept only as its hash, expiring
`lifetime` seconds after sign-in, each with its CSRF token and the user's password.

Pure (no I/O): the clock is passed in. The password stays in this process's memory only, as
the CLI's ONE_AUTH does on disk; it is what the dashboard calls oned with. A stolen table
(a core dump aside) gives no cookie: only its SHA-256 is kept. The count is bounded: a user
past `per_user` sessions loses their oldest; past `limit` in all, a new sign-in is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PER_USER = 20


class TooManySessions(Exception):
    """Every slot holds a live session: a new sign-in must wait."""


@dataclass(eq=False)  # a session is itself: hashed and compared by identity
class Session:
    user: str
    uid: int
    admin: bool
    password: str = field(repr=False)
    csrf: str = field(repr=False)
    expires: float
    key: str = field(repr=False)  # the cookie's hash: the table's key

    @property
    def oned_session(self) -> str:
        """What oned is called with, as the user: `user:password`."""
        return f"{self.user}:{self.password}"

    def public(self) -> dict[str, object]:
        """The JSON of /api/login and /api/session."""
        return {"user": self.user, "uid": self.uid, "admin": self.admin, "csrf": self.csrf}

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "replace")).hexdigest()


class Sessions:
    """The open sessions, by the hash of their cookie."""

    def __init__(
        self,
        lifetime: float,
        limit: int = 1000,
        per_user: int = PER_USER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self.per_user = per_user
        self.clock = clock
        self._by_key: dict[str, Session] = {}  # in sign-in order (dicts keep it)

    def __len__(self) -> int:
        return len(self._by_key)

    def open(self, user: str, uid: int, admin: bool, password: str) -> tuple[str, Session]:
        """A new session: (the cookie value to send, the session). `TooManySessions` when the
        table is full of live sessions."""
        self.purge()
        mine = [s for s in self._by_key.values() if s.user == user]
        if len(mine) >= self.per_user:
            del self._by_key[mine[0].key]
        if len(self._by_key) >= self.limit:
            raise TooManySessions("too many open sessions; try again later")
        cookie = secrets.token_urlsafe(32)
        key = _hash(cookie)
        session = Session(
            user, uid, admin, password, secrets.token_urlsafe(32), self.clock() + self.lifetime, key
        )
        self._by_key[key] = session
        return cookie, session

    def get(self, cookie: str | None) -> Session | None:
        """The live session of `cookie`, or None (unknown, forged or expired)."""
        if not cookie or len(cookie) > 200:
            return None
        session = self._by_key.get(_hash(cookie))
        if session is None:
            return None
        if session.expires <= self.clock():
            del self._by_key[session.key]
            return None
        return session

    def alive(self, session: Session) -> bool:
        """Whether `session` is still signed in (not expired, not closed)."""
        return session.expires > self.clock() and self._by_key.get(session.key) is session

    def close(self, session: Session) -> None:
        """Forget `session` (sign-out, or oned no longer accepts its password)."""
        self._by_key.pop(session.key, None)

    def purge(self) -> None:
        """Forget the expired sessions."""
        now = self.clock()
        for key in [k for k, s in self._by_key.items() if s.expires <= now]:
            del self._by_key[key]
