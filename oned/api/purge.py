"""one.vmpool.purgedone: remove old DONE VMs and their history from the database (issue 18).

NOTE: OpenNebula's ``onedb purge-done --start/--end`` edits the database beside oned; here
oned stays the only writer of its database and purges itself, for oneadmin only: at most
``limit`` VMs a call, the oldest first, in short transactions on a worker thread (its own
connection), so that oned keeps serving meanwhile. ``onedb purge-done`` (cli/onedb.py) calls
it until nothing is left. A purged VM's id is never handed out again (pool_control).
"""

from __future__ import annotations

import time

from twisted.internet import defer

from oned.api.cloud import Caller, Cloud, require_admin
from oned.errors import ActionNotAllowed, BadCall

METHOD = "one.vmpool.purgedone"
MAX_PER_CALL = 100_000
DEFAULT_PER_CALL = 10_000

_running: set[int] = set()  # id() of the stores a purge runs on


def purgedone(
    cloud: Cloud, caller: Caller, before: int, dry_run: bool, limit: int = DEFAULT_PER_CALL
) -> defer.Deferred:
    """A Deferred of the number of DONE VMs that ended before ``before`` (epoch seconds) and
    were removed, at most ``limit``; with ``dry_run`` the number there are, none removed."""
    require_admin(caller, METHOD, "PURGE")
    if before <= 0:
        raise BadCall(f"[{METHOD}] before {before}: pass a time in seconds since the epoch")
    if not 1 <= limit <= MAX_PER_CALL:
        raise BadCall(f"[{METHOD}] limit {limit}: pass 1 to {MAX_PER_CALL} VMs a call")
    store, in_thread = cloud.store, cloud.run_in_thread
    if in_thread is None:
        raise ActionNotAllowed(f"[{METHOD}] this oned runs no worker threads")
    if dry_run:
        return in_thread(store.count_done, before)  # type: ignore[attr-defined, no-any-return]
    if id(store) in _running:
        raise ActionNotAllowed(f"[{METHOD}] a purge of DONE VMs is running already")
    _running.add(id(store))
    started = time.monotonic()

    def finished(result: object) -> object:
        _running.discard(id(store))
        if isinstance(result, int) and result:
            took = time.monotonic() - started
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(before))
            cloud.log.info(f"Purged {result} DONE VMs that ended before {when} UTC in {took:.1f} s")
        return result

    purge = in_thread(store.purge_done, before, limit=limit)  # type: ignore[attr-defined]
    return purge.addBoth(finished)
