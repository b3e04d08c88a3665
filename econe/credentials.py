"""Who signed a request: the secret an access key id signs with, and the oned session its
actions then run under (the seam between econe's signature check and oned's users).

Pure and blocking (oned is asked with `oned.client`); the server calls `cached` on the reactor
and `get`/`refetch` on a worker thread. Two sources, tried in order (`Chain`):

* `StaticKeys`: econe.conf's `keys_file` (0600, `ACCESS_KEY SECRET` lines). The access key is
  an oned user name and the secret its password, the seed's habit, so the session for oned is
  `key:secret`. For tests and bootstrapping: oned keeps passwords as salted hashes, so this is
  the only way a password can be an HMAC secret.
* `OnedKeys`: oned's per-user EC2 keys (`one.user.ec2keysecret`, asked as econe.conf's
  `server_auth` user, a oneadmin-group session), `[uid, name, secret, token, expires]`; the
  actions then run as `name:token`. Answers are kept `ttl` seconds (one call per active key per
  minute, not per request); a signature that fails against a kept secret is checked once more
  against a fresh one (a rotated key). oned unreachable is `Unavailable` (503: clients retry),
  never AuthFailure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from econe.errors import Ec2Error
from oned.client import OneCallError, OneClient, OneClientError

log = logging.getLogger("econe")
NOT_FOUND = 0x400
DISABLED = 0x800  # a disabled user's key signs nothing
TTL = 60.0


@dataclass(frozen=True)
class Credentials:
    """An access key's secret, its owner (uid -1: not known yet) and the session for oned."""

    secret: str
    uid: int
    name: str
    session: str


class Lookup(Protocol):
    def cached(self, key: str) -> Credentials | None: ...
    def get(self, key: str) -> Credentials | None: ...
    def refetch(self, key: str) -> Credentials | None: ...


class StaticKeys:
    """The keys file: the key is the user name, the secret its password."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    def cached(self, key: str) -> Credentials | None:
        secret = self.keys.get(key)
        return None if secret is None else Credentials(secret, -1, key, f"{key}:{secret}")

    get = refetch = cached


class OnedKeys:
    """oned's EC2 keys through `one.user.ec2keysecret`, kept `ttl` seconds."""

    METHOD = "one.user.ec2keysecret"

    def __init__(
        self,
        client_factory: Callable[[], Any],
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_factory = client_factory  # a OneClient as the server user, per thread
        self.ttl = ttl
        self.clock = clock
        self._kept: dict[str, tuple[float, Credentials | None]] = {}  # key -> (until, found)
        self._local = threading.local()

    def cached(self, key: str) -> Credentials | None:
        kept = self._kept.get(key)
        if kept is not None and self.clock() < kept[0]:
            return kept[1]
        return None

    def get(self, key: str) -> Credentials | None:
        kept = self._kept.get(key)
        if kept is not None and self.clock() < kept[0]:
            return kept[1]
        return self.refetch(key)

    def refetch(self, key: str) -> Credentials | None:
        found, lifetime = self._fetch(key)
        if len(self._kept) > 10000:  # bounded: forget everything rather than grow
            self._kept.clear()
        # Never kept past the token's life (less a margin for the call it is used in).
        self._kept[key] = (self.clock() + min(self.ttl, lifetime - 30), found)
        return found

    def _fetch(self, key: str) -> tuple[Credentials | None, float]:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.client_factory()
        try:
            uid, name, secret, token, expires = client.call(self.METHOD, key)
        except OneCallError as exc:
            if exc.code in (NOT_FOUND, DISABLED):
                return None, self.ttl
            log.error("%s refused econe's server user: %s", self.METHOD, exc.message)
            raise Ec2Error("Unavailable", "the service cannot check credentials now") from None
        except OneClientError as exc:
            log.error("cannot look up an EC2 key: %s", exc.message)
            raise Ec2Error("Unavailable", "the service is unavailable, try again") from None
        except (TypeError, ValueError):
            log.error("%s answered an unexpected value", self.METHOD)
            raise Ec2Error("Unavailable", "the service cannot check credentials now") from None
        found = Credentials(str(secret), int(uid), str(name), f"{name}:{token}")
        return found, float(expires) - time.time()


class Chain:
    """The first source that knows the key."""

    def __init__(self, *sources: Lookup) -> None:
        self.sources = sources

    def cached(self, key: str) -> Credentials | None:
        for source in self.sources:
            found = source.cached(key)
            if found is not None:
                return found
        return None

    def get(self, key: str) -> Credentials | None:
        return self._first(key, "get")

    def refetch(self, key: str) -> Credentials | None:
        return self._first(key, "refetch")

    def _first(self, key: str, how: str) -> Credentials | None:
        for source in self.sources:
            found = getattr(source, how)(key)
            if found is not None:
                return found
        return None


def server_client(endpoint: str, session: str) -> Callable[[], OneClient]:
    """A factory of clients for oned as the server user (one per worker thread)."""
    return lambda: OneClient(endpoint, session, timeout=10)
