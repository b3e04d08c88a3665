"""Virtual networks, pure: templates to networks, the IP/MAC scheme and the lease book.

A RANGED network leases the NETWORK_SIZE addresses that follow the base of NETWORK_ADDRESS; a
FIXED one the LEASES its template lists (reference §8). A lease's MAC is MAC_PREFIX followed by
the four bytes of its IP (10.0.1.2 with prefix 02:01 is 02:01:0a:00:01:02), unless a FIXED
lease gives its own. ``LeaseBook`` finds, takes and gives back an address in microseconds
whatever the size of the network and the number of leases in use; the pools keep one per
network. No I/O here: the api package commits what these functions decide.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Sequence

from oned.records import Lease, Vnet
from oned.template import Template

RANGED, FIXED = 0, 1
CLASS_SIZES = {"C": 254, "B": 65534}
MAX_SIZE = 2**24 - 2  # the largest NETWORK_SIZE oned.conf accepts
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


class VnetError(ValueError):
    """A network template that cannot be used; each of ``problems`` names its attribute."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class LeaseRefused(Exception):
    """A NIC cannot get the lease it asks for: taken, outside the network, or none is free."""


class HeldLease(Lease):
    """A lease put on hold by the network's owner (``one.vn.hold``): used, by no VM.

    NOTE: modern OpenNebula shows a held lease as USED with VID -1 (its "VM -1" owner); the
    store keeps it as a row with vid -1 (oned.store.rows.lease_from).
    """

    __slots__ = ()

    @property
    def used(self) -> bool:
        return True


def is_held(lease: Lease | None) -> bool:
    return lease is not None and lease.used and lease.vid < 0


def holder(lease: Lease) -> str:
    """Who uses a lease, for messages: ``VM 7`` or ``a hold (one.vn.hold)``."""
    return "a hold (one.vn.hold)" if is_held(lease) else f"VM {lease.vid}"


# --- addresses ---------------------------------------------------------------------------------


