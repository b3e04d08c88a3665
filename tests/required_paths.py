"""The element paths each document must carry for OpenNebula's clients of every release (issue 12).

Modern paths are the elements OpenNebula 6.10's XSDs (share/doc/xsd/ of OpenNebula/one at
release-6.10.5) mark as required, i.e. without minOccurs="0"; old paths are the 1.4/2.0
documents of ../shared/reference/opennebula.md §5.1-5.2. The 6.10 element sets were checked
against the documents a real 6.10.5 oned returned (../shared/reference/opennebula-xml/) and
pyone's bindings, generated from those XSDs; the search index holds older revisions of some
XSDs (host.xsd of 4.x, vnet_pool.xsd of 5.x), which are not used here.

A path is relative to the object's root element (``VM``, ``HOST``...). A step ending in ``*``
may be absent or repeated: what follows it is required in every occurrence, e.g.
``HISTORY_RECORDS/HISTORY*/OID`` (a VM that never ran has no HISTORY).
"""

from __future__ import annotations

from xml.etree import ElementTree

# The owner of a VM or network, in every modern document.
_OWNED = ("ID", "UID", "GID", "UNAME", "GNAME", "NAME")
PERMISSIONS = tuple(
    f"PERMISSIONS/{who}_{right}" for who in ("OWNER", "GROUP", "OTHER") for right in "UMA"
)

# host.xsd (6.10): HOST_SHARE lost the 1.4 disk/free/used fields to DATASTORES and MONITORING.
HOST_610 = (
    "ID",
    "NAME",
    "STATE",
    "PREV_STATE",
    "IM_MAD",
    "VM_MAD",
    "CLUSTER_ID",
    "CLUSTER",
    *(
        f"HOST_SHARE/{name}"
        for name in (
            "MEM_USAGE",
            "CPU_USAGE",
            "TOTAL_MEM",
            "TOTAL_CPU",
            "MAX_MEM",
            "MAX_CPU",
            "RUNNING_VMS",
            "VMS_THREAD",
            "DATASTORES/DISK_USAGE",
            "DATASTORES/FREE_DISK",
            "DATASTORES/MAX_DISK",
            "DATASTORES/USED_DISK",
            "PCI_DEVICES",
            "NUMA_NODES",
        )
    ),
    "VMS",
    "TEMPLATE",
    "MONITORING",
)
# host_pool.xsd (6.10): each HOST as in host.xsd.
HOST_POOL_610 = HOST_610

# reference §5.1 (1.4 host.info; the 1.4 pool has no TEMPLATE) and §5.2 (2.0 adds CLUSTER).
HOST_POOL_14 = (
    "ID",
    "NAME",
    "STATE",
    "IM_MAD",
    "VM_MAD",
    "TM_MAD",
    "LAST_MON_TIME",
    "CLUSTER",
    *(
        f"HOST_SHARE/{name}"
        for name in (
            "HID",
            "DISK_USAGE",
            "MEM_USAGE",
            "CPU_USAGE",
            "MAX_DISK",
            "MAX_MEM",
            "MAX_CPU",
            "FREE_DISK",
            "FREE_MEM",
            "FREE_CPU",
            "USED_DISK",
            "USED_MEM",
            "USED_CPU",
            "RUNNING_VMS",
        )
    ),
)
HOST_14 = (*HOST_POOL_14, "TEMPLATE")

