"""XML documents of users, hosts and VMs, as OpenNebula's clients read them (§5); networks' are
in oned/vnet_views.py, images' in oned/image_views.py.

Pure functions from records to XML text. The element set is the union that 1.4/2.0 clients and
modern ones (pyone, reference/opennebula-xml/) read: modern names first, 1.4 extras after. Integer
fields always hold integers. No whitespace between elements, no XML declaration.
"""

from __future__ import annotations

from collections.abc import Iterable

from oned.records import History, Host, User, Vm
from oned.template import Template

ONEADMIN_GROUP = (0, "oneadmin")
USERS_GROUP = (1, "users")
_OWNER_PERMISSIONS = (
    "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
    "<GROUP_U>0</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A>"
    "<OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>"
)


# NOTE: onecloud has no quotas; OpenNebula >= 4 sends each quota empty when none is set, and
# USER (user.xsd) and USER_POOL (user_pool.xsd, after the users) need DEFAULT_USER_QUOTAS.
_NO_QUOTAS = "<DATASTORE_QUOTA/><NETWORK_QUOTA/><VM_QUOTA/><IMAGE_QUOTA/>"
DEFAULT_USER_QUOTAS = f"<DEFAULT_USER_QUOTAS>{_NO_QUOTAS}</DEFAULT_USER_QUOTAS>"


def escape(text: str) -> str:
    """Escape text for an XML element body."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def group_of(uid: int) -> tuple[int, str]:
    """NOTE: 1.4 has no groups; like OpenNebula 3.x+ oneadmin is in group 0, everyone else in 1."""
    return ONEADMIN_GROUP if uid == 0 else USERS_GROUP


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    out = []
    for tag, value in pairs:
        text = escape(value) if isinstance(value, str) else str(int(value))  # type: ignore[call-overload]
        out.append(f"<{tag}>{text}</{tag}>")
    return "".join(out)


def user_xml(user: User) -> str:
    gid, gname = group_of(user.id)
    return (
        f"<USER><ID>{user.id}</ID><GID>{gid}</GID><GROUPS><ID>{gid}</ID></GROUPS>"
        f"<GNAME>{gname}</GNAME><NAME>{escape(user.name)}</NAME>"
        f"<PASSWORD>{escape(user.password)}</PASSWORD><AUTH_DRIVER>core</AUTH_DRIVER>"
        f"<ENABLED>{int(user.enabled)}</ENABLED><TEMPLATE/>{_NO_QUOTAS}{DEFAULT_USER_QUOTAS}</USER>"
    )


def host_xml(host: Host, vm_ids: Iterable[int] = ()) -> str:
    s = host.share
    share = fields(
        (
            ("HID", host.id),
            ("DISK_USAGE", s.disk_usage),
            ("MEM_USAGE", s.mem_usage),
            ("CPU_USAGE", s.cpu_usage),
            ("MAX_DISK", s.max_disk),
            ("MAX_MEM", s.max_mem),
            ("MAX_CPU", s.max_cpu),
            ("FREE_DISK", s.free_disk),
            ("FREE_MEM", s.free_mem),
            ("FREE_CPU", s.free_cpu),
            ("USED_DISK", s.used_disk),
            ("USED_MEM", s.used_mem),
            ("USED_CPU", s.used_cpu),
            ("RUNNING_VMS", s.running_vms),
            ("TOTAL_MEM", s.max_mem),
            ("TOTAL_CPU", s.max_cpu),
            ("VMS_THREAD", 1),
        )
    )
    head = fields(
        (
            ("ID", host.id),
            ("NAME", host.name),
            ("STATE", host.state),
            ("PREV_STATE", host.prev_state),
            ("IM_MAD", host.im_mad),
            ("VM_MAD", host.vm_mad),
            ("TM_MAD", host.tm_mad),
            ("LAST_MON_TIME", host.last_mon_time),
            ("CLUSTER_ID", 0),
            ("CLUSTER", host.cluster),
        )
    )
    vms = "".join(f"<ID>{vid}</ID>" for vid in vm_ids)
    return (
        f"<HOST>{head}<HOST_SHARE>{share}{_host_datastores(host)}<PCI_DEVICES/><NUMA_NODES/>"
        f"</HOST_SHARE><VMS>{vms}</VMS>{host.template.to_xml()}{_host_monitoring(host)}</HOST>"
    )


def _host_datastores(host: Host) -> str:
    """Modern HOST_SHARE/DATASTORES: the host's disk as one local system datastore."""
    s = host.share
    disk = (
        ("DISK_USAGE", s.disk_usage),
        ("FREE_DISK", s.free_disk),
        ("MAX_DISK", s.max_disk),
        ("USED_DISK", s.used_disk),
    )
    return f"<DATASTORES>{fields(disk)}</DATASTORES>"


