"""Session strings to callers, with a cache so only the first call of a session pays the hash.

``verify`` is slow on purpose (PBKDF2) and thread-safe: the RPC layer runs it off the reactor
thread. ``cached`` is a dictionary lookup that also checks the user still exists, is enabled and
has the password hash the session was verified against, so a deleted user, a disabled one or a
changed password takes effect on the next call.
"""

from __future__ import annotations

import hashlib
import logging

from oned import auth
from oned.api.cloud import Caller
from oned.errors import AuthenticationError
from oned.pools import Pools

_FAILED = "User couldn't be authenticated, aborting call."
MAX_CACHED = 10_000


class Sessions:
    def __init__(self, pools: Pools, log: logging.Logger):
        self._pools = pools
        self._log = log
        self._cache: dict[bytes, tuple[Caller, str]] = {}

    def cached(self, session: object) -> Caller | None:
        if not isinstance(session, str):
            return None
        hit = self._cache.get(_key(session))
        if hit is None:
            return None
        caller, stored = hit
        user = self._pools.users.get(caller.uid)
        if user is None or not user.enabled or user.password != stored:
            return None
        return caller

    def verify(self, session: object, client: str = "") -> Caller:
        """The caller of a session, or AuthenticationError without saying which part was wrong.

        Costs one password check whether or not the user exists or is enabled, so that
        failed logins cannot tell unknown users from wrong passwords. Logs the user name only
        cut and escaped (it comes from anyone, before any check)."""
        origin = f" (from {client})" if client else ""
        try:
            name, secret = auth.split_session(session)
        except AuthenticationError:
            self._log.error(f"Authentication failed: malformed session string{origin}")
            raise
        user = self._pools.user_names.get(name)
        matches = auth.verify_password(secret, user.password if user else auth.dummy_hash())
        if user is not None and user.enabled and matches:
            caller = Caller(user.id, user.name)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[_key(session)] = (caller, user.password)  # type: ignore[arg-type]
            return caller
        why = "no such user" if user is None else "user disabled" if not user.enabled else ""
        why = why or "wrong password"
        self._log.error(f'Authentication failed for "{auth.shown_name(name)}": {why}{origin}')
        raise AuthenticationError(_FAILED)


def _key(session: str) -> bytes:
    return hashlib.sha256(session.encode("utf-8", "surrogatepass")).digest()
