"""Virtual networks and leases in SQL on every backend: written, taken with a VM, given back."""

from __future__ import annotations

import pytest

from oned import vnet as vn
from oned.records import Lease, Vm, Vnet
from oned.states import VmState
from oned.store import DuplicateName, Store, StoreError
from oned.template import Template, parse

pytestmark = pytest.mark.db

PREFIX = 0x0201


def a_network(oid: int, text: str, uid: int = 0) -> Vnet:
    return vn.build(parse(text), oid=oid, uid=uid, mac_prefix=PREFIX, default_size=254)


def ranged(oid: int = 0, name: str = "One-TD", size: str = "B") -> Vnet:
    text = (
        f'NAME="{name}"\nTYPE=RANGED\nBRIDGE=xenbr0\nNETWORK_ADDRESS=10.0.0.0\nNETWORK_SIZE={size}'
    )
    return a_network(oid, text)


def fixed(oid: int = 1, name: str = "One-TD-Invisible") -> Vnet:
    leases = "".join(f"LEASES=[IP=192.168.101.{n}]\n" for n in (5, 10, 15))
    return a_network(oid, f'NAME="{name}"\nTYPE=FIXED\nBRIDGE=br1\nPUBLIC=NO\n{leases}', uid=3)


def lease(net: Vnet, ip: str, vid: int) -> Lease:
    address = vn.parse_ip(ip)
    return Lease(net.id, address, vn.lease_mac(PREFIX, address), vid)


def a_vm(vid: int) -> Vm:
    return Vm(vid, 0, f"vm-{vid}", Template([("MEMORY", "64")]), state=VmState.PENDING)


def loaded(store: Store) -> dict[int, Vnet]:
    return {net.id: net for net in store.load_networks()}


def held(net: Vnet) -> dict[str, int]:
    return {vn.ip_text(ip): lease.vid for ip, lease in net.leases.items()}


def test_networks_read_back_as_written_with_every_fixed_lease(store: Store) -> None:
    """A new RANGED network has no lease; a FIXED one has all of its own, free, with MACs."""
    store.insert_network(ranged())
    store.insert_network(fixed())
    nets = loaded(store)
    assert (nets[0].name, nets[0].type, nets[0].public, nets[0].template) == (
        "One-TD",
        vn.RANGED,
        True,
        ranged().template,
    )
    assert nets[0].leases == {}
    assert (nets[1].uid, nets[1].public, nets[1].bridge) == (3, False, "br1")
    assert nets[1].leases == fixed().leases
    assert store.next_oids()["network"] == 2


def test_a_taken_network_name_raises_duplicate_name(store: Store) -> None:
    """UNIQUE(name) as in OpenNebula; the first network stays."""
    store.insert_network(ranged())
    with pytest.raises(DuplicateName):
        store.insert_network(ranged(oid=5))
    assert list(loaded(store)) == [0]


def test_a_vm_takes_its_leases_in_its_own_insert(store: Store) -> None:
    """Leases of both types are held by the VM after a reload, with their MACs."""
    net, other = ranged(), fixed()
    store.insert_network(net)
    store.insert_network(other)
    store.insert_vm(a_vm(7), [lease(net, "10.0.0.1", 7), lease(other, "192.168.101.10", 7)])
    nets = loaded(store)
    assert held(nets[0]) == {"10.0.0.1": 7}
    assert vn.mac_text(nets[0].leases[vn.parse_ip("10.0.0.1")].mac) == "02:01:0a:00:00:01"
    assert held(nets[1]) == {"192.168.101.5": -1, "192.168.101.10": 7, "192.168.101.15": -1}


@pytest.mark.parametrize("make", [ranged, fixed])
def test_a_lease_in_use_fails_the_whole_vm_insert(store: Store, make) -> None:
    """The database refuses a second holder: no VM row, no lease change."""
    net = make()
    address = "10.0.0.9" if net.type == vn.RANGED else "192.168.101.5"
    store.insert_network(net)
    store.insert_vm(a_vm(1), [lease(net, address, 1)])
    with pytest.raises(StoreError):
        store.insert_vm(a_vm(2), [lease(net, address, 2)])
    assert store.get_vm(2) is None
    assert held(loaded(store)[net.id])[address] == 1


def test_leases_given_back_are_free_after_a_reload(store: Store) -> None:
    """release_leases: a RANGED network has no lease left, a FIXED one all of them free."""
    net, other = ranged(), fixed()
    store.insert_network(net)
    store.insert_network(other)
    taken = [lease(net, "10.0.0.1", 7), lease(other, "192.168.101.10", 7)]
    store.insert_vm(a_vm(7), taken)
    store.release_leases(taken)
    nets = loaded(store)
    assert nets[0].leases == {} and set(held(nets[1]).values()) == {-1}


def test_a_lease_is_given_back_only_by_the_vm_holding_it(store: Store) -> None:
    """A stale release (another vid) leaves the lease with its holder."""
    net = ranged()
    store.insert_network(net)
    store.insert_vm(a_vm(1), [lease(net, "10.0.0.1", 1)])
    store.release_leases([lease(net, "10.0.0.1", 2)])
    assert held(loaded(store)[0]) == {"10.0.0.1": 1}


def test_update_vm_gives_back_leases_with_the_new_state(store: Store) -> None:
    """A VM reaching DONE and its leases freed in one transaction."""
    net = ranged()
    store.insert_network(net)
    vm = a_vm(4)
    store.insert_vm(vm, [lease(net, "10.0.0.4", 4)])
    vm.state = VmState.DONE
    assert store.update_vm(vm, (VmState.PENDING, 0), released=[lease(net, "10.0.0.4", 4)])
    assert loaded(store)[0].leases == {} and store.get_vm(4).state == VmState.DONE


def test_publishing_rewrites_the_network_row_and_keeps_its_leases(store: Store) -> None:
    """update_network writes PUBLIC (and the template), not the leases."""
    net = fixed()
    store.insert_network(net)
    store.insert_vm(a_vm(1), [lease(net, "192.168.101.15", 1)])
    net.public = True
    store.update_network(net)
    again = loaded(store)[1]
    assert again.public and held(again)["192.168.101.15"] == 1


def test_a_deleted_network_leaves_no_lease_behind(store: Store) -> None:
    """delete_network drops any lease row left; another network is untouched."""
    net, other = ranged(), fixed()
    store.insert_network(net)
    store.insert_network(other)
    store.insert_vm(a_vm(1), [lease(net, "10.0.0.1", 1), lease(other, "192.168.101.5", 1)])
    store.delete_network(1)
    store.insert_network(fixed(oid=2))
    nets = loaded(store)
    assert list(nets) == [0, 2] and held(nets[0]) == {"10.0.0.1": 1}
    assert set(held(nets[2]).values()) == {-1}