def _host_monitoring(host: Host) -> str:
    """Modern MONITORING/CAPACITY from the last monitoring (empty before the first)."""
    if not host.last_mon_time:
        return "<MONITORING/>"
    s = host.share
    capacity = fields(
        (
            ("FREE_CPU", s.free_cpu),
            ("FREE_MEMORY", s.free_mem),
            ("USED_CPU", s.used_cpu),
            ("USED_MEMORY", s.used_mem),
        )
    )
    return (
        f"<MONITORING><TIMESTAMP>{host.last_mon_time}</TIMESTAMP><ID>{host.id}</ID>"
        f"<CAPACITY>{capacity}</CAPACITY></MONITORING>"
    )


def history_xml(h: History, tag: str = "HISTORY") -> str:
    body = fields(
        (
            ("OID", h.vid),
            ("SEQ", h.seq),
            ("HOSTNAME", h.host_name),
            ("HID", h.hid),
            ("CID", 0),
            ("STIME", h.stime),
            ("ETIME", h.etime),
            ("VM_MAD", h.vm_mad),
            ("TM_MAD", h.tm_mad),
            ("DS_ID", 0),
            ("PSTIME", h.pstime),
            ("PETIME", h.petime),
            ("RSTIME", h.rstime),
            ("RETIME", h.retime),
            ("ESTIME", h.estime),
            ("EETIME", h.eetime),
            ("REASON", h.reason),
            ("ACTION", 0),
        )
    )
    # NOTE: OpenNebula >= 5 records who asked for the action; -1 is its "the core".
    return f"<{tag}>{body}<UID>-1</UID><GID>-1</GID><REQUEST_ID>-1</REQUEST_ID></{tag}>"


def vm_xml(vm: Vm, uname: str) -> str:
    """One VM in full: one.vm.info, one.vmpool.infoextended and 2.0's extended pool."""
    return _vm(vm, uname, vm.template.to_xml())


def vm_short_xml(vm: Vm, uname: str) -> str:
    """The summary of a VM in one.vmpool.info: what listings and the scheduler read, and the
    whole USER_TEMPLATE (so that listings see the scheduler's SCHED_MESSAGE).

    1.4/2.0 listings read USERNAME, MEMORY, CPU, NET_TX/NET_RX and the current HISTORY
    (HOSTNAME); 4.x reads MONITORING/CPU and MEMORY; modern ones HISTORY_RECORDS.

    NOTE: OpenNebula >= 5.8 also answers one.vmpool.info with a reduced VM body, USER_TEMPLATE
    in full (and 1.4's pool had no TEMPLATE at all); the full one is one.vmpool.infoextended.
    """
    head = fields(
        (
            *_owner(vm, uname),
            ("USERNAME", uname),
            ("NAME", vm.name),
            ("LAST_POLL", vm.last_poll),
            ("STATE", vm.state),
            ("LCM_STATE", vm.lcm_state),
            ("RESCHED", vm.resched),
            ("STIME", vm.stime),
            ("ETIME", vm.etime),
            ("DEPLOY_ID", vm.deploy_id),
            ("MEMORY", vm.memory),
            ("CPU", vm.cpu),
            ("NET_TX", vm.net_tx),
            ("NET_RX", vm.net_rx),
        )
    )
    last = vm.history[-1] if vm.history else None
    records = (
        "<HISTORY_RECORDS>"
        + fields(
            (
                ("OID", last.vid),
                ("SEQ", last.seq),
                ("HOSTNAME", last.host_name),
                ("HID", last.hid),
                ("CID", 0),
                ("DS_ID", 0),
                ("VM_MAD", last.vm_mad),
                ("TM_MAD", last.tm_mad),
                ("ACTION", 0),
            )
        ).join(("<HISTORY>", "</HISTORY>"))
        + "</HISTORY_RECORDS>"
        + history_xml(last)
        if last
        else "<HISTORY_RECORDS/>"
    )
    user_template = vm.user_template.to_xml("USER_TEMPLATE")
    return (
        f"<VM>{head}{_monitoring(vm, always=True)}{_short_template(vm.template).to_xml()}"
        f"{user_template}{records}</VM>"
    )


