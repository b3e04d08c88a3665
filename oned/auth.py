"""Passwords and session strings (reference §9): pure functions, no I/O.

Every password is reduced to its canonical 1.4 form, the 40-hex SHA-1 digest, and that digest is
stored salted and stretched with PBKDF2-SHA256. A session secret may then be either the clear
password (pyone, OpenNebula >= 3.2 clients) or its SHA-1 digest (OpenNebula 1.4/2.0 clients).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable

from oned.errors import AuthenticationError

SCHEME = "pbkdf2_sha256"
ITERATIONS = 50_000
_HEX40 = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[^\s:]{1,128}")
SHOWN_NAME = 64
MAX_CLIENTS = 100_000


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def canonical_digests(secret: str) -> list[str]:
    """The SHA-1 digests a secret may stand for: itself if it looks like one, and its own SHA-1.

    NOTE: OpenNebula 1.4 clients send sha1(password) as the secret; newer ones send the
    password. A 40-hex secret is therefore tried both ways.
    """
    if _HEX40.fullmatch(secret):
        return [secret, sha1_hex(secret)]
    return [sha1_hex(secret)]


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The stored form of a password given in clear or as its 1.4 SHA-1 digest."""
    digest = canonical_digests(password)[0]
    salt = salt if salt is not None else os.urandom(16)
    derived = hashlib.pbkdf2_hmac("sha256", digest.encode(), salt, iterations)
    return "$".join((SCHEME, str(iterations), _b64(salt), _b64(derived)))


def verify_password(secret: str, stored: str) -> bool:
    """True when the session secret (clear or SHA-1) matches the stored hash. Slow on purpose."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        rounds = int(iterations)
        salt_bytes, expected_bytes = _unb64(salt), _unb64(expected)
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    found = False
    for digest in canonical_digests(secret):
        derived = hashlib.pbkdf2_hmac("sha256", digest.encode(), salt_bytes, rounds)
        found |= hmac.compare_digest(derived, expected_bytes)
    return found


def dummy_hash() -> str:
    """A stored form no secret matches, as costly to check as a real one: an unknown or
    disabled user is checked against it so that a failed login takes the same time whether
    or not the user exists (no user-name enumeration by timing)."""
    return "$".join((SCHEME, str(ITERATIONS), _b64(b"\0" * 16), _b64(b"\0" * 32)))


def shown_name(name: str) -> str:
    """A user name as it may go into a log: at most SHOWN_NAME characters, control characters,
    backslashes, quotes and non-ASCII escaped, so it can neither forge lines nor fill a disk."""
    text = name[:SHOWN_NAME].encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return text if len(name) <= SHOWN_NAME else f"{text}... ({len(name)} characters)"


class FailedLogins:
    """Failed logins per client address over the last ``window`` seconds.

    A password check counts as failed from the moment it starts until it succeeds, so that
    many checks started at once from one address cannot pass ``limit`` together. Once an
    address has ``limit`` of them, it is refused without a check until the oldest one is
    ``window`` seconds old. A success removes its own attempt only. ``limit`` 0: no limit.
    """

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self._limit = limit
        self._window = window
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}

    def retry_in(self, client: str) -> int:
        """0 when ``client`` may try a password now, else the seconds until it may."""
        attempts = self._attempts.get(client)
        if not self._limit or not attempts:
            return 0
        oldest = self._clock() - self._window
        while attempts and attempts[0] <= oldest:
            attempts.popleft()
        if len(attempts) < self._limit:
            return 0
        return max(1, math.ceil(attempts[0] - oldest))

    def attempt(self, client: str) -> float:
        """Record a check that starts now; returns its stamp for ``succeeded``."""
        stamp = self._clock()
        if self._limit:
            if len(self._attempts) >= MAX_CLIENTS:
                self._forget_old(stamp - self._window)
            self._attempts.setdefault(client, deque()).append(stamp)
        return stamp

    def succeeded(self, client: str, stamp: float) -> None:
        attempts = self._attempts.get(client)
        if attempts is not None and stamp in attempts:
            attempts.remove(stamp)
            if not attempts:
                del self._attempts[client]

    def _forget_old(self, oldest: float) -> None:
        """Bounded memory under a flood of addresses: keep only addresses seen recently."""
        for client in [c for c, a in self._attempts.items() if not a or a[-1] <= oldest]:
            del self._attempts[client]
        if len(self._attempts) >= MAX_CLIENTS:
            self._attempts.clear()


def split_session(session: object) -> tuple[str, str]:
    """``user:secret`` -> (user, secret); anything else is an authentication failure."""
    if not isinstance(session, str) or ":" not in session:
        raise AuthenticationError("User couldn't be authenticated, aborting call.")
    user, secret = session.split(":", 1)
    if not user or not secret:
        raise AuthenticationError("User couldn't be authenticated, aborting call.")
    return user, secret


def check_user_name(name: str) -> None:
    """User names end up in session strings: no blanks, no colon, 1 to 128 characters."""
    if not _NAME.fullmatch(name):
        raise ValueError(f'invalid user name "{name}": 1-128 characters, no blanks or ":"')


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))
