"""RunInstances' ClientToken: which VMs a call with a token already made, per user.

Pure. Looking a token up in oned means listing all the user's VMs (DONE ones too): too slow
for every call, and boto3 sends a fresh token with every RunInstances. So econe learns a user's
tokens from oned once (the first call with a token after a start) and then adds the VMs each
of its own RunInstances makes. A user's calls with tokens run one at a time (a lock per user),
so two retries of one call cannot both allocate. A user's index past `LIMIT` tokens is dropped
and learnt again. One econe-server per oned: a second server would not see the first's tokens
until its next start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

LIMIT = 50_000


class TokenIndex:
    """user name -> {token: [vm ids]}."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._tokens: dict[str, dict[str, list[int]]] = {}

    def lock(self, user: str) -> threading.Lock:
        """The lock a user's RunInstances with a token hold while they look up and allocate."""
        with self._guard:
            return self._locks.setdefault(user, threading.Lock())

    def find(self, user: str, token: str, scan: Callable[[], dict[str, list[int]]]) -> list[int]:
        """The VMs `token` made ([] if none); `scan` reads the user's tokens from oned once.
        Call with `lock(user)` held."""
        tokens = self._tokens.get(user)
        if tokens is None or len(tokens) > self.limit:
            tokens = self._tokens[user] = scan()
        return tokens.get(token, [])

    def add(self, user: str, token: str, vids: list[int]) -> None:
        self._tokens.setdefault(user, {})[token] = list(vids)
