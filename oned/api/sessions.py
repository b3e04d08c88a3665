"""Session strings to callers, with a cache so only the first call of a session pays the hash.

``verify`` is slow on purpose (PBKDF2) and thread-safe: the RPC layer runs it off the reactor
thread. ``cached`` is a dictionary lookup that also checks the user still exists, is enabled and
has the password hash the session was verified against, so a deleted user, a disabled one or a
changed password takes effect on the next call. A session not in the cache may be an EC2 token
(``name:token``, oned.ec2keys): a lookup as cheap, never a password check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from oned import auth
from oned.api.cloud import Caller
from oned.ec2keys import session_digest
from oned.errors import AuthenticationError
from oned.pools import Pools

_FAILED = "User couldn't be authenticated, aborting call."
MAX_CACHED = 10_000


class Sessions:
    def __init__(
        self, pools: Pools, log: logging.Logger, clock: Callable[[], float] = time.time
    ) -> None:
        self._pools = pools
        self._log = log
        self._clock = clock
        self._cache: dict[bytes, tuple[Caller, str]] = {}

    def cached(self, session: object) -> Caller | None:
        """The caller of a session verified before, or of an EC2 token not yet expired."""
        if not isinstance(session, str):
            return None
        key = _key(session)
        hit = self._cache.get(key)
        if hit is None:
            return self._token(key)
        caller, stored = hit
        user = self._pools.users.get(caller.uid)
        if user is None or not user.enabled or user.password != stored:
            return None
        return caller

    def _token(self, key: bytes) -> Caller | None:
        """A ``name:token`` session of one.user.ec2keysecret (oned.ec2keys.Tokens): its user,
        while the token lasts and the user is there and enabled under the same name."""
        grant = self._pools.ec2_keys.tokens.find(key, self._clock())
        if grant is None:
            return None
        user = self._pools.users.get(grant.uid)
        if user is None or not user.enabled or user.name != grant.name:
            return None
        return Caller(user.id, user.name)

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
    return session_digest(session)
