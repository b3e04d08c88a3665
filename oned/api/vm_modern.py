"""one.vm.rename, one.vmpool.infoset and one.vm.monitoring: VM methods of modern OpenNebula
(issue 12), with the owner-or-oneadmin rule of the other VM methods."""

from __future__ import annotations

from dataclasses import replace

from oned import views
from oned.api.cloud import Caller, Cloud, managed_vm, require_owner
from oned.api.replies import pool
from oned.errors import BadCall, InternalError, NoSuchObject
from oned.records import Vm
from oned.rpc.marshal import Escaped, escape_bytes
from oned.template import Template
from oned.vmtemplate import check_vm_template

MAX_INFOSET = 10_000  # ids per one.vmpool.infoset call


def rename(cloud: Cloud, caller: Caller, vid: int, name: str) -> int:
    """The VM's NAME (and its template's) becomes ``name``, with allocate's rules: 1-128
    printable characters. The owner or oneadmin; not a DONE VM (0x800)."""
    method = "one.vm.rename"
    vm = managed_vm(cloud, caller, vid, method, "it cannot be renamed")
    problems = check_vm_template(Template([("NAME", name)]))
    if problems or not name.isprintable():
        raise BadCall(f'[{method}] NAME = "{name}": must be 1-128 printable characters')
    template = vm.template.copy()
    template.set("NAME", name)
    if not cloud.store.update_vm(replace(vm, name=name, template=template)):  # type: ignore[attr-defined]
        raise InternalError(f"[{method}] VM {vid} is not in the database")
    vm.name, vm.template = name, template
    cloud.pools.vms.changed(vid)
    return vid


def pool_infoset(cloud: Cloud, caller: Caller, ids: str, extended: bool = False) -> Escaped:
    """``<VM_POOL>`` of the VMs named in ``ids`` ("3,5,7"), in id order, DONE ones included;
    those the caller may not see, or that do not exist, are left out as in OpenNebula."""
    wanted = _id_list(ids, "one.vmpool.infoset")
    rows: dict[int, bytes] = {}
    vms = cloud.pools.vms
    xml = vms.xml if extended else vms.xml_short
    for vid in wanted:
        vm = vms.get(vid)
        if vm is not None and _visible(caller, vm):
            rows[vid] = xml(vm)
    render = views.vm_xml if extended else views.vm_short_xml
    stored = [vid for vid in wanted if vid not in vms]
    for vm in cloud.store.get_vms(stored) if stored else ():  # type: ignore[attr-defined]
        if _visible(caller, vm):
            rows[vm.id] = escape_bytes(render(vm, cloud.pools.uname(vm.uid)))
    return pool("VM_POOL", (rows[vid] for vid in sorted(rows)))


def _visible(caller: Caller, vm: Vm) -> bool:
    return caller.is_admin or vm.uid == caller.uid


def _id_list(ids: str, method: str) -> list[int]:
    parts = [p.strip() for p in ids.split(",") if p.strip()]
    if len(parts) > MAX_INFOSET or not all(p.isdigit() and len(p) <= 10 for p in parts):
        raise BadCall(f"[{method}] ids must be a comma-separated list of VM ids, not {ids[:80]!r}")
    return sorted({int(p) for p in parts})


def monitoring(cloud: Cloud, caller: Caller, vid: int) -> str:
    """``<MONITORING_DATA>``: one ``<MONITORING>`` record, the VM's last POLL (onecloud keeps
    no series); empty before the first POLL or for a VM that never ran."""
    method = "one.vm.monitoring"
    vm = cloud.pools.vms.get(vid) or cloud.store.get_vm(vid)  # type: ignore[attr-defined]
    if vm is None:
        raise NoSuchObject(f"[{method}] Error getting VM [{vid}].")
    require_owner(caller, vm.uid, method, "USE", f"VM [{vid}]")
    if not vm.last_poll:
        return "<MONITORING_DATA/>"
    record = (
        f"<TIMESTAMP>{vm.last_poll}</TIMESTAMP><ID>{vm.id}</ID><CPU>{vm.cpu}</CPU>"
        f"<MEMORY>{vm.memory}</MEMORY><NETRX>{vm.net_rx}</NETRX><NETTX>{vm.net_tx}</NETTX>"
    )
    return f"<MONITORING_DATA><MONITORING>{record}</MONITORING></MONITORING_DATA>"
