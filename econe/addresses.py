"""Elastic addresses: AllocateAddress, DescribeAddresses, AssociateAddress,
DisassociateAddress, ReleaseAddress, as leases of the public network (econe.address_book).

Pure and blocking. Allocate holds a free lease of `public_network` in oned as the server
account and records its owner; a user sees and changes only their own addresses (another's is
`InvalidAddress.NotFound` / `InvalidAllocationID.NotFound`), at most `max_addresses` of them.
Associate writes `EC2_ELASTIC_IP` into the VM's USER_TEMPLATE (`one.vm.update` as the caller,
merge) and runs the operator's `associate_command` (`CMD associate PUBLIC_IP PRIVATE_IP
VM_ID`, argv, no shell, `COMMAND_TIMEOUT` seconds): that is how OpenNebula's econe did NAT of
elastic addresses (share/econe/elastic-ip-nat is an example). Disassociate runs
`CMD disassociate ...` and clears the attribute. A failed command undoes the change.
NOTE: as EC2-Classic, releasing a `standard` address disassociates it; a `vpc` one must be
disassociated first (`InvalidIPAddress.InUse`).
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from typing import Any

from econe import filters
from econe.address_book import (
    AddressBook,
    Entry,
    book_of,
    ensure_reconciled,
    lease,
    public_network,
)
from econe.context import Context
from econe.errors import Ec2Error
from econe.one import quote, text, xml
from econe.query import QueryRequest, as_list, format_id, parse_id, required
from oned.states import VmState

log = logging.getLogger("econe")
ATTRIBUTE = "EC2_ELASTIC_IP"
COMMAND_TIMEOUT = 30
DOMAINS = ("standard", "vpc")
_ATTEMPTS = 5  # free leases tried when VMs take them meanwhile


def elastic_ip(user_template: dict[str, Any]) -> str | None:
    """The elastic address a VM's USER_TEMPLATE records (DescribeInstances' ipAddress)."""
    value = user_template.get(ATTRIBUTE)
    return value.strip() or None if isinstance(value, str) else None


def _book(ctx: Context) -> AddressBook:
    """The addresses file, reconciled; UnsupportedOperation without server_auth or
    public_network (econe then has no addresses at all)."""
    _server(ctx)
    book = book_of(ctx.services, ctx.settings)
    ensure_reconciled(book, ctx.services, ctx.settings)
    return book


def _server(ctx: Context) -> str:
    session = ctx.services.server_session
    if not session or ctx.settings.public_network is None:
        raise Ec2Error(
            "UnsupportedOperation", "addresses need econe.conf's server_auth and public_network"
        )
    return session


# --- AllocateAddress / ReleaseAddress ---------------------------------------------------------


def allocate_address(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """A free lease of the public network, held in oned and recorded as the caller's."""
    domain = call.params.get("Domain") or "standard"
    if domain not in DOMAINS:
        raise Ec2Error("InvalidParameterValue", "Domain must be standard or vpc")
    book, session, uid = _book(ctx), _server(ctx), ctx.uid()
    with book.lock:
        data = book.load()
        owned = book.addresses(data)
        if sum(1 for e in owned.values() if e["uid"] == uid) >= ctx.settings.max_addresses:
            raise Ec2Error(
                "AddressLimitExceeded",
                f"at most {ctx.settings.max_addresses} addresses per user",
            )
        nid, ip = _hold_free(ctx, session)
        alloc = book.next_id(data, "allocation") if domain == "vpc" else None
        owned[ip] = _entry(uid, domain, alloc)
        try:
            book.save(data)
        except OSError:
            ctx.services.oned.call(session, "one.vn.release", nid, lease(ip))
            raise
    log.info("address %s allocated to user %s (%s)", ip, uid, domain)
    return {"publicIp": ip, "domain": domain, "allocationId": alloc}


def _entry(uid: int, domain: str, alloc: str | None) -> Entry:
    return {
        "uid": uid,
        "domain": domain,
        "allocation_id": alloc,
        "vid": None,
        "association_id": None,
        "private_ip": None,
    }


def _hold_free(ctx: Context, session: str) -> tuple[int, str]:
    """Hold the first free lease; a lease a VM took since the network was read is skipped."""
    net = public_network(ctx.services.oned, session, ctx.settings.public_network)
    for ip in net.free()[:_ATTEMPTS]:
        try:
            ctx.services.oned.call(session, "one.vn.hold", net.nid, lease(ip))
        except Ec2Error as exc:
            if exc.code != "IncorrectInstanceState":  # oned's 0x800: in use meanwhile
                raise
            continue
        return net.nid, ip
    raise Ec2Error("InsufficientAddressCapacity", "the public network has no free address")


