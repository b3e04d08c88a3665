"""Elastic addresses' book: which user owns which lease of the public network, and the network.

Pure and blocking. An elastic address is a lease of econe.conf's `public_network` that econe
put on hold in oned (`one.vn.hold` as the server account, `server_auth`: oneadmin), so no VM's
NIC gets it. oned has no per-user store a user may write, so the owner is recorded here, in
`addresses_file` (default `<var>/econe-addresses.json`, 0600, rewritten whole under a lock):

    {"next_allocation": 3, "next_association": 2,
     "addresses": {"10.0.0.5": {"uid": 4, "domain": "vpc", "allocation_id": "eipalloc-00000001",
                                "vid": 12, "association_id": "eipassoc-00000001",
                                "private_ip": "192.168.0.7"}}}

`vid`, `association_id` and `private_ip` are null while the address is not associated.
`reconcile` makes the book and oned agree at start (a crash between the hold and the write).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from econe.errors import Ec2Error
from econe.jsonfile import JsonFile
from econe.one import text, xml
from oned.locations import locations

log = logging.getLogger("econe")
Entry = dict[str, Any]
_BOOKS: dict[str, AddressBook] = {}


@dataclass(frozen=True)
class PublicNetwork:
    """The public network as oned answered it: its addresses in order, those in use (by VMs or
    on hold) and those on hold (USED, VID -1)."""

    nid: int
    name: str
    addresses: list[str]
    used: frozenset[str]
    held: frozenset[str]

    def free(self) -> list[str]:
        return [ip for ip in self.addresses if ip not in self.used]


class AddressBook(JsonFile):
    """The addresses file; `reconciled` once it was checked against oned in this process."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.reconciled = False

    def addresses(self, data: dict[str, Any]) -> dict[str, Entry]:
        return data.setdefault("addresses", {})

    def of(self, uid: int) -> dict[str, Entry]:
        """The user's addresses, by public IP."""
        with self.lock:
            every = self.addresses(self.load())
        return {ip: e for ip, e in sorted(every.items(), key=_ip_order) if e["uid"] == uid}

    def next_id(self, data: dict[str, Any], kind: str) -> str:
        """`eipalloc-%08x` / `eipassoc-%08x` from the file's counter (never reused)."""
        key = f"next_{kind}"
        number = int(data.get(key, 1))
        data[key] = number + 1
        return f"eip{kind[:5]}-{number:08x}"


def book_of(services: Any, settings: Any) -> AddressBook:
    """The services' book (econe.wiring), else one per file for this process."""
    found = getattr(services, "addresses", None)
    if found is not None:
        return found
    path = settings.addresses_file or os.path.join(locations().var, "econe-addresses.json")
    return _BOOKS.setdefault(path, AddressBook(path))


def _ip_order(item: tuple[str, Any]) -> int:
    return int(ipaddress.IPv4Address(item[0]))


# --- the public network ----------------------------------------------------------------------


def public_network(oned: Any, session: str, wanted: str | int | None) -> PublicNetwork:
    """econe.conf's `public_network` (a name or an id) read as the server account."""
    if wanted is None:
        raise Ec2Error("UnsupportedOperation", "this cloud has no public network for addresses")
    pool = xml(oned.call(session, "one.vnpool.info", -2, -1, -1))
    for net in pool.iterfind("VNET"):
        if str(wanted) in (text(net, "NAME"), text(net, "ID")):
            return read_network(oned, session, int(text(net, "ID")))
    log.error("public_network %r is not a network of oned", wanted)
    raise Ec2Error("Unavailable", "the public network is not available, try again")


def read_network(oned: Any, session: str, nid: int) -> PublicNetwork:
    net = xml(oned.call(session, "one.vn.info", nid))
    addresses: list[str] = []
    for ar in net.iterfind("AR_POOL/AR"):
        first, size = int(ipaddress.IPv4Address(text(ar, "IP"))), int(text(ar, "SIZE", "0"))
        addresses += [str(ipaddress.IPv4Address(first + n)) for n in range(size)]
    used, held = _leases(net)
    return PublicNetwork(nid, text(net, "NAME"), addresses, used, held)


def _leases(net: ET.Element) -> tuple[frozenset[str], frozenset[str]]:
    used, held = set(), set()
    for lease in net.iterfind("LEASES/LEASE"):
        if text(lease, "USED") == "1":
            used.add(text(lease, "IP"))
            if text(lease, "VID") == "-1":
                held.add(text(lease, "IP"))
    return frozenset(used), frozenset(held)


def lease(ip: str) -> str:
    """The template one.vn.hold/release take; `ip` was read from oned or checked as IPv4."""
    return f'LEASES = [ IP = "{ipaddress.IPv4Address(ip)}" ]'


# --- reconcile -------------------------------------------------------------------------------


def reconcile(book: AddressBook, oned: Any, session: str, wanted: str | int | None) -> None:
    """Make the book and oned agree: a lease held on the public network that nobody owns in
    the book is released; an owned address whose lease is no longer held is dropped. Both are
    logged. Run at start (and, until econe.wiring does, at the first address action)."""
    with book.lock:
        if wanted is None:
            book.reconciled = True
            return
        net = public_network(oned, session, wanted)
        data = book.load()
        owned = book.addresses(data)
        for ip in sorted(net.held - set(owned), key=lambda ip: _ip_order((ip, None))):
            oned.call(session, "one.vn.release", net.nid, lease(ip))
            log.warning("address %s: held on %s but owned by nobody: released", ip, net.name)
        lost = [ip for ip in owned if ip not in net.held]
        for ip in lost:
            entry = owned.pop(ip)
            log.warning("address %s of user %s: no longer held in oned: dropped", ip, entry["uid"])
        if lost:
            book.save(data)
        book.reconciled = True


def ensure_reconciled(book: AddressBook, services: Any, settings: Any) -> None:
    """`reconcile` once per book and process (a second thread waits for the first)."""
    if book.reconciled or not services.server_session:
        return
    with book.lock:
        if not book.reconciled:
            reconcile(book, services.oned, services.server_session, settings.public_network)


def reconcile_at_start(services: Any, settings: Any) -> None:
    """For econe-server's start (after `econe.wiring.services_of`): oned not answering yet is
    logged, and the first address call tries again."""
    try:
        ensure_reconciled(book_of(services, settings), services, settings)
    except Ec2Error as exc:
        log.warning("elastic addresses not reconciled at start: %s", exc.message)
