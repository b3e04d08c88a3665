"""The state a request works on, and who is asking."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oned.config import Config
from oned.errors import ActionNotAllowed, AuthorizationError, NoSuchObject
from oned.locations import Locations, locations
from oned.pools import Pools
from oned.records import Vm


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
    # runs a blocking function on a worker thread, a Deferred of its result (oned/__main__.py
    # passes the reactor's deferToThread: only the entry point touches the global reactor)
    run_in_thread: Callable[..., Any] | None = None
    # oned.commits.CommitQueue: allocations of one reactor turn in one transaction, each answered
    # after that commit; None (API tests): each commits alone
    commits: Any = None
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


def managed_vm(cloud: Cloud, caller: Caller, vid: int, method: str, done: str) -> Vm:
    """The VM ``vid`` its owner (or oneadmin) may MANAGE; a DONE one (in the store only) is
    refused with 0x800 saying ``done`` ("VM 7 is DONE: <done>"), after the owner check."""
    vm = cloud.pools.vms.get(vid)
    if vm is not None:
        require_owner(caller, vm.uid, method, "MANAGE", f"VM [{vid}]")
        return vm
    stored = cloud.store.get_vm(vid)  # type: ignore[attr-defined]
    if stored is None:
        raise NoSuchObject(f"[{method}] Error getting VM [{vid}].")
    require_owner(caller, stored.uid, method, "MANAGE", f"VM [{vid}]")
    raise ActionNotAllowed(f"[{method}] VM {vid} is DONE: {done}")
