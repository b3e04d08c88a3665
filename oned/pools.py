"""The in-memory working set of oned: users, hosts, VMs and networks, written through to the store.

As in OpenNebula, oned keeps its pools in memory and the database is the truth at restart.
Each pool caches the XML of every object, escaped for an XML-RPC reply, until the object
changes; listings join cached fragments. DONE VMs leave memory and live in the store only.
Each network has a LeaseBook next to it: which of its addresses are free (oned.vnet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from oned import views
from oned import vnet as vn
from oned.records import Host, Lease, User, Vm, Vnet
from oned.rpc.marshal import escape_bytes

T = TypeVar("T", User, Host, Vm, Vnet)


class Pool(Generic[T]):
    """Objects by id, in id order, with a cache of their escaped XML."""

    def __init__(self, render: Callable[[T], str], render_short: Callable[[T], str] | None = None):
        self._render = render
        self._render_short = render_short or render
        self._objects: dict[int, T] = {}
        self._xml: dict[int, bytes] = {}
        self._short: dict[int, bytes] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[T]:
        return iter(self._objects.values())

    def __contains__(self, oid: int) -> bool:
        return oid in self._objects

    def get(self, oid: int) -> T | None:
        return self._objects.get(oid)

    def put(self, obj: T) -> None:
        """Add or replace an object; ids only grow, so dict order stays id order."""
        self._objects[obj.id] = obj
        self.changed(obj.id)

    def remove(self, oid: int) -> T | None:
        self.changed(oid)
        return self._objects.pop(oid, None)

    def changed(self, oid: int) -> None:
        """Forget the cached XML of an object that was modified in place."""
        self._xml.pop(oid, None)
        self._short.pop(oid, None)

    def xml(self, obj: T) -> bytes:
        cached = self._xml.get(obj.id)
        if cached is None:
            cached = self._xml[obj.id] = escape_bytes(self._render(obj))
        return cached

    def xml_short(self, obj: T) -> bytes:
        """The summary form listings use (the full form when the pool has no summary)."""
        cached = self._short.get(obj.id)
        if cached is None:
            cached = self._short[obj.id] = escape_bytes(self._render_short(obj))
        return cached


class Pools:
    """Users, hosts, VMs and networks with their name indexes and next ids.

    ``mac_prefix`` is oned.conf's MAC_PREFIX as a number (the MAC of a RANGED address range).
    """

    def __init__(self, mac_prefix: int = 0x0200) -> None:
        self.users: Pool[User] = Pool(views.user_xml)
        self.hosts: Pool[Host] = Pool(views.host_xml)
        self.vms: Pool[Vm] = Pool(self._render_vm, self._render_vm_short)
        self.vnets: Pool[Vnet] = Pool(self._render_vnet, self._render_vnet_short)
        self.user_names: dict[str, User] = {}
        self.host_names: dict[str, Host] = {}
        self.vnet_names: dict[str, Vnet] = {}
        self.books: dict[int, vn.LeaseBook] = {}
        self.mac_prefix = mac_prefix
        self.next_ids: dict[str, int] = {"user": 0, "host": 0, "vm": 0, "network": 0, "image": 0}

    def take_id(self, kind: str) -> int:
        oid = self.next_ids[kind]
        self.next_ids[kind] = oid + 1
        return oid

    def uname(self, uid: int) -> str:
        user = self.users.get(uid)
        return user.name if user else str(uid)

    def render_vm(self, vm: Vm) -> str:
        return self._render_vm(vm)

    def _render_vm(self, vm: Vm) -> str:
        return views.vm_xml(vm, self.uname(vm.uid))

    def _render_vm_short(self, vm: Vm) -> str:
        return views.vm_short_xml(vm, self.uname(vm.uid))

    def put_user(self, user: User) -> None:
        old = self.users.get(user.id)
        if old is not None:
            self.user_names.pop(old.name, None)
        self.users.put(user)
        self.user_names[user.name] = user

    def remove_user(self, uid: int) -> None:
        user = self.users.remove(uid)
        if user is not None:
            self.user_names.pop(user.name, None)

    def put_host(self, host: Host) -> None:
        old = self.hosts.get(host.id)
        if old is not None:
            self.host_names.pop(old.name, None)
        self.hosts.put(host)
        self.host_names[host.name] = host

    def remove_host(self, hid: int) -> None:
        host = self.hosts.remove(hid)
        if host is not None:
            self.host_names.pop(host.name, None)

    def _render_vnet(self, net: Vnet) -> str:
        return views.vnet_xml(net, self.uname(net.uid), self.mac_prefix)

    def _render_vnet_short(self, net: Vnet) -> str:
        return views.vnet_short_xml(net, self.uname(net.uid), self.mac_prefix)

    def put_vnet(self, net: Vnet) -> None:
        """Add a network with its leases; its book is built from them."""
        used = (lease.ip for lease in net.leases.values() if lease.used)
        self.books[net.id] = vn.LeaseBook(vn.addresses(net), used)
        self.vnets.put(net)
        self.vnet_names[net.name] = net

    def remove_vnet(self, nid: int) -> None:
        net = self.vnets.remove(nid)
        self.books.pop(nid, None)
        if net is not None:
            self.vnet_names.pop(net.name, None)

    def hold_leases(self, leases: Iterable[Lease]) -> None:
        """Record leases committed as taken (each ``vid`` set) in their networks and books."""
        for lease in leases:
            net = self.vnets.get(lease.vnet)
            if net is not None:
                self.books[net.id].take(lease.ip)
                net.leases[lease.ip] = lease
                self.vnets.changed(net.id)

    def free_leases(self, leases: Iterable[Lease]) -> None:
        """Record leases committed as given back: a RANGED network forgets them, a FIXED
        one keeps them free (vid -1)."""
        for lease in leases:
            net = self.vnets.get(lease.vnet)
            held = net.leases.get(lease.ip) if net is not None else None
            if net is None or held is None or held.vid != lease.vid:
                continue
            self.books[net.id].give_back(lease.ip)
            if net.type == vn.FIXED:
                net.leases[lease.ip] = Lease(lease.vnet, lease.ip, lease.mac)
            else:
                del net.leases[lease.ip]
            self.vnets.changed(net.id)