_HISTORY_610 = tuple(
    f"HISTORY_RECORDS/HISTORY*/{name}"
    for name in (
        "OID",
        "SEQ",
        "HOSTNAME",
        "HID",
        "CID",
        "STIME",
        "ETIME",
        "VM_MAD",
        "TM_MAD",
        "DS_ID",
        "PSTIME",
        "PETIME",
        "RSTIME",
        "RETIME",
        "ESTIME",
        "EETIME",
        "ACTION",
        "UID",
        "GID",
        "REQUEST_ID",
    )
)
# vm.xsd (6.10): one.vm.info and one.vmpool.infoextended.
VM_610 = (
    *_OWNED,
    *PERMISSIONS,
    "LAST_POLL",
    "STATE",
    "LCM_STATE",
    "PREV_STATE",
    "PREV_LCM_STATE",
    "RESCHED",
    "STIME",
    "ETIME",
    "DEPLOY_ID",
    "MONITORING",
    "SCHED_ACTIONS",
    "TEMPLATE",
    "USER_TEMPLATE",
    "HISTORY_RECORDS",
    *_HISTORY_610,
    "BACKUPS/BACKUP_CONFIG",
    "BACKUPS/BACKUP_IDS",
)
_HISTORY_14 = tuple(
    f"HISTORY*/{name}"
    for name in (
        "SEQ",
        "HOSTNAME",
        "HID",
        "STIME",
        "ETIME",
        "PSTIME",
        "PETIME",
        "RSTIME",
        "RETIME",
        "ESTIME",
        "EETIME",
        "REASON",
    )
)
# reference §5.1: the fixed fields of a 1.4 VM, in one.vm.info and in the pool, where
# MEMORY, CPU and NET_* are the monitored values (§5.2: 2.0's pool adds USERNAME).
_VM_FIXED_14 = (
    "ID",
    "UID",
    "USERNAME",
    "NAME",
    "LAST_POLL",
    "STATE",
    "LCM_STATE",
    "STIME",
    "ETIME",
    "DEPLOY_ID",
    "MEMORY",
    "CPU",
    "NET_TX",
    "NET_RX",
)
# reference §5.1 (1.4 one.vm.info) and §5.2 (2.0 adds LAST_SEQ).
VM_14 = (*_VM_FIXED_14, "LAST_SEQ", "TEMPLATE", *_HISTORY_14)

# vm_pool.xsd (6.10): the reduced VM of one.vmpool.info.
VM_POOL_610 = (
    *_OWNED,
    "LAST_POLL",
    "STATE",
    "LCM_STATE",
    "RESCHED",
    "STIME",
    "ETIME",
    "DEPLOY_ID",
    "TEMPLATE",
    "USER_TEMPLATE",
    "HISTORY_RECORDS",
    *(
        f"HISTORY_RECORDS/HISTORY*/{name}"
        for name in ("OID", "SEQ", "HOSTNAME", "HID", "CID", "DS_ID", "VM_MAD", "TM_MAD", "ACTION")
    ),
)
# reference §5.1 (1.4 VM_POOL, read by 1.4/2.0 `onevm list`: USER, CPU, MEM, HOSTNAME) and
# what 4.x's `onevm list` reads (MONITORING/CPU and MEMORY).
VM_POOL_14 = (*_VM_FIXED_14, *_HISTORY_14, "MONITORING/CPU", "MONITORING/MEMORY")
# A VM that was deployed: its current HISTORY where 1.4/2.0 read it, and modern's record.
DEPLOYED = ("HISTORY/HOSTNAME", "HISTORY_RECORDS/HISTORY/HOSTNAME")

_VNET_COMMON_610 = (
    *_OWNED,
    "CLUSTERS",
    "BRIDGE",
    "STATE",
    "PREV_STATE",
    "PARENT_NETWORK_ID",
    "VN_MAD",
    "PHYDEV",
    "VLAN_ID",
    "OUTER_VLAN_ID",
    "VLAN_ID_AUTOMATIC",
    "OUTER_VLAN_ID_AUTOMATIC",
    "USED_LEASES",
    "VROUTERS",
    "UPDATED_VMS",
    "OUTDATED_VMS",
    "UPDATING_VMS",
    "ERROR_VMS",
    "TEMPLATE",
    "AR_POOL",
    *(f"AR_POOL/AR*/{name}" for name in ("AR_ID", "MAC", "SIZE", "TYPE")),
)
# vnet.xsd (6.10): one.vn.info, with the leases of each address range.
VNET_610 = (
    *_VNET_COMMON_610,
    "AR_POOL/AR*/USED_LEASES",
    "AR_POOL/AR*/LEASES*/LEASE*/MAC",
)
# vnet_pool.xsd (6.10): one.vnpool.info, address ranges without their leases.
VNET_POOL_610 = _VNET_COMMON_610

