"""one.vn.* and one.vnpool.info (reference §4, §8), and the leases of the NICs of VMs.

Networks are oneadmin's public unless their template says PUBLIC = NO; a user's are private
until published. A private network is seen and used (by a NIC) only by its owner and oneadmin;
a public one by everyone. NIC leases are chosen by ``lease_nics`` before a VM is stored, taken in
the VM's own transaction (``Store.insert_vm``), recorded by ``hold_leases`` and given back by
``release_leases`` (or by ``Store.update_vm(released=...)`` plus ``Pools.free_leases``).
Modern ``one.vn.hold``/``one.vn.release`` keep a lease from VMs (a row with vid -1) and give
it back (econe's elastic addresses are such holds).
"""

from __future__ import annotations

import dataclasses

from oned import vnet as vn
from oned.api import listing, templates
from oned.api.cloud import Caller, Cloud, require_owner
from oned.api.replies import document, pool
from oned.errors import (
    ActionNotAllowed,
    AllocateError,
    AuthorizationError,
    BadCall,
    NoSuchObject,
)
from oned.pools import Pools
from oned.records import Lease, Vm, Vnet
from oned.rpc.marshal import Escaped
from oned.store import DuplicateName, StoreError
from oned.template import Template


def allocate(cloud: Cloud, caller: Caller, text: str, cluster_id: int = -1) -> int:
    """A new network owned by the caller; ``cluster_id`` (modern signature) is ignored.

    NOTE: as in modern OpenNebula, BRIDGE, PHYDEV, VLAN_ID and VN_MAD are oneadmin's by default
    (VNET_RESTRICTED_ATTR); BRIDGE being required, a user creates networks only if oned.conf
    lets them."""
    method = "one.vn.allocate"
    net = _build(cloud, caller, text, method)
    taken = AllocateError(f"[{method}] NAME is already taken by NET {net.name!r}.")
    if net.name in cloud.pools.vnet_names:
        raise taken
    try:
        cloud.store.insert_network(net)  # type: ignore[attr-defined]
    except DuplicateName:
        raise taken from None
    cloud.pools.take_id("network")
    cloud.pools.put_vnet(net)
    cloud.log.info(f"Virtual network {net.name} ({net.id}) created by {caller.name}")
    return net.id


def info(cloud: Cloud, caller: Caller, nid: int, decrypt: bool = False) -> Escaped:
    net = _visible(cloud, caller, nid, "one.vn.info", "INFO")
    return document(cloud.pools.vnets.xml(net))


def delete(cloud: Cloud, caller: Caller, nid: int) -> int:
    """Refused while any VM holds one of its leases; the message names those VMs."""
    method = "one.vn.delete"
    net = _get(cloud, nid, method)
    require_owner(caller, net.uid, method, "DELETE", f"NET [{nid}]")
    holders = sorted({lease.vid for lease in net.leases.values() if lease.vid >= 0})
    if holders:
        raise ActionNotAllowed(
            f'[{method}] Cannot delete virtual network "{net.name}" [{nid}]: its leases are in '
            f"use by VM{'s' if len(holders) > 1 else ''} {', '.join(map(str, holders))}"
        )
    held = [vn.ip_text(ip) for ip, lease in sorted(net.leases.items()) if vn.is_held(lease)]
    if held:
        raise ActionNotAllowed(
            f'[{method}] Cannot delete virtual network "{net.name}" [{nid}]: leases on hold '
            f"({', '.join(held[:10])}{' ...' if len(held) > 10 else ''}); one.vn.release them"
        )
    cloud.store.delete_network(nid)  # type: ignore[attr-defined]
    cloud.pools.remove_vnet(nid)
    cloud.log.info(f"Virtual network {net.name} ({nid}) deleted by {caller.name}")
    return nid


def publish(cloud: Cloud, caller: Caller, nid: int, public: bool) -> int:
    """2.0's ``one.vn.publish``: a public network may be used by every user."""
    method = "one.vn.publish"
    net = _get(cloud, nid, method)
    require_owner(caller, net.uid, method, "MANAGE", f"NET [{nid}]")
    if net.public != public:
        cloud.store.update_network(dataclasses.replace(net, public=public))  # type: ignore[attr-defined]
        net.public = public
        cloud.pools.vnets.changed(nid)
        cloud.log.info(f"Virtual network {net.name} ({nid}) {'' if public else 'un'}published")
    return nid


