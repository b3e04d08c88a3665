"""one.host.* and one.hostpool.info (reference §4). Only oneadmin manages hosts; anyone reads.

NOTE: OpenNebula 1.4 lets every user list and show hosts (the scheduler's view of the cloud);
so does onecloud. Hosts are owned by oneadmin.
"""

from __future__ import annotations

import re
from dataclasses import replace

from oned.api import templates
from oned.api.cloud import Caller, Cloud, require_admin
from oned.api.replies import document, pool
from oned.config import MadConfig
from oned.errors import ActionNotAllowed, AllocateError, BadCall, NoSuchObject
from oned.records import Host
from oned.rpc.marshal import Escaped
from oned.states import HostState
from oned.store import DuplicateName

_HOSTNAME = re.compile(r"[A-Za-z0-9_.:\-\[\]]{1,255}")


def allocate(cloud: Cloud, caller: Caller, name: str, im: str, vmm: str, tm: str = "") -> int:
    method = "one.host.allocate"
    require_admin(caller, method, "CREATE on HOST")
    if not _HOSTNAME.fullmatch(name):
        raise BadCall(f'[{method}] invalid host name "{name}"')
    im = _mad(cloud.config.im_mads, im, "IM_MAD", "im_", method)
    vmm = _mad(cloud.config.vm_mads, vmm, "VM_MAD", "vmm_", method)
    tm = (
        _mad(cloud.config.tm_mads, tm, "TM_MAD", "tm_", method)
        if tm
        else _default_tm(cloud, method)
    )
    if name in cloud.pools.host_names:
        raise AllocateError(f"[{method}] NAME is already taken by HOST {name!r}.")
    host = Host(id=cloud.pools.next_ids["host"], name=name, im_mad=im, vm_mad=vmm, tm_mad=tm)
    try:
        cloud.store.insert_host(host)  # type: ignore[attr-defined]
    except DuplicateName:
        raise AllocateError(f"[{method}] NAME is already taken by HOST {name!r}.") from None
    cloud.pools.take_id("host")
    cloud.pools.put_host(host)
    cloud.log.info(f"Host {name} ({host.id}) created")
    return host.id


def info(cloud: Cloud, caller: Caller, hid: int, decrypt: bool = False) -> Escaped:
    host = _get(cloud, hid, "one.host.info")
    return document(cloud.pools.hosts.xml(host))


def pool_info(cloud: Cloud, caller: Caller) -> Escaped:
    hosts = cloud.pools.hosts
    return pool("HOST_POOL", (hosts.xml(h) for h in hosts))


def delete(cloud: Cloud, caller: Caller, hid: int) -> int:
    method = "one.host.delete"
    require_admin(caller, method, "DELETE on HOST")
    host = _get(cloud, hid, method)
    if host.share.running_vms:
        raise ActionNotAllowed(
            f"[{method}] Host {hid} still has {host.share.running_vms} running VMs."
        )
    cloud.store.delete_host(hid)  # type: ignore[attr-defined]
    cloud.pools.remove_host(hid)
    cloud.log.info(f"Host {host.name} ({hid}) deleted")
    return hid


def enable(cloud: Cloud, caller: Caller, hid: int, enabled: bool) -> int:
    """1.4/2.0 ``one.host.enable``: enabling puts the host back to INIT to be monitored anew."""
    method = "one.host.enable"
    require_admin(caller, method, "MANAGE on HOST")
    host = _get(cloud, hid, method)
    new = HostState.INIT if enabled else HostState.DISABLED
    if enabled and host.state != HostState.DISABLED:
        return hid
    if host.state != new:
        host.prev_state, host.state = host.state, new
        cloud.store.update_host(host)  # type: ignore[attr-defined]
        cloud.pools.hosts.changed(hid)
        cloud.log.info(f"Host {host.name} ({hid}) {'enabled' if enabled else 'disabled'}")
    return hid


