"""one.vm.allocate, one.vm.info and one.vmpool.info (reference §4). Deployment comes later.

A NIC naming a network gets its lease at allocation, in the VM's own transaction (api.vnets);
a DISK naming an image gets the image's SOURCE, and the image counts the VM among its users once
the VM is stored (api.disks).

Regular users see and act on their own VMs only; oneadmin on all. DONE VMs are not in memory:
listings that ask for them read the store, every other listing is a join of cached XML.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from oned import lifecycle as lc
from oned import views
from oned.api import disks, templates, vnets
from oned.api.cloud import Caller, Cloud, require_owner
from oned.api.replies import document, pool
from oned.errors import BadCall, NoSuchObject
from oned.records import Lease, Vm
from oned.rpc.marshal import Escaped, escape_bytes
from oned.states import VmState
from oned.vmtemplate import check_memory_given, check_vm_template

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

ANY_STATE, NOT_DONE = -2, -1


def allocate(cloud: Cloud, caller: Caller, text: str, hold: bool = False) -> int | Deferred:
    """A new VM of the caller's; a user (not oneadmin) may not set restricted attributes nor
    name files outside the allowed directories (0x200 naming the attribute). The id, or a
    Deferred of it when the store groups commits (``_insert``)."""
    method = "one.vm.allocate"
    tmpl = templates.parse(text, method, "VM")
    problems = check_vm_template(tmpl) + check_memory_given(tmpl)
    if problems:
        raise BadCall(f"[{method}] Error in VM template: {'; '.join(problems)}")
    templates.refuse_restricted(caller, tmpl, cloud.config.vm_restricted_attr, method, "VM")
    templates.refuse_files(cloud, caller, tmpl, method)
    vid = cloud.pools.next_ids["vm"]
    name = tmpl.get_str("NAME") or f"one-{vid}"
    tmpl.set("NAME", name)
    tmpl.set("VMID", str(vid))
    images = disks.resolve(cloud, caller, tmpl, vid, method)
    leases = vnets.lease_nics(cloud, caller.uid, tmpl, vid, method)
    state = VmState.HOLD if hold else VmState.PENDING
    vm = Vm(vid, caller.uid, name, tmpl, state=state, prev_state=state, stime=cloud.now())
    return _insert(cloud, caller, vm, leases, bool(images))


def _insert(
    cloud: Cloud, caller: Caller, vm: Vm, leases: list[Lease], images: bool
) -> int | Deferred:
    """Insert the checked ``vm`` and then put it in the pools; its id once committed.

    The id and the leases are reserved first, so that the allocations of one group commit
    (``cloud.commits``, oned.commits) never pick the same ones; a failed insert
    gives them back (the id only if no later VM took the next one). Without a queue the
    insert is its own transaction, at once."""
    cloud.pools.take_id("vm")
    vnets.hold_leases(cloud, leases)

    def then() -> int:
        cloud.pools.vms.put(vm)
        if images:
            cloud.pools.use_images(vm)
        cloud.log.debug(f"VM {vm.id} allocated by {caller.name}")
        if cloud.lcm is not None:
            for effect in lc.ALLOCATE_EFFECTS:  # VM_HOOKs on CREATE
                cloud.lcm.effects(vm, effect)
        return vm.id

    def undo(_: BaseException) -> None:
        cloud.pools.free_leases(leases)
        if cloud.pools.next_ids["vm"] == vm.id + 1:
            cloud.pools.next_ids["vm"] = vm.id

    store: Any = cloud.store
    queue = getattr(cloud, "commits", None)  # oned.commits.CommitQueue, wired by oned/__main__
    if queue is not None:
        return queue.submit(store.vm_insert(vm, leases), then, undo)
    try:
        store.insert_vm(vm, leases)
    except BaseException as exc:
        undo(exc)
        raise
    return then()


def info(cloud: Cloud, caller: Caller, vid: int, decrypt: bool = False) -> Escaped:
    method = "one.vm.info"
    vm = cloud.pools.vms.get(vid)
    if vm is not None:
        require_owner(caller, vm.uid, method, "INFO", f"VM [{vid}]")
        return document(cloud.pools.vms.xml(vm))
    vm = cloud.store.get_vm(vid)  # type: ignore[attr-defined]
    if vm is None:
        raise NoSuchObject(f"[{method}] Error getting VM [{vid}].")
    require_owner(caller, vm.uid, method, "INFO", f"VM [{vid}]")
    return document(escape_bytes(cloud.pools.render_vm(vm)))


def pool_info(
    cloud: Cloud,
    caller: Caller,
    flt: int,
    start: int = -1,
    end: int = -1,
    state: int = NOT_DONE,
    extended: bool = False,
) -> Escaped:
    """Filter flag (-4 group, -3 mine, -2 all, -1 mine and group, >= 0 that user), an id range
    or a page (start offset, -page size), a state (-2 any, -1 not DONE, >= 0 that one); the
    summary of each VM, or all of it when ``extended``."""
    method = "one.vmpool.info"
    uid = _owner_filter(caller, flt, method)
    if state < ANY_STATE or (state >= 0 and state not in _STATES):
        raise BadCall(f"[{method}] wrong state filter {state}: -2 any, -1 not DONE, or 0..9")
    if uid == _NOBODY:
        return pool("VM_POOL", ())
    if state in (ANY_STATE, VmState.DONE):
        return pool("VM_POOL", _stored(cloud, uid, state, start, end, extended))
    return pool("VM_POOL", _select(cloud, uid, state, start, end, extended))


def pool_info_extended(
    cloud: Cloud, caller: Caller, flt: int, start: int = -1, end: int = -1, state: int = NOT_DONE
) -> Escaped:
    return pool_info(cloud, caller, flt, start, end, state, extended=True)


_NOBODY = -100
_STATES = {s.value for s in VmState}


def _owner_filter(caller: Caller, flt: int, method: str) -> int | None:
    """The uid to list, None for everyone, _NOBODY when the caller may see none of them."""
    if flt < -4:
        raise BadCall(f"[{method}] wrong filter flag {flt}: -4, -3, -2, -1 or a user id")
    if flt in (-1, -3) or (flt == -4 and not caller.is_admin):
        return caller.uid
    if flt in (-2, -4):
        return None if caller.is_admin else caller.uid
    if caller.is_admin or flt == caller.uid:
        return flt
    return _NOBODY


def _select(
    cloud: Cloud, uid: int | None, state: int, start: int, end: int, full: bool
) -> list[bytes]:
    """The VMs not DONE, from memory, in id order: their cached XML (a whole listing, the
    common call, walks the pool once and builds nothing else)."""
    vms = cloud.pools.vms
    if uid is None and state < 0 and start < 0:
        return vms.fragments(full)  # every VM: the cache read in one pass
    xml = vms.xml if full else vms.xml_short
    chosen: Iterable[Vm] = vms
    if uid is not None or state >= 0:
        chosen = [
            vm for vm in vms if (uid is None or vm.uid == uid) and (state < 0 or vm.state == state)
        ]
    return [xml(vm) for vm in _page(chosen, start, end)]


def _stored(
    cloud: Cloud, uid: int | None, state: int, start: int, end: int, full: bool
) -> list[bytes]:
    """A listing that may hold DONE VMs: the ids of the range or page come from the store (an
    index walk, never every DONE row), then each VM's XML from memory or, DONE, from the
    store: a page of DONE VMs reads only that page."""
    page: dict[str, int | None] = {}
    if start >= 0 and end < -1:
        page = {"offset": start, "limit": -end}
    elif start >= 0:
        page = {"start": start, "end": end}
    ids = cloud.store.list_vm_ids(  # type: ignore[attr-defined]
        uid=uid, state=None if state == ANY_STATE else state, include_done=True, **page
    )
    rows: list[bytes] = []
    for at in range(0, len(ids), _CHUNK):
        rows += _rendered(cloud, ids[at : at + _CHUNK], full)
    return rows


_CHUNK = 500  # DONE VMs read at a time: a whole listing keeps their XML, not their records


def _rendered(cloud: Cloud, ids: list[int], full: bool) -> list[bytes]:
    """The XML of each VM of ``ids`` that exists, cached or (DONE) read and rendered."""
    vms = cloud.pools.vms
    xml = vms.xml if full else vms.xml_short
    render = views.vm_xml if full else views.vm_short_xml
    wanted = [vid for vid in ids if vid not in vms]
    stored = {vm.id: vm for vm in cloud.store.get_vms(wanted)}  # type: ignore[attr-defined]
    rows = []
    for vid in ids:
        vm = vms.get(vid)
        if vm is not None:
            rows.append(xml(vm))
        elif vid in stored:
            done = stored[vid]
            rows.append(escape_bytes(render(done, cloud.pools.uname(done.uid))))
    return rows


def _page(vms: Iterable[Vm], start: int, end: int) -> Iterable[Vm]:
    """NOTE: OpenNebula reads end < -1 as a page: start is then a row offset, -end its size."""
    if start < 0:
        return vms
    if end < -1:
        return itertools.islice(vms, start, start - end)
    return [vm for vm in vms if vm.id >= start and (end == -1 or vm.id <= end)]
