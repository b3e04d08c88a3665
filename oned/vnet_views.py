"""The ``<VNET>`` document of a virtual network, as OpenNebula's clients read it (§5).

Pure: from a Vnet record, its owner's name and oned.conf's MAC_PREFIX, to XML text. 1.4/2.0's
TYPE, BRIDGE, PUBLIC, TOTAL_LEASES and LEASES come with modern's USED_LEASES and AR_POOL, and
every element OpenNebula 6.10's vnet.xsd requires (a modern client reads the address ranges).
"""

from __future__ import annotations

from oned import vnet as vn
from oned.records import Lease, Vnet
from oned.template import Template
from oned.views import fields, group_of, permissions


def vnet_xml(net: Vnet, uname: str, mac_prefix: int) -> str:
    """One network in full (one.vn.info): OpenNebula 1.4/2.0's TYPE, BRIDGE, PUBLIC,
    TOTAL_LEASES and LEASES/LEASE (IP, MAC, USED, VID: the leases in use of a RANGED network,
    every lease of a FIXED one), then modern's USED_LEASES and AR_POOL (leases in use only).
    ``mac_prefix`` (oned.conf's MAC_PREFIX) gives the MAC of a RANGED address range."""
    leases = sorted(net.leases.values(), key=_by_ip)
    old = "".join(
        f"<LEASE><IP>{vn.ip_text(lease.ip)}</IP><MAC>{vn.mac_text(lease.mac)}</MAC>"
        f"<USED>{int(lease.used)}</USED><VID>{lease.vid}</VID></LEASE>"
        for lease in leases
    )
    ars = _address_ranges(net, mac_prefix, leases, listed=True)
    return _vnet(net, uname, f"<LEASES>{old}</LEASES><AR_POOL>{ars}</AR_POOL>")


def vnet_short_xml(net: Vnet, uname: str, mac_prefix: int) -> str:
    """A network in one.vnpool.info: everything but the leases (as in 1.4 and pyone's pool)."""
    leases = sorted(net.leases.values(), key=_by_ip)
    ars = _address_ranges(net, mac_prefix, leases, listed=False)
    return _vnet(net, uname, f"<AR_POOL>{ars}</AR_POOL>")


def _by_ip(lease: Lease) -> int:
    return lease.ip


def _vnet(net: Vnet, uname: str, tail: str) -> str:
    gid, gname = group_of(net.uid)
    used = sum(1 for lease in net.leases.values() if lease.used)
    head = fields(
        (("ID", net.id), ("UID", net.uid), ("GID", gid), ("UNAME", uname), ("GNAME", gname))
    )
    body = fields(
        (
            ("USERNAME", uname),
            ("NAME", net.name),
            ("TYPE", net.type),
            ("BRIDGE", net.bridge),
            ("PUBLIC", int(net.public)),
            ("BRIDGE_TYPE", "linux"),
            ("STATE", 1),  # modern READY
            ("PREV_STATE", 1),
            ("PARENT_NETWORK_ID", ""),
            *_vnet_driver(net.template),
            ("OUTER_VLAN_ID", ""),
            ("VLAN_ID_AUTOMATIC", 0),
            ("OUTER_VLAN_ID_AUTOMATIC", 0),
            ("USED_LEASES", used),
            ("TOTAL_LEASES", used),  # NOTE: 1.4's name for the count of leases in use
        )
    )
    vms = "".join(
        f"<ID>{vid}</ID>"
        for vid in sorted(
            {lease.vid for lease in net.leases.values() if lease.used and lease.vid >= 0}
        )
    )
    return (
        f"<VNET>{head}{permissions(net.public)}<CLUSTERS><ID>0</ID></CLUSTERS>{body}"
        f"<VROUTERS/><UPDATED_VMS>{vms}</UPDATED_VMS>{_NOT_UPDATING}"
        f"{net.template.to_xml()}{tail}</VNET>"
    )


# NOTE: OpenNebula >= 5.12 updates the NICs of running VMs after a network change and lists
# them by progress; onecloud changes no running NIC, so every user is up to date.
_NOT_UPDATING = "<OUTDATED_VMS/><UPDATING_VMS/><ERROR_VMS/>"


def _vnet_driver(tmpl: Template) -> tuple[tuple[str, object], ...]:
    """VN_MAD, PHYDEV and VLAN_ID as the template sets them (oneadmin only), else ``dummy``.

    NOTE: a 1.4/2.0 network is a bridge that exists on every host, which oned never touches:
    OpenNebula >= 5's ``dummy`` driver (its ``bridge`` creates the bridge, ``fw`` adds
    firewall rules, neither of which onecloud does).
    """
    values = {name: value for name, value in tmpl if isinstance(value, str)}
    return (
        ("VN_MAD", values.get("VN_MAD") or "dummy"),
        ("PHYDEV", values.get("PHYDEV", "")),
        ("VLAN_ID", values.get("VLAN_ID", "")),
    )


def _address_ranges(net: Vnet, mac_prefix: int, leases: list[Lease], listed: bool) -> str:
    """Modern AR_POOL: one AR for a RANGED network, one AR of SIZE 1 per FIXED lease; each
    with the leases in use when ``listed``. ``leases`` are the network's, in IP order.

    NOTE: OpenNebula 4.x turned each FIXED lease into such an AR when it replaced the types.
    """
    if net.type == vn.FIXED:
        return "".join(
            _ar(at, lease.ip, lease.mac, 1, [lease] if lease.used else [], listed)
            for at, lease in enumerate(leases)
        )
    span = vn.address_range(net.template)
    mac = vn.lease_mac(mac_prefix, span[0])
    return _ar(0, span[0], mac, len(span), leases, listed)


def _ar(ar_id: int, ip: int, mac: int, size: int, used: list[Lease], listed: bool) -> str:
    body = fields(
        (
            ("AR_ID", str(ar_id)),
            ("TYPE", "IP4"),
            ("IP", vn.ip_text(ip)),
            ("MAC", vn.mac_text(mac)),
            ("SIZE", size),
            ("IP_END", vn.ip_text(ip + size - 1)),
            ("MAC_END", vn.mac_text(mac + size - 1)),
            ("USED_LEASES", len(used)),
        )
    )
    if not listed:
        return f"<AR>{body}</AR>"
    leases = "".join(
        f"<LEASE><IP>{vn.ip_text(lease.ip)}</IP><MAC>{vn.mac_text(lease.mac)}</MAC>"
        f"<VM>{lease.vid}</VM></LEASE>"
        for lease in used
    )
    return f"<AR>{body}<LEASES>{leases}</LEASES></AR>"