def status(cloud: Cloud, caller: Caller, hid: int, status: int) -> int:
    """Modern ``one.host.status``: 0 ENABLED, 1 DISABLED, 2 OFFLINE.

    NOTE: onecloud has no OFFLINE state (OpenNebula 1.4/2.0 have none); OFFLINE disables.
    """
    require_admin(caller, "one.host.status", "MANAGE on HOST")
    if status not in (0, 1, 2):
        raise BadCall(f"[one.host.status] wrong status {status}: 0 ENABLED, 1 DISABLED, 2 OFFLINE")
    return enable(cloud, caller, hid, status == 0)


REPLACE, MERGE = 0, 1
_RESERVATIONS = ("RESERVED_CPU", "RESERVED_MEM")  # read by mm_sched (scheduler/placement.py)
_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,15}\s*")


def update(cloud: Cloud, caller: Caller, hid: int, text: str, merge: int = REPLACE) -> int:
    """Modern ``one.host.update``: the operator's attributes of a host (RESERVED_CPU...).

    ``merge`` 1 merges ``text`` into the host's TEMPLATE; 0 replaces it. NOTE: as in 1.4, the
    TEMPLATE also holds the monitoring, so a replaced host is monitored again at once (back to
    INIT), which adds the monitored attributes back. RESERVED_CPU (percent) and RESERVED_MEM
    (KB) must be integers: a negative one over-commits. Errors: 0x1000 bad template or flag.
    """
    method = "one.host.update"
    require_admin(caller, method, "MANAGE on HOST")
    if merge not in (REPLACE, MERGE):
        raise BadCall(f"[{method}] merge must be 0 (replace) or 1 (merge), not {merge}")
    host = _get(cloud, hid, method)
    incoming = templates.parse(text, method, "HOST")
    for name in _RESERVATIONS:
        value = incoming.get(name)
        if value is not None and not (isinstance(value, str) and _INTEGER.fullmatch(value)):
            raise BadCall(
                f'[{method}] {name} = "{value}" is not an integer (a negative one over-commits)'
            )
    template = incoming
    if merge == MERGE:
        template = host.template.copy()
        template.merge(incoming)
    again = merge == REPLACE and host.state == HostState.MONITORED
    state = HostState.INIT if again else host.state
    cloud.store.update_host(replace(host, template=template, state=state))  # type: ignore[attr-defined]
    host.template = template
    if again:
        host.prev_state, host.state = host.state, state
    cloud.pools.hosts.changed(hid)
    cloud.log.info(f"Host {host.name} ({hid}) template {'merged' if merge else 'replaced'}")
    return hid


def _get(cloud: Cloud, hid: int, method: str) -> Host:
    host = cloud.pools.hosts.get(hid)
    if host is None:
        raise NoSuchObject(f"[{method}] Error getting host [{hid}].")
    return host


def _mad(mads: tuple[MadConfig, ...], name: str, attr: str, prefix: str, method: str) -> str:
    """The driver name as oned.conf spells it; modern short names (``kvm``) get their prefix."""
    names = [m.name for m in mads]
    for candidate in (name, prefix + name):
        if candidate in names:
            return candidate
    defined = ", ".join(names) or "none"
    raise BadCall(f'[{method}] {attr} "{name}" is not defined in oned.conf (defined: {defined})')


def _default_tm(cloud: Cloud, method: str) -> str:
    """Modern host.allocate names no TM driver (datastores took its place): oned.conf's
    DEFAULT_TM_MAD, which must be one of its TM_MADs."""
    tm = cloud.config.default_tm_mad
    names = [m.name for m in cloud.config.tm_mads]
    if tm not in names:
        defined = ", ".join(names) or "none"
        raise BadCall(
            f'[{method}] DEFAULT_TM_MAD "{tm}" is not defined in oned.conf (defined: {defined}):'
            " set DEFAULT_TM_MAD, or give the TM_MAD as the fourth argument"
        )
    return tm