def hold(cloud: Cloud, caller: Caller, nid: int, text: str) -> int:
    """Modern ``one.vn.hold``: ``LEASES = [ IP = a.b.c.d ]`` of the network is kept from VMs
    (used, VID -1) until ``one.vn.release``; its owner's or oneadmin's. A lease in use (by a VM
    or already on hold) is refused naming who holds it."""
    method = "one.vn.hold"
    net, ip = _lease_call(cloud, caller, nid, text, method)
    lease = net.leases.get(ip)
    if lease is not None and lease.used:
        raise ActionNotAllowed(
            f'[{method}] IP {vn.ip_text(ip)} of virtual network "{net.name}" [{nid}] is used by '
            f"{vn.holder(lease)}"
        )
    mac = lease.mac if lease is not None else vn.lease_mac(cloud.pools.mac_prefix, ip)
    held = vn.HeldLease(nid, ip, mac)
    try:
        cloud.store.take_leases([held])  # type: ignore[attr-defined]
    except StoreError:  # a VM took it in the same instant: its row is there
        raise ActionNotAllowed(
            f'[{method}] IP {vn.ip_text(ip)} of virtual network "{net.name}" [{nid}] is in use'
        ) from None
    cloud.pools.hold_leases([held])
    cloud.log.info(f"Lease {vn.ip_text(ip)} of virtual network {nid} put on hold by {caller.name}")
    return nid


def release(cloud: Cloud, caller: Caller, nid: int, text: str) -> int:
    """Modern ``one.vn.release``: a lease on hold becomes free; the owner's or oneadmin's.
    A lease a VM uses, or a free one, is refused (0x800): only a hold is released here."""
    method = "one.vn.release"
    net, ip = _lease_call(cloud, caller, nid, text, method)
    lease = net.leases.get(ip)
    if lease is None or not vn.is_held(lease):
        state = f"used by {vn.holder(lease)}" if lease is not None and lease.used else "free"
        raise ActionNotAllowed(
            f'[{method}] IP {vn.ip_text(ip)} of virtual network "{net.name}" [{nid}] is not on '
            f"hold: it is {state}"
        )
    cloud.store.release_leases([lease])  # type: ignore[attr-defined]
    cloud.pools.free_leases([lease])
    cloud.log.info(f"Lease {vn.ip_text(ip)} of virtual network {nid} released by {caller.name}")
    return nid


def pool_info(cloud: Cloud, caller: Caller, flt: int, start: int = -1, end: int = -1) -> Escaped:
    """Filter flag (-4 and -2 every network the caller may see, -3 the caller's, -1 the
    caller's and the public ones, >= 0 that user's ones the caller may see) and an id range or
    a page (start offset, -page size); each network without its leases."""
    wanted = listing.pool_filter(caller, flt, "one.vnpool.info", vn.may_use)
    nets = [net for net in cloud.pools.vnets if wanted(net)]
    xml = cloud.pools.vnets.xml_short
    return pool("VNET_POOL", (xml(net) for net in listing.page(nets, start, end)))


# --- NICs -------------------------------------------------------------------------------------


def lease_nics(cloud: Cloud, uid: int, tmpl: Template, vid: int, method: str) -> list[Lease]:
    """Choose a lease for every NIC of ``tmpl`` that names a network (NETWORK or NETWORK_ID)
    and fill in the NIC's NETWORK, NETWORK_ID, IP, MAC and BRIDGE in ``tmpl``.

    Returns the leases (for VM ``vid``) to take in the VM's insert and then ``hold_leases``;
    nothing is held before. Raises NoSuchObject for a missing network, AuthorizationError for
    someone else's private one, BadCall for an IP or MAC that is not one, AllocateError for an
    address taken or outside the network, or a full network.
    """
    nics = tmpl.get_all("NIC")
    if not any(vn.names_network(nic) for nic in nics):
        return []
    prefix = vn.parse_mac_prefix(cloud.config.mac_prefix)
    chosen: dict[int, set[int]] = {}
    leases: list[Lease] = []
    filled = []
    for at, nic in enumerate(nics):
        if not isinstance(nic, dict) or not vn.names_network(nic):
            filled.append(nic)
            continue
        where = f"[{method}] Could not get a network lease for NIC {at}"
        net = _nic_network(cloud.pools, uid, nic, where)
        skip = chosen.setdefault(net.id, set())
        lease = _nic_lease(cloud.pools, net, nic, prefix, skip, where)
        lease.vid = vid
        skip.add(lease.ip)
        leases.append(lease)
        filled.append(vn.nic_attributes(nic, net, lease))
    tmpl.merge(Template([("NIC", nic) for nic in filled]))
    return leases


def hold_leases(cloud: Cloud, leases: list[Lease]) -> None:
    """Record in memory the leases a committed VM insert took."""
    cloud.pools.hold_leases(leases)


def leases_of(pools: Pools, vm: Vm) -> list[Lease]:
    """The leases ``vm`` holds, found from its NICs (NETWORK_ID and IP)."""
    held = []
    for nic in vm.template.get_all("NIC"):
        if not isinstance(nic, dict) or "NETWORK_ID" not in nic or "IP" not in nic:
            continue
        try:
            nid, ip = int(nic["NETWORK_ID"]), vn.parse_ip(nic["IP"])
        except ValueError:
            continue
        net = pools.vnets.get(nid)
        lease = net.leases.get(ip) if net is not None else None
        if lease is not None and lease.vid == vm.id:
            held.append(lease)
    return held


