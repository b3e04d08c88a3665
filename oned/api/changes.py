"""one.system.changes: what changed after the caller's last reply, held until something does
(issue 17; the contract is share/doc/dashboard.md, "oned: the change feed").

An object is listed once, as it is now, from the pools' cached fragments (a VM in the summary
form one.vmpool.info lists); objects that left memory are listed by id in REMOVED. Who sees what
is the listings' rule: the same functions decide (api.vms, api.listing with the networks' and
images' USE rule; every host; users for oneadmin only). A call with nothing to see waits for the
next change it sees (oned.changes.Waiters: no thread, no polling) or ``wait_ms``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from oned import changes as ch
from oned import imagetemplate as it
from oned import vnet as vn
from oned.api import listing, vms
from oned.api.cloud import Caller, Cloud
from oned.api.replies import pool
from oned.errors import ActionNotAllowed, BadCall
from oned.pools import Pool
from oned.rpc.marshal import Escaped

METHOD = "one.system.changes"
MAX_WAIT_MS = 30_000

Visible = tuple[list[list[Any]], list[list[int]]]  # per kind: objects to list, ids removed


def changes(
    cloud: Cloud, caller: Caller, since: int, wait_ms: int, epoch: str = ""
) -> Escaped | defer.Deferred:
    """The caller's changes after ``since`` (0: none known; a reset tells where to start),
    at once when there are some, else when the next one comes or after ``wait_ms`` (clamped
    to 0..30,000). ``epoch`` (the EPOCH of that reply; optional) makes a restart certain to
    reset."""
    if since < 0:
        raise BadCall(
            f"[{METHOD}] since {since} is negative: pass the SEQ of your last reply, or 0"
        )
    if len(epoch) > 64:
        raise BadCall(f"[{METHOD}] epoch of {len(epoch)} characters: pass the EPOCH of a reply")
    found = _reply(cloud, caller, since, epoch)
    seconds = min(max(wait_ms, 0), MAX_WAIT_MS) / 1000
    waiters = _waiters(cloud)
    if found is not None or seconds == 0 or waiters is None:
        return found or _document(cloud, False)
    return _wait(cloud, caller, since, epoch, waiters, seconds)


def _reply(cloud: Cloud, caller: Caller, since: int, epoch: str) -> Escaped | None:
    """The reply when there is something to say now (a reset, or changes the caller sees)."""
    log = cloud.pools.changes
    if since == 0 or not log.remembers(since, epoch):
        return _document(cloud, True)
    seen = visible(cloud, caller, log.since(since))
    if not any(seen[0]) and not any(seen[1]):
        return None
    return _document(cloud, False, seen)


def _wait(
    cloud: Cloud, caller: Caller, since: int, epoch: str, waiters: ch.Waiters, seconds: float
) -> defer.Deferred:
    """A Deferred of the reply, fired by the first change the caller sees or the timer; its
    cancellation (the connection went away) forgets the waiter."""
    log = cloud.pools.changes
    checked = log.seq  # nothing the caller sees up to here

    def check() -> bool:
        nonlocal checked
        if log.remembers(checked, epoch):
            seen = visible(cloud, caller, log.since(checked))
            if not any(seen[0]) and not any(seen[1]):
                checked = log.seq
                return False
        answer()
        return True

    def answer() -> None:
        try:
            found = _reply(cloud, caller, since, epoch)
            d.callback(found or _document(cloud, False))
        except Exception:
            d.errback()

    waiter = ch.Waiter(check, answer)
    d: defer.Deferred[Escaped] = defer.Deferred(lambda _: waiters.cancel(waiter))
    try:
        waiters.add(waiter, seconds)
    except ch.TooManyWaiters as exc:
        raise ActionNotAllowed(f"[{METHOD}] {exc}; call again later or with wait_ms 0") from None
    return d


def _waiters(cloud: Cloud) -> ch.Waiters | None:
    """The registry of waiting calls, made on first use with the reactor's callLater (none
    without the managers: API-only tests answer at once)."""
    pools = cloud.pools
    call_later = getattr(cloud.lcm, "call_later", None)
    if pools.waiters is None and call_later is not None:
        pools.waiters = ch.Waiters(pools.changes, call_later)
    return pools.waiters


def visible(cloud: Cloud, caller: Caller, changed: ch.Changed) -> Visible:
    """The objects of ``changed`` the caller sees, and the removed ids they saw, per kind."""
    rules = _rules(caller)
    pools = _pools(cloud)
    listed: list[list[Any]] = [[] for _ in ch.KINDS]
    removed: list[list[int]] = [[] for _ in ch.KINDS]
    for kind, oid in changed.keys:
        obj = pools[kind].get(oid)
        if obj is not None:
            if rules[kind](obj):
                listed[kind].append(obj)
            continue
        owner = changed.removed.get((kind, oid))
        if owner is not None and _saw_removed(caller, kind, owner):
            removed[kind].append(oid)
    for objs in listed:
        objs.sort(key=lambda obj: obj.id)
    for ids in removed:
        ids.sort()
    return listed, removed


def _rules(caller: Caller) -> list[Callable[[Any], bool]]:
    """Per kind, whether the caller's listing holds an object (filter -2: all they may see)."""
    uid = vms._owner_filter(caller, -2, METHOD)  # None: every VM (oneadmin)
    return [
        (lambda vm: True) if uid is None else (lambda vm: vm.uid == uid),
        lambda host: True,
        listing.pool_filter(caller, -2, METHOD, vn.may_use),
        listing.pool_filter(caller, -2, METHOD, it.may_use),
        lambda user: caller.is_admin,
    ]


def _saw_removed(caller: Caller, kind: int, owner: int) -> bool:
    if caller.is_admin:
        return True
    return kind != ch.USER and owner in (ch.EVERYONE, caller.uid)


def _pools(cloud: Cloud) -> list[Pool[Any]]:
    p = cloud.pools
    return [p.vms, p.hosts, p.vnets, p.images, p.users]


def _fragments(cloud: Cloud) -> list[Callable[[Any], bytes]]:
    """Per kind, the fragment its pool listing uses."""
    p = cloud.pools
    return [p.vms.xml_short, p.hosts.xml, p.vnets.xml_short, p.images.xml_short, p.users.xml]


def _document(cloud: Cloud, reset: bool, seen: Visible = ([], [])) -> Escaped:
    """``<CHANGES>`` (escaped) with the pools that have objects to list, then REMOVED."""
    log = cloud.pools.changes
    head = f'&lt;CHANGES EPOCH="{log.epoch}" SEQ="{log.seq}" RESET="{int(reset)}"&gt;'
    parts = [head.encode()]
    listed, removed = seen
    if any(listed):
        for kind, (objs, xml) in enumerate(zip(listed, _fragments(cloud), strict=True)):
            if objs:
                parts += pool(f"{ch.KINDS[kind]}_POOL", map(xml, objs)).parts
    if any(removed):
        parts.append(b"&lt;REMOVED&gt;")
        for kind, ids in enumerate(removed):
            tag = ch.KINDS[kind]
            parts += [f"&lt;{tag}&gt;{oid}&lt;/{tag}&gt;".encode() for oid in ids]
        parts.append(b"&lt;/REMOVED&gt;")
    parts.append(b"&lt;/CHANGES&gt;")
    return Escaped(tuple(parts))
