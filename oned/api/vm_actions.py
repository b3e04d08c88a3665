"""one.vm.deploy, one.vm.action, one.vm.migrate and one.vm.update (reference §3.2, §4): user
actions on VMs.

Each checks who asks (the owner or oneadmin; deploy and migrate, which choose a host, oneadmin
only: share/doc/authorization.md), then lets the lifecycle table decide whether the VM's state
allows it (0x800 naming the state otherwise), and answers once the new state is committed.
one.vm.update changes no state: it rewrites the VM's USER_TEMPLATE, in any state but DONE.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from oned import lifecycle as lc
from oned import reconcile
from oned.api import deploy_group, templates
from oned.api.cloud import Caller, Cloud, managed_vm, require_admin, require_owner
from oned.api.host_choice import check_host
from oned.errors import (
    ActionNotAllowed,
    BadCall,
    InternalError,
    NoSuchObject,
)
from oned.records import Host, Vm

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

# NOTE: names of every era map onto 1.4's actions (reference §4, pyone.md): 2.0's finalize and
# 4.x's delete are 1.4's delete; 5.x's terminate(-hard) are shutdown and cancel, which the
# lifecycle table also accepts where OpenNebula 6 takes terminate (PENDING, HOLD, STOPPED).
# reboot (3.x and modern) and 4.x's reset, modern "reboot-hard", restart a RUNNING guest in place.
ACTIONS = {
    **{e.value: e for e in lc.USER_ACTIONS if e not in lc.NEEDS_HOST},
    "finalize": lc.Event.DELETE,
    "terminate": lc.Event.SHUTDOWN,
    "terminate-hard": lc.Event.CANCEL,
    "shutdown-hard": lc.Event.CANCEL,
    "reboot-hard": lc.Event.RESET,
}


def deploy(cloud: Cloud, caller: Caller, vid: int, hid: int, enforce: bool = False,
           ds_id: int = -1) -> int | Deferred:  # fmt: skip
    """Deploy a PENDING VM on a host: oneadmin only (choosing a host is an admin action, as in
    modern OpenNebula; mm_sched runs as oneadmin). The host must be enabled and large enough;
    with ``enforce`` it must also have room for the VM (``host_choice.check_host``).

    The scheduler's USER_TEMPLATE/SCHED_MESSAGE (why the VM waited) goes, in the same commit.
    With ``cloud.commits`` the answer is a Deferred of the id, fired after the commit that
    holds this turn's deploys (``oned.api.deploy_group``).
    """
    method = "one.vm.deploy"
    vm, host = _placement(cloud, caller, vid, hid, method)
    lc.check(vm.state, vm.lcm_state, lc.Event.DEPLOY, vid, method)
    check_host(host, vm, enforce, method)
    lcm = _lcm(cloud)
    if cloud.commits is not None:  # the deploys of this reactor turn in one transaction
        return deploy_group.queued(cloud, lcm, vm, host, _ref(cloud, host))
    lcm.user_action(deploy_group.without_sched_message(vm), lc.Event.DEPLOY, _ref(cloud, host))
    return vid


def action(cloud: Cloud, caller: Caller, name: str, vid: int) -> int:
    method = "one.vm.action"
    event = ACTIONS.get(name.lower())
    if event is None:
        # NOTE: OpenNebula answers an action it does not know with ACTION (0x800), not 0x1000
        known = ", ".join(sorted(ACTIONS))
        raise ActionNotAllowed(f"[{method}] Unknown action {name!r}; one of: {known}")
    vm = _vm(cloud, caller, vid, method, "MANAGE")
    _lcm(cloud).user_action(vm, event)
    return vid


def migrate(cloud: Cloud, caller: Caller, vid: int, hid: int, live: bool, enforce: bool = False,
            ds_id: int = -1, kind: int = 0) -> int:  # fmt: skip
    """Move a RUNNING VM to another host, live or not: oneadmin only, with the checks of
    ``deploy`` on the new host."""
    method = "one.vm.migrate"
    vm, host = _placement(cloud, caller, vid, hid, method)
    event = lc.Event.LIVEMIGRATE if live else lc.Event.MIGRATE
    lc.check(vm.state, vm.lcm_state, event, vid, method)
    if vm.history and vm.history[-1].hid == hid:
        raise ActionNotAllowed(f"[{method}] VM {vid} is already running on host {hid}")
    check_host(host, vm, enforce, method)
    _lcm(cloud).user_action(vm, event, _ref(cloud, host))
    return vid


def recover(cloud: Cloud, caller: Caller, vid: int, operation: int) -> int:
    """one.vm.recover (modern OpenNebula): oneadmin ends a VM's transient state by hand.
    ``operation`` 0 failure and 1 success act as if the driver request in flight had failed
    or succeeded, 2 retry sends it again, 3 delete deletes the VM (in any state). Errors:
    0x200 not oneadmin, 0x1000 another operation, 0x400 no such VM, 0x800 not transient."""
    method = "one.vm.recover"
    require_admin(caller, method, f"ADMIN on VM [{vid}]")
    name = reconcile.RECOVER_OPERATIONS.get(operation)
    if name is None:
        known = ", ".join(f"{k} {v}" for k, v in reconcile.RECOVER_OPERATIONS.items())
        raise BadCall(f"[{method}] unknown operation {operation}: one of {known}")
    vm = _vm(cloud, caller, vid, method, "ADMIN")
    _lcm(cloud).recover(vm, name)
    return vid


REPLACE, MERGE = 0, 1


def update(cloud: Cloud, caller: Caller, vid: int, text: str, merge: int = REPLACE) -> int:
    """Rewrite the USER_TEMPLATE of a VM in any state but DONE; the owner or oneadmin only.

    ``text`` is a template (OpenNebula's language or XML). ``merge`` 0 replaces USER_TEMPLATE
    whole; 1 merges: each attribute given replaces those of the same name, the others stay.
    Errors: 0x1000 bad template or merge flag, 0x200 not the owner or a restricted attribute
    (as at allocate), 0x400 no such VM, 0x800 a DONE VM. Answers the vid once committed.
    """
    method = "one.vm.update"
    if merge not in (REPLACE, MERGE):
        raise BadCall(f"[{method}] merge must be 0 (replace) or 1 (merge), not {merge}")
    vm = managed_vm(cloud, caller, vid, method, "its USER_TEMPLATE cannot change")
    incoming = templates.parse(text, method, "VM")
    # A user may send back the restricted values oneadmin set, but not set or change any.
    attributes = cloud.config.vm_restricted_attr
    templates.refuse_restricted(caller, incoming, attributes, method, "VM", vm.user_template)
    templates.refuse_files(cloud, caller, incoming, method, vm.user_template)
    user_template = incoming
    if merge == MERGE:
        user_template = vm.user_template.copy()
        user_template.merge(incoming)
    store = cloud.store
    if not store.update_vm(replace(vm, user_template=user_template)):  # type: ignore[attr-defined]
        raise InternalError(f"[{method}] VM {vid} is not in the database")
    vm.user_template = user_template
    cloud.pools.vms.changed(vid)
    return vid


def _vm(cloud: Cloud, caller: Caller, vid: int, method: str, action: str) -> Vm:
    vm = cloud.pools.vms.get(vid)
    if vm is None:
        raise NoSuchObject(f"[{method}] Error getting VM [{vid}] (DONE or never created).")
    require_owner(caller, vm.uid, method, action, f"VM [{vid}]")
    return vm


def _placement(cloud: Cloud, caller: Caller, vid: int, hid: int, method: str) -> tuple[Vm, Host]:
    """The VM and the host of a deploy or migrate; a user other than oneadmin is refused
    (0x200) before anything is looked up, so the answer tells nothing about the objects."""
    require_admin(caller, method, f"ADMIN on VM [{vid}]")
    vm = _vm(cloud, caller, vid, method, "ADMIN")
    host = cloud.pools.hosts.get(hid)
    if host is None:
        raise NoSuchObject(f"[{method}] Error getting host [{hid}].")
    return vm, host


def _ref(cloud: Cloud, host: Host) -> lc.HostRef:
    vm_dir = cloud.config.vm_dir or cloud.var_dir
    return lc.HostRef(host.id, host.name, host.vm_mad, host.tm_mad, vm_dir)


def _lcm(cloud: Cloud) -> object:
    if cloud.lcm is None:
        raise InternalError("the life-cycle manager is not running")
    return cloud.lcm