def parse_ip(text: str) -> int:
    """The 32-bit integer of a dotted-quad IPv4 address; ValueError for anything else."""
    try:
        return int(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ValueError(f'"{text}" is not an IPv4 address') from None


def ip_text(ip: int) -> str:
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


def parse_mac(text: str) -> int:
    """The 48-bit integer of ``xx:xx:xx:xx:xx:xx`` (either case); ValueError otherwise."""
    if not _MAC.fullmatch(text.strip()):
        raise ValueError(f'"{text}" is not a MAC address (xx:xx:xx:xx:xx:xx)')
    return int(text.strip().replace(":", ""), 16)


def mac_text(mac: int) -> str:
    """Lower-case hex pairs, as OpenNebula prints MACs (the seed's slide shows upper case)."""
    digits = f"{mac:012x}"
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def parse_mac_prefix(text: str) -> int:
    """oned.conf's MAC_PREFIX ``"02:01"`` as the 16-bit 0x0201 (the config checked its form)."""
    return int(text.replace(":", ""), 16)


def lease_mac(prefix: int, ip: int) -> int:
    """MAC_PREFIX followed by the four bytes of the IP."""
    return (prefix << 32) | ip


def network_size(text: str | None) -> int | None:
    """NETWORK_SIZE as a number of hosts: C (254), B (65534) or 1..MAX_SIZE; None if neither."""
    if text is None:
        return None
    word = text.strip().upper()
    if word in CLASS_SIZES:
        return CLASS_SIZES[word]
    if word.isdigit() and 1 <= int(word) <= MAX_SIZE:
        return int(word)
    return None


def address_range(tmpl: Template) -> range:
    """The addresses of a checked RANGED template: base+1 .. base+NETWORK_SIZE.

    NOTE: as in OpenNebula 1.4, the mask is the smallest one holding NETWORK_SIZE + 2
    addresses and the base is NETWORK_ADDRESS under that mask.
    """
    size = network_size(tmpl.get_str("NETWORK_SIZE")) or 0
    bits = (size + 1).bit_length()  # ceil(log2(size + 2))
    base = parse_ip(tmpl.get_str("NETWORK_ADDRESS") or "") & (0xFFFFFFFF << bits) & 0xFFFFFFFF
    return range(base + 1, base + size + 1)


def addresses(vnet: Vnet) -> Sequence[int]:
    """Every address of the network in lease order (a range, or the sorted FIXED IPs)."""
    if vnet.type == FIXED:
        return sorted(vnet.leases)
    return address_range(vnet.template)


def describe_addresses(vnet: Vnet) -> str:
    """Where NIC addresses must be, for messages: ``a.b.c.d - e.f.g.h`` or its LEASES."""
    if vnet.type == FIXED:
        return "not one of its LEASES"
    span = address_range(vnet.template)
    return f"{ip_text(span[0])} - {ip_text(span[-1])}"


# --- templates ---------------------------------------------------------------------------------


def build(tmpl: Template, *, oid: int, uid: int, mac_prefix: int, default_size: int) -> Vnet:
    """The network ``tmpl`` describes, owned by ``uid``; ``tmpl`` itself is not changed.

    Raises VnetError listing every problem, each naming its attribute. PUBLIC (YES/NO) leaves
    the template; without it oneadmin's networks are public and everyone else's private. A
    RANGED template without NETWORK_SIZE (or with 0) gets ``default_size`` written in, as
    OpenNebula 2.0 does; each FIXED lease without a MAC gets its MAC written in, so that the
    template alone defines the network's leases (``fixed_leases``).
    """
    tmpl = tmpl.copy()
    problems: list[str] = []
    name = _required(tmpl, "NAME", "name the network", problems)
    bridge = _required(tmpl, "BRIDGE", "name the bridge of the hosts (BRIDGE = br0)", problems)
    kind = _type(tmpl, problems)
    public = _public(tmpl, uid, problems)
    leases: dict[int, Lease] = {}
    if kind == RANGED:
        _check_range(tmpl, default_size, problems)
    elif kind == FIXED:
        leases = _fixed_leases(tmpl.get_all("LEASES"), oid, mac_prefix, problems)
    if problems or kind is None:
        raise VnetError(problems)
    if kind == FIXED:
        _write_macs(tmpl, leases)
    return Vnet(oid, uid, name, kind, bridge, public, tmpl, leases)


def fixed_leases(net: Vnet) -> dict[int, Lease]:
    """Every lease of a FIXED network built by ``build``, free, as its template lists them."""
    return _fixed_leases(net.template.get_all("LEASES"), net.id, 0, [])


def _write_macs(tmpl: Template, leases: dict[int, Lease]) -> None:
    vectors = [value for value in tmpl.get_all("LEASES") if isinstance(value, dict)]
    written = [{**v, "MAC": mac_text(leases[parse_ip(v["IP"])].mac)} for v in vectors]
    tmpl.merge(Template(("LEASES", value) for value in written))


def _required(tmpl: Template, attr: str, hint: str, problems: list[str]) -> str:
    value = tmpl.get(attr)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{attr} is missing: {hint}")
        return ""
    if "\n" in value or len(value) > 128:
        problems.append(f'{attr} = "{value[:40]}": must be 1-128 characters on one line')
    return value


def _type(tmpl: Template, problems: list[str]) -> int | None:
    """NOTE: OpenNebula 2.0 upper-cases TYPE and refuses anything else (1.4 made it FIXED)."""
    value = tmpl.get("TYPE")
    word = value.strip().upper() if isinstance(value, str) else "[...]"
    if word in ("RANGED", "FIXED"):
        return RANGED if word == "RANGED" else FIXED
    problems.append(
        f'TYPE = "{value if isinstance(value, str) else word}": must be RANGED or FIXED'
    )
    return None


def _public(tmpl: Template, uid: int, problems: list[str]) -> bool:
    values = tmpl.remove("PUBLIC")
    if not values:
        return uid == 0
    word = values[-1].strip().upper() if isinstance(values[-1], str) else ""
    if word not in ("YES", "NO"):
        problems.append(f'PUBLIC = "{values[-1]}": must be YES or NO')
    return word == "YES"


def _check_range(tmpl: Template, default_size: int, problems: list[str]) -> None:
    address = tmpl.get("NETWORK_ADDRESS")
    if not isinstance(address, str) or not address.strip():
        problems.append("NETWORK_ADDRESS is missing: a RANGED network needs one (a.b.c.d)")
    else:
        try:
            parse_ip(address)
        except ValueError as exc:
            problems.append(f"NETWORK_ADDRESS = {exc}")
    size = tmpl.get("NETWORK_SIZE")
    if size is None or (isinstance(size, str) and size.strip() in ("", "0")):
        tmpl.set("NETWORK_SIZE", str(default_size))
    elif not isinstance(size, str) or network_size(size) is None:
        shown = size if isinstance(size, str) else "[...]"
        problems.append(f'NETWORK_SIZE = "{shown}": must be C, B or a number from 1 to {MAX_SIZE}')


def _fixed_leases(
    values: Sequence[object], oid: int, mac_prefix: int, problems: list[str]
) -> dict[int, Lease]:
    if not values:
        problems.append("LEASES is missing: a FIXED network needs LEASES = [ IP = a.b.c.d ]")
    leases: dict[int, Lease] = {}
    macs: set[int] = set()
    for value in values:
        lease = _fixed_lease(value, oid, mac_prefix, problems)
        if lease is None:
            continue
        if lease.ip in leases:
            problems.append(f'LEASES IP = "{ip_text(lease.ip)}" is listed twice')
        elif lease.mac in macs:
            problems.append(f'LEASES MAC = "{mac_text(lease.mac)}" is listed twice')
        else:
            leases[lease.ip] = lease
            macs.add(lease.mac)
    return leases


def _fixed_lease(value: object, oid: int, mac_prefix: int, problems: list[str]) -> Lease | None:
    if not isinstance(value, dict) or "IP" not in value:
        problems.append('LEASES must be vectors with an IP: LEASES = [ IP = "a.b.c.d" ]')
        return None
    try:
        ip = parse_ip(value["IP"])
    except ValueError as exc:
        problems.append(f"LEASES IP = {exc}")
        return None
    try:
        mac = parse_mac(value["MAC"]) if "MAC" in value else lease_mac(mac_prefix, ip)
    except ValueError as exc:
        problems.append(f"LEASES MAC = {exc}")
        return None
    return Lease(oid, ip, mac)


# --- leases ------------------------------------------------------------------------------------


class LeaseBook:
    """Which addresses of one network are free, with a round-robin cursor (reference §8.2).

    A bytearray marks the used slots; the next free one is a ``bytearray.find`` (memchr) from
    the cursor, so picking, taking and giving back cost microseconds even for 65,000 addresses
    with all but one in use. ``addresses`` is a range (RANGED) or a sorted list (FIXED).
    """

    def __init__(self, addresses: Sequence[int], used: Iterable[int] = ()):
        self._addresses = addresses
        ranged = isinstance(addresses, range)
        self._slots = None if ranged else {a: i for i, a in enumerate(addresses)}
        self._taken = bytearray(len(addresses))
        self._cursor = 0
        self.used = 0
        for ip in used:
            self.take(ip)
        self._cursor = 0  # NOTE: OpenNebula starts over from the first address after a restart

    def __len__(self) -> int:
        return len(self._addresses)

    def slot(self, ip: int) -> int | None:
        """The index of ``ip`` in the network, None when it is not one of its addresses."""
        if self._slots is not None:
            return self._slots.get(ip)
        span = self._addresses
        return ip - span[0] if ip in span else None  # type: ignore[index]

    def is_free(self, ip: int) -> bool:
        at = self.slot(ip)
        return at is not None and not self._taken[at]

    def pick(self, skip: Collection[int] = ()) -> int | None:
        """The first free address from the cursor not in ``skip``; None when there is none.

        Marks nothing: ``take`` does, once the caller has committed.
        """
        start = self._cursor
        for _ in range(len(skip) + 1):
            at = self._find_free(start)
            if at is None:
                return None
            ip = self._addresses[at]
            if ip not in skip:
                return ip
            start = at + 1
        return None

    def take(self, ip: int) -> None:
        """Mark ``ip`` used and move the cursor past it; ValueError if it is not free."""
        at = self.slot(ip)
        if at is None or self._taken[at]:
            raise ValueError(f"{ip_text(ip)} is not a free address of this network")
        self._taken[at] = 1
        self.used += 1
        self._cursor = at + 1 if at + 1 < len(self._taken) else 0

    def give_back(self, ip: int) -> None:
        """Mark ``ip`` free again; an address not in use is left as it is."""
        at = self.slot(ip)
        if at is not None and self._taken[at]:
            self._taken[at] = 0
            self.used -= 1

    def _find_free(self, start: int) -> int | None:
        taken = self._taken  # never empty: a network has one address at least
        start %= len(taken)
        at = taken.find(0, start)
        if at < 0:
            at = taken.find(0, 0, start)
        return None if at < 0 else at


def may_use(vnet: Vnet, uid: int) -> bool:
    """OpenNebula 2.0's NET USE: oneadmin, the owner, or anyone when the network is public."""
    return uid == 0 or vnet.uid == uid or vnet.public


def choose_lease(
    vnet: Vnet, book: LeaseBook, nic: dict[str, str], mac_prefix: int, skip: Collection[int] = ()
) -> Lease:
    """The lease a NIC gets on ``vnet``, for no VM yet (vid -1); changes nothing.

    The IP the NIC asks for, else the lease of the MAC it asks for, else the first free one
    from the book's cursor; ``skip`` holds addresses other NICs of the same VM already chose.
    Raises ValueError for an IP or MAC that is not one, LeaseRefused when the address is taken,
    outside the network, or when no address is free.
    """
    ip = _wanted_ip(vnet, nic, mac_prefix)
    if ip is None:
        ip = book.pick(skip)
        if ip is None:
            raise LeaseRefused(
                f'virtual network "{vnet.name}" has no free lease ({book.used} of {len(book)} '
                "in use)"
            )
    elif book.slot(ip) is None:
        raise LeaseRefused(
            f'IP {ip_text(ip)} is not in virtual network "{vnet.name}" ({describe_addresses(vnet)})'
        )
    elif ip in skip or not book.is_free(ip):
        by = "another NIC of this VM" if ip in skip else holder(vnet.leases[ip])
        raise LeaseRefused(f'IP {ip_text(ip)} of virtual network "{vnet.name}" is used by {by}')
    lease = vnet.leases.get(ip)
    mac = lease.mac if lease is not None else lease_mac(mac_prefix, ip)
    _check_mac(vnet, nic, ip, mac)
    return Lease(vnet.id, ip, mac)


def _nic_value(nic: dict[str, str], attr: str) -> int:
    """The NIC's IP or MAC as a number; ValueError naming the attribute."""
    try:
        return parse_ip(nic[attr]) if attr == "IP" else parse_mac(nic[attr])
    except ValueError as exc:
        raise ValueError(f"{attr} = {exc}") from None


def _wanted_ip(vnet: Vnet, nic: dict[str, str], mac_prefix: int) -> int | None:
    if "IP" in nic:
        return _nic_value(nic, "IP")
    if "MAC" not in nic:
        return None
    mac = _nic_value(nic, "MAC")
    if vnet.type == RANGED and mac >> 32 == mac_prefix:
        return mac & 0xFFFFFFFF
    for lease in vnet.leases.values() if vnet.type == FIXED else ():
        if lease.mac == mac:
            return lease.ip
    raise LeaseRefused(f'MAC {mac_text(mac)} is not in virtual network "{vnet.name}"')


def _check_mac(vnet: Vnet, nic: dict[str, str], ip: int, mac: int) -> None:
    if "MAC" in nic and _nic_value(nic, "MAC") != mac:
        raise LeaseRefused(
            f"MAC {nic['MAC']} does not go with IP {ip_text(ip)} in virtual network "
            f'"{vnet.name}" (its MAC is {mac_text(mac)})'
        )


def nic_attributes(nic: dict[str, str], vnet: Vnet, lease: Lease) -> dict[str, str]:
    """The NIC as the VM keeps it: NETWORK, NETWORK_ID, IP, MAC, BRIDGE, then its other keys.

    NOTE: OpenNebula 1.4 dropped every other key but MODEL; modern versions keep them all
    (TARGET, SCRIPT, MODEL...), and so does onecloud. 1.4's VNID is replaced by NETWORK_ID.
    """
    filled = {
        "NETWORK": vnet.name,
        "NETWORK_ID": str(vnet.id),
        "IP": ip_text(lease.ip),
        "MAC": mac_text(lease.mac),
        "BRIDGE": vnet.bridge,
    }
    return {**filled, **{k: v for k, v in nic.items() if k not in filled and k != "VNID"}}


def names_network(nic: object) -> bool:
    """A NIC asks for a lease when it names a network (NETWORK or NETWORK_ID)."""
    return isinstance(nic, dict) and ("NETWORK" in nic or "NETWORK_ID" in nic)
