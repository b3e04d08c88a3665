"""The state a request works on, and who is asking."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oned.config import Config
from oned.errors import AuthorizationError
from oned.locations import Locations, locations
from oned.pools import Pools


@dataclass(frozen=True)
class Caller:
    """An authenticated user. uid 0 is oneadmin, who may do everything."""

    uid: int
    name: str

    @property
    def is_admin(self) -> bool:
        return self.uid == 0


@dataclass
class Cloud:
    """Everything an API function needs: the pools, the store they write through, the config."""

    pools: Pools
    store: object  # oned.store.Store; typed loosely so api tests can pass a fake for faults only
    config: Config
    log: logging.Logger
    clock: Callable[[], float] = field(default=time.time)
    lcm: Any = None  # oned.lcm.LifeCycle once the managers run; None in API-only tests
    # oned.images.ImageManager once the managers run; None in API-only tests, where the API
    # skips the driver work (copies, mkfs, removal of files).
    images: Any = None
    var_dir: str = "/var/lib/one"  # the default VM_DIR
    where: Locations = field(default_factory=locations)  # this install's etc/, var/...

    def now(self) -> int:
        return int(self.clock())


def require_admin(caller: Caller, method: str, action: str) -> None:
    if not caller.is_admin:
        raise AuthorizationError(
            f"[{method}] User [{caller.uid}] not authorized to perform {action}."
        )


def require_owner(caller: Caller, owner: int, method: str, action: str, what: str) -> None:
    if not caller.is_admin and caller.uid != owner:
        raise AuthorizationError(
            f"[{method}] User [{caller.uid}] not authorized to perform {action} on {what}."
        )