def release_address(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """The lease goes back to the network; a standard address is disassociated first."""
    book, session = _book(ctx), _server(ctx)
    with book.lock:
        ip, entry = _find(ctx, book, call, association=False)
        if entry["vid"] is not None:
            if entry["domain"] == "vpc":
                raise Ec2Error("InvalidIPAddress.InUse", f"Address '{ip}' is in use.")
            _disassociate(ctx, book, ip)
        net = public_network(ctx.services.oned, session, ctx.settings.public_network)
        try:
            ctx.services.oned.call(session, "one.vn.release", net.nid, lease(ip))
        except Ec2Error as exc:  # no longer held (0x800): the book's entry goes all the same
            if exc.code != "IncorrectInstanceState":
                raise
            log.warning("address %s was not held in oned any more", ip)
        data = book.load()
        book.addresses(data).pop(ip, None)
        book.save(data)
    log.info("address %s released by user %s", ip, entry["uid"])
    return {"return": True}


# --- finding the caller's address -------------------------------------------------------------


def _find(
    ctx: Context, book: AddressBook, call: QueryRequest, association: bool
) -> tuple[str, Entry]:
    """The caller's address the call names: PublicIp, AllocationId or (Disassociate)
    AssociationId; exactly one of them."""
    p = call.params
    names = ("PublicIp", "AssociationId" if association else "AllocationId")
    given = [(name, p[name]) for name in names if p.get(name) not in (None, "")]
    if len(given) != 1:
        raise Ec2Error(
            "MissingParameter" if not given else "InvalidParameterCombination",
            f"give either {names[0]} or {names[1]}",
        )
    (name, value), mine = given[0], book.of(ctx.uid())
    if not isinstance(value, str):
        raise Ec2Error("InvalidParameterValue", f"{name} must be a string")
    for ip, entry in mine.items():
        if value == (ip if name == "PublicIp" else entry.get(_KEYS[name])):
            return ip, entry
    raise _not_found(name, value)


_KEYS = {"AllocationId": "allocation_id", "AssociationId": "association_id"}


def _settle(ctx: Context, book: AddressBook) -> None:
    """Disassociate the caller's addresses whose instance ended (EC2 does it at terminate)."""
    for ip, entry in book.of(ctx.uid()).items():
        if entry["vid"] is None:
            continue
        try:
            vm = xml(ctx.call("one.vm.info", entry["vid"], not_found="InvalidInstanceID.NotFound"))
        except Ec2Error as exc:
            if exc.code != "InvalidInstanceID.NotFound":
                raise
        else:
            if int(text(vm, "STATE", "0")) not in (VmState.DONE, VmState.FAILED):
                continue
        try:
            _disassociate(ctx, book, ip)
        except Ec2Error:  # logged by run_command; tried again at the next call
            continue


def _not_found(name: str, value: str) -> Ec2Error:
    shown = value[:64]
    if name == "PublicIp":
        return Ec2Error("InvalidAddress.NotFound", f"Address '{shown}' not found.")
    if name == "AllocationId":
        return Ec2Error("InvalidAllocationID.NotFound", f"Allocation ID '{shown}' not found.")
    return Ec2Error("InvalidAssociationID.NotFound", f"Association ID '{shown}' not found.")


# --- AssociateAddress / DisassociateAddress -----------------------------------------------------


def associate_address(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """NAT the address to the instance's private IP; an address associated elsewhere moves
    (a vpc one only with AllowReassociation), an instance's other address is disassociated."""
    vid = parse_id(required(call.params, "InstanceId"), "i")
    book = _book(ctx)
    with book.lock:
        _settle(ctx, book)
        ip, entry = _find(ctx, book, call, association=False)
        private = _private_ip(ctx, vid)
        if entry["vid"] == vid:
            return {"return": True, "associationId": entry["association_id"]}
        if entry["vid"] is not None:
            if entry["domain"] == "vpc" and call.params.get("AllowReassociation") != "true":
                raise Ec2Error("Resource.AlreadyAssociated", f"Address '{ip}' is associated")
            _disassociate(ctx, book, ip)
        for other, had in book.of(ctx.uid()).items():
            if had["vid"] == vid:
                _disassociate(ctx, book, other)
        _set_attribute(ctx, vid, ip)
        try:
            run_command(ctx, "associate", ip, private, vid)
        except Ec2Error:
            _set_attribute(ctx, vid, "", quiet=True)
            raise
        data = book.load()
        association = book.next_id(data, "association")
        changes = {"vid": vid, "association_id": association, "private_ip": private}
        book.addresses(data)[ip].update(changes)
        book.save(data)
    log.info("address %s associated with VM %s (%s)", ip, vid, private)
    return {"return": True, "associationId": association}


def _private_ip(ctx: Context, vid: int) -> str:
    vm = xml(ctx.call("one.vm.info", vid, not_found="InvalidInstanceID.NotFound"))
    if int(text(vm, "STATE", "0")) in (VmState.DONE, VmState.FAILED):
        raise Ec2Error("IncorrectInstanceState", f"{format_id(vid, 'i')} is terminated")
    private = text(vm, "TEMPLATE/NIC/IP")
    if not private:
        raise Ec2Error("InvalidInstanceID", f"{format_id(vid, 'i')} has no network address")
    return str(ipaddress.IPv4Address(private))


def disassociate_address(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """Idempotent, as EC2: an address not associated stays so."""
    book = _book(ctx)
    with book.lock:
        ip, entry = _find(ctx, book, call, association=True)
        if entry["vid"] is not None:
            _disassociate(ctx, book, ip)
    return {"return": True}


def _disassociate(ctx: Context, book: AddressBook, ip: str) -> None:
    """The operator's command first (its failure changes nothing), then the VM's attribute
    (a VM gone meanwhile is fine), then the book. The caller holds the book's lock."""
    data = book.load()
    entry = book.addresses(data)[ip]
    vid = entry["vid"]
    run_command(ctx, "disassociate", ip, entry["private_ip"], vid)
    _set_attribute(ctx, vid, "", quiet=True)
    entry.update(vid=None, association_id=None, private_ip=None)
    book.save(data)
    log.info("address %s disassociated from VM %s", ip, vid)


def _set_attribute(ctx: Context, vid: int, ip: str, quiet: bool = False) -> None:
    try:
        ctx.call("one.vm.update", vid, f"{ATTRIBUTE} = {quote(ip)}\n", 1)
    except Ec2Error as exc:
        if not quiet:
            raise
        log.warning("VM %s: %s not updated: %s", vid, ATTRIBUTE, exc.message)


def run_command(ctx: Context, action: str, public: str, private: str, vid: int) -> None:
    """`associate_command action PUBLIC PRIVATE VID`; none configured: nothing to run. A
    failure is logged with the command's last line and answered `InternalError`."""
    command = ctx.settings.associate_command
    if not command:
        return
    argv = [*command, action, public, private, str(vid)]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        failed = f"exit status {done.returncode}" if done.returncode else ""
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] if failed else []
    except (OSError, subprocess.TimeoutExpired) as exc:
        failed, last = type(exc).__name__, [str(exc)]
    if failed:
        log.error("associate_command %s %s %s: %s %s", action, public, vid, failed, last)
        raise Ec2Error("InternalError", f"the address could not be {action}d, try again")


# --- DescribeAddresses -------------------------------------------------------------------------

READERS: dict[str, filters.Reader] = {
    "public-ip": lambda r: r["publicIp"],
    "allocation-id": lambda r: r.get("allocationId"),
    "association-id": lambda r: r.get("associationId"),
    "instance-id": lambda r: r.get("instanceId"),
    "private-ip-address": lambda r: r.get("privateIpAddress"),
    "domain": lambda r: r["domain"],
}


def describe_addresses(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """The caller's addresses; each PublicIp.N / AllocationId.N must be one of them."""
    book = _book(ctx)
    with book.lock:
        _settle(ctx, book)
        mine = book.of(ctx.uid())
    rows = [_item(ip, entry) for ip, entry in mine.items()]
    for name, field in (("PublicIp", "publicIp"), ("AllocationId", "allocationId")):
        wanted = as_list(call.params, name)
        if wanted:
            known = {row.get(field) for row in rows}
            for value in wanted:
                if not isinstance(value, str):
                    raise Ec2Error("InvalidParameterValue", f"{name} must be a list of strings")
                if value not in known:
                    raise _not_found(name, str(value))
            rows = [row for row in rows if row.get(field) in wanted]
    return {"addressesSet": filters.select(rows, call.params.get("Filter"), READERS)}


def _item(ip: str, entry: Entry) -> dict[str, Any]:
    vid = entry["vid"]
    return {
        "publicIp": ip,
        "allocationId": entry["allocation_id"],
        "domain": entry["domain"],
        "instanceId": format_id(vid, "i") if vid is not None else None,
        "associationId": entry["association_id"],
        "privateIpAddress": entry["private_ip"],
    }


ACTIONS = {
    "AllocateAddress": allocate_address,
    "DescribeAddresses": describe_addresses,
    "AssociateAddress": associate_address,
    "DisassociateAddress": disassociate_address,
    "ReleaseAddress": release_address,
}
__all__ = ["ACTIONS", "elastic_ip"]
