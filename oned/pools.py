"""The in-memory working set of oned: users (with their EC2 keys), hosts, VMs, networks and
images, written through to the store.

As in OpenNebula, oned keeps its pools in memory and the database is the truth at restart.
Each pool caches the XML of every object, escaped for an XML-RPC reply, until the object
changes; listings join cached fragments. DONE VMs leave memory and live in the store only.
Each network has a LeaseBook next to it: which of its addresses are free (oned.vnet). Which VMs
use each image (its RUNNING_VMS, and USED) is derived from the VMs' DISKs, never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from oned import changes, image_views, views, vnet_views
from oned import vnet as vn
from oned.ec2keys import Keyring
from oned.records import Host, Image, Lease, User, Vm, Vnet
from oned.rpc.marshal import escape_bytes
from oned.states import ImageState, VmState

T = TypeVar("T", User, Host, Vm, Vnet, Image)
# VMs in these states hold no image (2.0's release_disk_images at DONE and FAILED).
_ENDED = (VmState.DONE, VmState.FAILED)


class Pool(Generic[T]):
    """Objects by id, in id order, with a cache of their escaped XML."""

    def __init__(
        self,
        render: Callable[[T], str],
        render_short: Callable[[T], str] | None = None,
        marks: changes.ChangeLog | None = None,
        kind: int = 0,
    ):
        self._render: Callable[[T], str] = render
        self._render_short: Callable[[T], str] = render_short or render
        self._objects: dict[int, T] = {}
        self._xml: dict[int, bytes] = {}
        self._short: dict[int, bytes] = {}
        # one.system.changes: every change leaves a mark of this pool's kind
        self._marks = marks
        self._kind = kind

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
        self._xml.pop(oid, None)
        self._short.pop(oid, None)
        obj = self._objects.pop(oid, None)
        if obj is not None and self._marks is not None:
            public = getattr(obj, "public", False)
            owner = changes.EVERYONE if public else getattr(obj, "uid", changes.EVERYONE)
            self._marks.mark(self._kind, oid, owner)
        return obj

    def changed(self, oid: int) -> None:
        """Forget the cached XML of an object that was modified in place (and mark it)."""
        self._xml.pop(oid, None)
        self._short.pop(oid, None)
        if self._marks is not None:
            self._marks.mark(self._kind, oid)

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

    def fragments(self, full: bool = False) -> list[bytes]:
        """The cached XML of every object in id order (``xml`` or ``xml_short`` of each): a
        whole listing. The cache is read in one pass in C (``map``); only objects not cached
        yet cost a Python call (oned's CPU per ``one.vmpool.info`` of 10,000 VMs 9.8-11.5 ms
        with a call per VM, 7.6-9.0 ms so: bench/RESULTS.md)."""
        cache, render = (self._xml, self.xml) if full else (self._short, self.xml_short)
        found = list(map(cache.get, self._objects))
        if None in found:
            objects = self._objects
            found = [xml or render(objects[oid]) for oid, xml in zip(objects, found, strict=True)]
        return found


class Pools:
    """Users, hosts, VMs, networks and images with their name indexes and next ids.

    ``mac_prefix`` is oned.conf's MAC_PREFIX as a number (the MAC of a RANGED address range).
    """

    def __init__(self, mac_prefix: int = 0x0200) -> None:
        # one.system.changes: one sequence over every pool (oned.changes)
        self.changes = marks = changes.ChangeLog()
        self.waiters: changes.Waiters | None = None  # the calls waiting for a change
        self.users: Pool[User] = Pool(views.user_xml, None, marks, changes.USER)
        self.hosts: Pool[Host] = Pool(views.host_xml, None, marks, changes.HOST)
        self.vms: Pool[Vm] = Pool(self._render_vm, self._render_vm_short, marks, changes.VM)
        self.vnets: Pool[Vnet] = Pool(
            self._render_vnet, self._render_vnet_short, marks, changes.VNET
        )
        self.user_names: dict[str, User] = {}
        self.host_names: dict[str, Host] = {}
        self.vnet_names: dict[str, Vnet] = {}
        self.books: dict[int, vn.LeaseBook] = {}
        self.images: Pool[Image] = Pool(
            self._render_image, self._render_image_short, marks, changes.IMAGE
        )
        # names are unique per owner (as modern OpenNebula)
        self.image_names: dict[tuple[int, str], Image] = {}
        # image id -> ids of the VMs (not DONE, not FAILED) whose DISKs carry that IMAGE_ID
        self.image_users: dict[int, set[int]] = {}
        # EC2 keys (sealed), the key that opens them and econe's session tokens (issue 15)
        self.ec2_keys = Keyring()
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
        """The user, the user's EC2 keys and the tokens issued through them."""
        user = self.users.remove(uid)
        if user is not None:
            self.user_names.pop(user.name, None)
        self.ec2_keys.remove_user(uid)

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
        return vnet_views.vnet_xml(net, self.uname(net.uid), self.mac_prefix)

    def _render_vnet_short(self, net: Vnet) -> str:
        return vnet_views.vnet_short_xml(net, self.uname(net.uid), self.mac_prefix)

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

    # -- images ------------------------------------------------------------------------------

    def image_state(self, img: Image) -> int:
        """The state to show: USED for a READY image that VMs use, else the stored one."""
        if img.state == ImageState.READY and self.image_users.get(img.id):
            return ImageState.USED
        return img.state

    def _image_view_args(self, img: Image) -> tuple[Image, str, list[int], int]:
        vms = sorted(self.image_users.get(img.id, ()))
        return img, self.uname(img.uid), vms, self.image_state(img)

    def _render_image(self, img: Image) -> str:
        return image_views.image_xml(*self._image_view_args(img))

    def _render_image_short(self, img: Image) -> str:
        return image_views.image_short_xml(*self._image_view_args(img))

    def put_image(self, img: Image) -> None:
        """Add or replace an image (a rename moves its name)."""
        old = self.images.get(img.id)
        if old is not None:
            self.image_names.pop((old.uid, old.name), None)
        self.images.put(img)
        self.image_names[(img.uid, img.name)] = img

    def remove_image(self, iid: int) -> None:
        img = self.images.remove(iid)
        self.image_users.pop(iid, None)
        if img is not None:
            self.image_names.pop((img.uid, img.name), None)

    def use_images(self, vm: Vm) -> None:
        """Count ``vm`` as a user of the images its DISKs name (none once it ended)."""
        if vm.state in _ENDED:
            return
        for iid in disk_image_ids(vm):
            self.image_users.setdefault(iid, set()).add(vm.id)
            self.images.changed(iid)

    def release_images(self, vm: Vm) -> list[int]:
        """Stop counting ``vm`` as a user of its images; the ids of those it was using."""
        released = []
        for iid in disk_image_ids(vm):
            users = self.image_users.get(iid)
            if users is None or vm.id not in users:
                continue
            users.discard(vm.id)
            if not users:
                del self.image_users[iid]
            self.images.changed(iid)
            released.append(iid)
        return released

    def recount_image_users(self) -> None:
        """Rebuild image_users from the VMs in memory (at load: it is never stored)."""
        before = set(self.image_users)
        self.image_users.clear()
        for vm in self.vms:
            self.use_images(vm)
        for iid in before:
            self.images.changed(iid)


def disk_image_ids(vm: Vm) -> list[int]:
    """The image ids the VM's DISKs carry in IMAGE_ID, each once, in disk order."""
    ids: list[int] = []
    for disk in vm.template.get_all("DISK"):
        value = disk.get("IMAGE_ID") if isinstance(disk, dict) else None
        value = value.strip() if value is not None else ""
        if value.isascii() and value.isdigit():
            iid = int(value)
            if iid not in ids:
                ids.append(iid)
    return ids
