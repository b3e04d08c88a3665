"""one.vm.deploy, one.vm.action and one.vm.migrate (reference §3.2, §4): user actions on VMs.

Each checks ownership, then lets the lifecycle table decide whether the VM's state allows it
(0x800 naming the state otherwise), and answers once the new state is committed.
"""

from __future__ import annotations

from oned import lifecycle as lc
from oned.api.cloud import Caller, Cloud, require_owner
from oned.errors import ActionNotAllowed, BadCall, InternalError, NoSuchObject
from oned.lcm import demand
from oned.records import Host, Vm

# NOTE: names of every era map onto 1.4's actions (reference §4, pyone.md): 2.0's finalize and
# 4.x's delete are 1.4's delete; 5.x's terminate(-hard) are shutdown and cancel.
ACTIONS = {
    **{e.value: e for e in lc.USER_ACTIONS if e not in lc.NEEDS_HOST},
    "finalize": lc.Event.DELETE,
    "terminate": lc.Event.SHUTDOWN,
    "terminate-hard": lc.Event.CANCEL,
    "shutdown-hard": lc.Event.CANCEL,
}


def deploy(cloud: Cloud, caller: Caller, vid: int, hid: int, enforce: bool = False,
           ds_id: int = -1) -> int:  # fmt: skip
    """Deploy a PENDING VM on a host; with ``enforce`` the host must have room for it."""
    method = "one.vm.deploy"
    vm = _vm(cloud, caller, vid, method, "MANAGE")
    host = _host(cloud, hid, method)
    lc.check(vm.state, vm.lcm_state, lc.Event.DEPLOY, vid, method)
    if enforce:
        _room(host, vm, method)
    vm.template.remove("SCHED_MESSAGE")
    _lcm(cloud).user_action(vm, lc.Event.DEPLOY, _ref(cloud, host))
    return vid


def action(cloud: Cloud, caller: Caller, name: str, vid: int) -> int:
    method = "one.vm.action"
    event = ACTIONS.get(name.lower())
    if event is None:
        known = ", ".join(sorted(ACTIONS))
        raise BadCall(f"[{method}] Unknown action {name!r}; one of: {known}")
    vm = _vm(cloud, caller, vid, method, "MANAGE")
    _lcm(cloud).user_action(vm, event)
    return vid


def migrate(cloud: Cloud, caller: Caller, vid: int, hid: int, live: bool, enforce: bool = False,
            ds_id: int = -1, kind: int = 0) -> int:  # fmt: skip
    method = "one.vm.migrate"
    vm = _vm(cloud, caller, vid, method, "MANAGE")
    host = _host(cloud, hid, method)
    event = lc.Event.LIVEMIGRATE if live else lc.Event.MIGRATE
    lc.check(vm.state, vm.lcm_state, event, vid, method)
    if vm.history and vm.history[-1].hid == hid:
        raise ActionNotAllowed(f"[{method}] VM {vid} is already running on host {hid}")
    if enforce:
        _room(host, vm, method)
    _lcm(cloud).user_action(vm, event, _ref(cloud, host))
    return vid


def _vm(cloud: Cloud, caller: Caller, vid: int, method: str, action: str) -> Vm:
    vm = cloud.pools.vms.get(vid)
    if vm is None:
        raise NoSuchObject(f"[{method}] Error getting VM [{vid}] (DONE or never created).")
    require_owner(caller, vm.uid, method, action, f"VM [{vid}]")
    return vm


def _host(cloud: Cloud, hid: int, method: str) -> Host:
    host = cloud.pools.hosts.get(hid)
    if host is None:
        raise NoSuchObject(f"[{method}] Error getting host [{hid}].")
    return host


def _room(host: Host, vm: Vm, method: str) -> None:
    """The capacity check oned itself makes (no over-commit by a stale scheduler view)."""
    cpu, memory = demand(vm)
    share = host.share
    free_cpu, free_mem = share.max_cpu - share.cpu_usage, share.max_mem - share.mem_usage
    if cpu > free_cpu:
        raise ActionNotAllowed(
            f"[{method}] host {host.id} ({host.name}) has not enough CPU ({free_cpu} < {cpu})"
        )
    if memory > free_mem:
        raise ActionNotAllowed(
            f"[{method}] host {host.id} ({host.name}) has not enough memory "
            f"({free_mem // 1024} < {memory // 1024} MB)"
        )


def _ref(cloud: Cloud, host: Host) -> lc.HostRef:
    vm_dir = cloud.config.vm_dir or cloud.var_dir
    return lc.HostRef(host.id, host.name, host.vm_mad, host.tm_mad, vm_dir)


def _lcm(cloud: Cloud) -> object:
    if cloud.lcm is None:
        raise InternalError("the life-cycle manager is not running")
    return cloud.lcm