def release_leases(cloud: Cloud, vm: Vm) -> list[Lease]:
    """Give back every lease ``vm`` holds, in a transaction of its own; returns them.

    For the lifecycle (a VM reaching DONE or FAILED) and VM deletion. To give them back in the
    same transaction as the VM's new state, pass ``leases_of(pools, vm)`` as
    ``Store.update_vm(released=...)`` and then call ``Pools.free_leases`` with them.
    """
    held = leases_of(cloud.pools, vm)
    if held:
        cloud.store.release_leases(held)  # type: ignore[attr-defined]
        cloud.pools.free_leases(held)
        cloud.log.debug(f"VM {vm.id} gave back {len(held)} network leases")
    return held


# --- helpers ----------------------------------------------------------------------------------


def _build(cloud: Cloud, caller: Caller, text: str, method: str) -> Vnet:
    """The network of a template text, with the next id; BadCall naming what is wrong, 0x200
    naming a VNET_RESTRICTED_ATTR a user (not oneadmin) set."""
    tmpl = templates.parse(text, method, "virtual network")
    attributes = cloud.config.vnet_restricted_attr
    templates.refuse_restricted(caller, tmpl, attributes, method, "Virtual network")
    try:
        return vn.build(
            tmpl,
            oid=cloud.pools.next_ids["network"],
            uid=caller.uid,
            mac_prefix=vn.parse_mac_prefix(cloud.config.mac_prefix),
            default_size=cloud.config.network_size,
        )
    except vn.VnetError as exc:
        raise BadCall(f"[{method}] Error in virtual network template: {exc}") from None


def _get(cloud: Cloud, nid: int, method: str) -> Vnet:
    net = cloud.pools.vnets.get(nid)
    if net is None:
        raise NoSuchObject(f"[{method}] Error getting virtual network [{nid}].")
    return net


def _visible(cloud: Cloud, caller: Caller, nid: int, method: str, action: str) -> Vnet:
    net = _get(cloud, nid, method)
    if not vn.may_use(net, caller.uid):
        raise AuthorizationError(
            f"[{method}] User [{caller.uid}] not authorized to perform {action} on NET [{nid}]."
        )
    return net


def _lease_call(cloud: Cloud, caller: Caller, nid: int, text: str, method: str) -> tuple[Vnet, int]:
    """The network (MANAGE: owner or oneadmin) and the IP of ``LEASES = [ IP = ... ]``, which
    must be one of its addresses; BadCall naming what is wrong."""
    net = _get(cloud, nid, method)
    require_owner(caller, net.uid, method, "MANAGE", f"NET [{nid}]")
    vectors = templates.parse(text, method, "lease").get_all("LEASES")
    if len(vectors) != 1 or not isinstance(vectors[0], dict) or "IP" not in vectors[0]:
        raise BadCall(f'[{method}] Expected one LEASES = [ IP = "a.b.c.d" ] in the template')
    try:
        ip = vn.parse_ip(vectors[0]["IP"])
    except ValueError as exc:
        raise BadCall(f"[{method}] LEASES IP = {exc}") from None
    if cloud.pools.books[nid].slot(ip) is None:
        raise BadCall(
            f'[{method}] IP {vn.ip_text(ip)} is not in virtual network "{net.name}" [{nid}] '
            f"({vn.describe_addresses(net)})"
        )
    return net, ip


def _nic_network(pools: Pools, uid: int, nic: dict[str, str], where: str) -> Vnet:
    if "NETWORK_ID" in nic:
        try:
            net = pools.vnets.get(int(nic["NETWORK_ID"]))
        except ValueError:
            raise BadCall(f'{where}: NETWORK_ID = "{nic["NETWORK_ID"]}" is not a number') from None
        missing = f"virtual network [{nic['NETWORK_ID']}]"
    else:
        net = pools.vnet_names.get(nic["NETWORK"])
        missing = f'virtual network "{nic["NETWORK"]}"'
    if net is None:
        raise NoSuchObject(f"{where}: there is no {missing}")
    if nic.get("NETWORK", net.name) != net.name:
        raise BadCall(f'{where}: NETWORK "{nic["NETWORK"]}" is not NETWORK_ID {net.id}')
    if not vn.may_use(net, uid):
        raise AuthorizationError(
            f'{where}: User [{uid}] not authorized to use virtual network "{net.name}" '
            f"[{net.id}] of user [{net.uid}]"
        )
    return net


def _nic_lease(
    pools: Pools, net: Vnet, nic: dict[str, str], prefix: int, skip: set[int], where: str
) -> Lease:
    try:
        return vn.choose_lease(net, pools.books[net.id], nic, prefix, skip)
    except ValueError as exc:
        raise BadCall(f"{where}: {exc}") from None
    except vn.LeaseRefused as exc:
        raise AllocateError(f"{where}: {exc}") from None