# reference §5.1 (1.4 VNET: LEASES, used leases of a RANGED network, all of a FIXED one) and
# §5.2 (2.0 adds PUBLIC).
VNET_14 = (
    "ID",
    "UID",
    "NAME",
    "TYPE",
    "BRIDGE",
    "PUBLIC",
    "TEMPLATE",
    "LEASES",
    *(f"LEASES/LEASE*/{name}" for name in ("IP", "MAC", "USED", "VID")),
)
# reference §5.1 (1.4 VNET_POOL) and §5.2 (2.0 adds PUBLIC and TEMPLATE).
VNET_POOL_14 = (
    "ID",
    "UID",
    "USERNAME",
    "NAME",
    "TYPE",
    "BRIDGE",
    "PUBLIC",
    "TOTAL_LEASES",
    "TEMPLATE",
)

# user.xsd (6.10).
USER_610 = (
    "ID",
    "GID",
    "GROUPS/ID",
    "GNAME",
    "NAME",
    "PASSWORD",
    "AUTH_DRIVER",
    "ENABLED",
    "TEMPLATE",
    "DEFAULT_USER_QUOTAS",
)
# user_pool.xsd (6.10): each USER; DEFAULT_USER_QUOTAS follows the users, at the pool's level.
USER_POOL_610 = USER_610[:-1]
USER_POOL_LEVEL_610 = ("DEFAULT_USER_QUOTAS",)
# reference §5.1 (1.4 USER and USER_POOL).
USER_14 = ("ID", "NAME", "PASSWORD", "ENABLED")

# image.xsd (6.10): the elements without minOccurs="0" (PERMISSIONS is optional there, but every
# 6.10 image has it). NOTE: the search index holds only a 3.x image.xsd; this list follows pyone
# 7.3's IMAGE binding (generated from the XSDs) and the 6.10 documents' Image::to_xml, leaving
# out what 6.10 marks optional (LOCK, BACKUP_DISK_IDS) and what came after it (MODTIME).
IMAGE_610 = (
    *_OWNED,
    *PERMISSIONS,
    "TYPE",
    "DISK_TYPE",
    "PERSISTENT",
    "REGTIME",
    "SOURCE",
    "PATH",
    "FORMAT",
    "FS",
    "SIZE",
    "STATE",
    "PREV_STATE",
    "RUNNING_VMS",
    "CLONING_OPS",
    "CLONING_ID",
    "TARGET_SNAPSHOT",
    "DATASTORE_ID",
    "DATASTORE",
    "VMS",
    "CLONES",
    "APP_CLONES",
    "TEMPLATE",
    "SNAPSHOTS/ALLOW_ORPHANS",
    "SNAPSHOTS/CURRENT_BASE",
    "SNAPSHOTS/NEXT_SNAPSHOT",
    "BACKUP_INCREMENTS",
)
# image_pool.xsd (6.10): each IMAGE as in image.xsd.
IMAGE_POOL_610 = IMAGE_610
# reference §5.2 (2.0 one.image.info) and what issue 13 adds (PATH, SIZE).
IMAGE_20 = (
    "ID",
    "UID",
    "NAME",
    "TYPE",
    "PUBLIC",
    "PERSISTENT",
    "REGTIME",
    "SOURCE",
    "PATH",
    "SIZE",
    "STATE",
    "RUNNING_VMS",
    "TEMPLATE",
)
# 2.0's IMAGE_POOL: each IMAGE with its owner's name (USERNAME), read by `oneimage list`.
IMAGE_POOL_20 = (*IMAGE_20[:2], "USERNAME", *IMAGE_20[2:])


def missing(root: ElementTree.Element, paths: tuple[str, ...]) -> list[str]:
    """The paths absent under ``root``, in the order given."""
    return [path for path in paths if not _present(root, path.split("/"))]


def _present(node: ElementTree.Element, steps: list[str]) -> bool:
    if not steps:
        return True
    name, repeated = steps[0].rstrip("*"), steps[0].endswith("*")
    found = node.findall(name)
    if not found:
        return repeated
    return all(_present(child, steps[1:]) for child in found)


def missing_in_text(xml: str, paths: tuple[str, ...]) -> list[str]:
    return missing(ElementTree.fromstring(xml), paths)
