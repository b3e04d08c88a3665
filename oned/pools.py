"""The in-memory working set of oned: users, hosts and VMs, written through to the store.

As in OpenNebula, oned keeps its pools in memory and the database is the truth at restart.
Each pool caches the XML of every object, escaped for an XML-RPC reply, until the object
changes; listings join cached fragments. DONE VMs leave memory and live in the store only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from oned import views
from oned.records import Host, User, Vm
from oned.rpc.marshal import escape_bytes

T = TypeVar("T", User, Host, Vm)


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
    """Users, hosts and VMs with their name indexes and next ids."""

    def __init__(self) -> None:
        self.users: Pool[User] = Pool(views.user_xml)
        self.hosts: Pool[Host] = Pool(views.host_xml)
        self.vms: Pool[Vm] = Pool(self._render_vm, self._render_vm_short)
        self.user_names: dict[str, User] = {}
        self.host_names: dict[str, Host] = {}
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