def _monitoring(vm: Vm, always: bool = False) -> str:
    """Modern MONITORING: the polled values, empty before the first poll unless ``always``."""
    if not (vm.last_poll or always):
        return "<MONITORING/>"
    return (
        f"<MONITORING><CPU>{vm.cpu}</CPU><MEMORY>{vm.memory}</MEMORY>"
        f"<NETRX>{vm.net_rx}</NETRX><NETTX>{vm.net_tx}</NETTX></MONITORING>"
    )


# EC2_TAGS and ECONE: what econe's DescribeInstances reads of an instance (issue 15)
_SHORT_SINGLE = ("NAME", "CPU", "VCPU", "MEMORY", "REQUIREMENTS", "RANK", "EC2_TAGS")
_SHORT_VECTOR = {
    "NIC": ("NETWORK", "NETWORK_ID", "IP", "MAC", "BRIDGE"),
    "DISK": ("TYPE", "TARGET", "SIZE", "IMAGE", "IMAGE_ID"),
    "EC2": ("CLOUD", "INSTANCETYPE"),  # where the scheduler may send a hybrid VM (issue 14)
    "ECONE": (
        "INSTANCE_TYPE",
        "IMAGE_ID",
        "KEY_NAME",
        "CLIENT_TOKEN",
        "RESERVATION",
        "LAUNCH_INDEX",
    ),
}


def _short_template(tmpl: Template) -> Template:
    short = Template()
    for name, value in tmpl:
        if name in _SHORT_SINGLE and isinstance(value, str):
            short.add(name, value)
        elif name in _SHORT_VECTOR and isinstance(value, dict):
            kept = {k: v for k, v in value.items() if k in _SHORT_VECTOR[name]}
            if kept:
                short.add(name, kept)
    return short


def _owner(vm: Vm, uname: str) -> tuple[tuple[str, object], ...]:
    gid, gname = group_of(vm.uid)
    return ("ID", vm.id), ("UID", vm.uid), ("GID", gid), ("UNAME", uname), ("GNAME", gname)


def _vm(vm: Vm, uname: str, template_xml: str) -> str:
    head = fields((*_owner(vm, uname), ("USERNAME", uname), ("NAME", vm.name)))
    status = fields(
        (
            ("LAST_POLL", vm.last_poll),
            ("STATE", vm.state),
            ("LCM_STATE", vm.lcm_state),
            ("PREV_STATE", vm.prev_state),
            ("PREV_LCM_STATE", vm.prev_lcm_state),
            ("RESCHED", vm.resched),
            ("STIME", vm.stime),
            ("ETIME", vm.etime),
            ("DEPLOY_ID", vm.deploy_id),
            ("MEMORY", vm.memory),
            ("CPU", vm.cpu),
            ("NET_TX", vm.net_tx),
            ("NET_RX", vm.net_rx),
            ("LAST_SEQ", vm.history[-1].seq if vm.history else -1),
        )
    )
    records = "".join(history_xml(h) for h in vm.history)
    last = history_xml(vm.history[-1]) if vm.history else ""
    return (
        f"<VM>{head}{_OWNER_PERMISSIONS}{status}{_monitoring(vm)}<SCHED_ACTIONS/>{template_xml}"
        f"{vm.user_template.to_xml('USER_TEMPLATE')}"
        f"<HISTORY_RECORDS>{records}</HISTORY_RECORDS>{_NO_BACKUPS}{last}</VM>"
    )


# NOTE: OpenNebula >= 6 always sends BACKUPS; onecloud has no backups.
_NO_BACKUPS = "<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS/></BACKUPS>"


def permissions(public: bool) -> str:
    """Owner use and manage; a public network is also usable by everyone (GROUP_U, OTHER_U)."""
    return _OWNER_PERMISSIONS.replace("<GROUP_U>0", f"<GROUP_U>{int(public)}").replace(
        "<OTHER_U>0", f"<OTHER_U>{int(public)}"
    )
