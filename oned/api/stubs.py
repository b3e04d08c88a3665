"""Groups, clusters, datastores and VM templates as a fresh OpenNebula has them (issue 12).

onecloud has none of these objects yet. Modern clients (pyone scripts, OpenNebula's CLIs,
configuration-management modules) read them first, so each answers what a fresh OpenNebula 6
answers, in the shape of its 6.10 XSDs: the groups ``oneadmin`` (0, oneadmin alone) and
``users`` (1, everyone else), the cluster ``default`` (0, every host and network), the
datastores ``system`` (0), ``default`` (1) and ``files`` (2), and an empty VM template pool.
Any authenticated user may read them: they hold nothing private.
"""

from __future__ import annotations

import os

from oned.api.cloud import Caller, Cloud
from oned.errors import NoSuchObject
from oned.views import DEFAULT_USER_QUOTAS, escape, group_of

_NO_QUOTAS = "<DATASTORE_QUOTA/><NETWORK_QUOTA/><VM_QUOTA/><IMAGE_QUOTA/>"
DEFAULT_GROUP_QUOTAS = DEFAULT_USER_QUOTAS.replace("DEFAULT_USER", "DEFAULT_GROUP")
GROUPS = ((0, "oneadmin"), (1, "users"))
CLUSTERS = ((0, "default"),)
# (id, name, TYPE number, TYPE word): reference §5.3; DS_MAD "-" for the system datastore
DATASTORES = (
    (0, "system", 1, "SYSTEM_DS"),
    (1, "default", 0, "IMAGE_DS"),
    (2, "files", 2, "FILE_DS"),
)


def _ids(ids: object) -> str:
    return "".join(f"<ID>{i}</ID>" for i in ids)  # type: ignore[attr-defined]


def _group(cloud: Cloud, gid: int, name: str) -> str:
    users = [uid for uid in sorted(u.id for u in cloud.pools.users) if group_of(uid)[0] == gid]
    return (
        f"<GROUP><ID>{gid}</ID><NAME>{name}</NAME><TEMPLATE/><USERS>{_ids(users)}</USERS><ADMINS/>"
    )


def group_pool_info(cloud: Cloud, caller: Caller) -> str:
    """``<GROUP_POOL>``: both groups, then DEFAULT_GROUP_QUOTAS (group_pool.xsd)."""
    groups = "".join(_group(cloud, gid, name) + "</GROUP>" for gid, name in GROUPS)
    return f"<GROUP_POOL>{groups}{DEFAULT_GROUP_QUOTAS}</GROUP_POOL>"


def group_info(cloud: Cloud, caller: Caller, gid: int, decrypt: bool = False) -> str:
    """``<GROUP>`` (group.xsd): the group, its (empty) quotas and the default ones."""
    name = dict(GROUPS).get(gid if gid != -1 else group_of(caller.uid)[0])
    if name is None:
        raise NoSuchObject(f"[one.group.info] Error getting group [{gid}].")
    gid = group_of(caller.uid)[0] if gid == -1 else gid
    return f"{_group(cloud, gid, name)}{_NO_QUOTAS}{DEFAULT_GROUP_QUOTAS}</GROUP>"


def _cluster(cloud: Cloud) -> str:
    hosts = sorted(h.id for h in cloud.pools.hosts)
    vnets = sorted(n.id for n in cloud.pools.vnets)
    datastores = [ds[0] for ds in DATASTORES]
    return (
        f"<CLUSTER><ID>0</ID><NAME>default</NAME><HOSTS>{_ids(hosts)}</HOSTS>"
        f"<DATASTORES>{_ids(datastores)}</DATASTORES><VNETS>{_ids(vnets)}</VNETS>"
        "<TEMPLATE><RESERVED_CPU/><RESERVED_MEM/></TEMPLATE></CLUSTER>"
    )


def cluster_pool_info(cloud: Cloud, caller: Caller) -> str:
    return f"<CLUSTER_POOL>{_cluster(cloud)}</CLUSTER_POOL>"


def cluster_info(cloud: Cloud, caller: Caller, clid: int, decrypt: bool = False) -> str:
    if clid != 0:
        raise NoSuchObject(f"[one.cluster.info] Error getting cluster [{clid}].")
    return _cluster(cloud)


_DS_PERMISSIONS = (
    "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
    "<GROUP_U>1</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A>"
    "<OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>"
)


def _datastore(cloud: Cloud, dsid: int, name: str, kind: int, word: str) -> str:
    ds_mad = "-" if kind == 1 else "fs"
    base = escape(os.path.join(cloud.config.vm_dir or cloud.var_dir, "datastores", str(dsid)))
    owner = escape(cloud.pools.uname(0))
    return (
        f"<DATASTORE><ID>{dsid}</ID><UID>0</UID><GID>0</GID><UNAME>{owner}</UNAME>"
        f"<GNAME>oneadmin</GNAME><NAME>{name}</NAME>{_DS_PERMISSIONS}"
        f"<DS_MAD>{ds_mad}</DS_MAD><TM_MAD>ssh</TM_MAD><BASE_PATH>{base}</BASE_PATH>"
        f"<TYPE>{kind}</TYPE><DISK_TYPE>0</DISK_TYPE><STATE>0</STATE>"
        "<CLUSTERS><ID>0</ID></CLUSTERS><TOTAL_MB>0</TOTAL_MB><FREE_MB>0</FREE_MB>"
        f"<USED_MB>0</USED_MB><IMAGES/><TEMPLATE><DS_MAD>{ds_mad}</DS_MAD>"
        f"<TM_MAD>ssh</TM_MAD><TYPE>{word}</TYPE></TEMPLATE></DATASTORE>"
    )


def datastore_pool_info(cloud: Cloud, caller: Caller) -> str:
    datastores = "".join(_datastore(cloud, *ds) for ds in DATASTORES)
    return f"<DATASTORE_POOL>{datastores}</DATASTORE_POOL>"


def datastore_info(cloud: Cloud, caller: Caller, dsid: int, decrypt: bool = False) -> str:
    for ds in DATASTORES:
        if ds[0] == dsid:
            return _datastore(cloud, *ds)
    raise NoSuchObject(f"[one.datastore.info] Error getting datastore [{dsid}].")


def template_pool_info(
    cloud: Cloud, caller: Caller, flt: int = -2, start: int = -1, end: int = -1
) -> str:
    """NOTE: a fresh OpenNebula has no VM templates; onecloud has none yet."""
    return "<VMTEMPLATE_POOL/>"


def template_info(
    cloud: Cloud, caller: Caller, tid: int, extended: bool = False, decrypt: bool = False
) -> str:
    raise NoSuchObject(f"[one.template.info] Error getting template [{tid}].")
