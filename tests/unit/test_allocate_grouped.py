"""one.vm.allocate through the group commit (cloud.commits, oned.commits) on the real pools and an
SQLite store: the allocations of one reactor turn get their own ids and leases, share one
transaction and are answered only after it; one the database refuses fails alone and gives back
what it reserved."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import task

from oned import vnet as vn
from oned.api import vms, vnets
from oned.api.cloud import Caller, Cloud
from oned.commits import CommitQueue
from oned.config import load_config
from oned.pools import Pools
from oned.records import Lease, User
from oned.store import Store, StoreError

ADMIN = Caller(0, "oneadmin")
NET = "NAME = red\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = C"


@pytest.fixture
def clock() -> task.Clock:
    return task.Clock()


@pytest.fixture
def cloud(tmp_path, clock):
    config = load_config("DB = [ BACKEND = sqlite ]\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
    pools = Pools()
    store.insert_user(User(0, "oneadmin", "x"))
    pools.put_user(User(0, "oneadmin", "x"))
    cloud = Cloud(pools, store, config, logging.getLogger("t"), clock=clock.seconds)
    cloud.commits = CommitQueue(store, clock.callLater)  # type: ignore[attr-defined]
    vnets.allocate(cloud, ADMIN, NET)
    yield cloud
    store.close()


def vm_text(ip: str = "") -> str:
    nic = f'NIC = [ NETWORK = "red"{f", IP = {ip}" if ip else ""} ]'
    return f"MEMORY = 64\nCPU = 1\n{nic}\n"


def ip_of(cloud: Cloud, vid: int) -> str:
    return cloud.pools.vms.get(vid).template.get_all("NIC")[0]["IP"]  # type: ignore[union-attr]


def test_one_turn_of_allocations_shares_one_commit_with_ids_and_leases_of_their_own(cloud, clock):
    answers = [vms.allocate(cloud, ADMIN, vm_text()) for _ in range(3)]
    assert not any(answer.called for answer in answers)  # nothing answered before the commit
    assert len(cloud.pools.vms) == 0 and cloud.store.list_vm_ids() == []
    clock.advance(0)
    assert [answer.result for answer in answers] == [0, 1, 2]
    assert cloud.commits.groups == 1
    assert cloud.store.list_vm_ids() == [0, 1, 2] and len(cloud.pools.vms) == 3
    assert len({ip_of(cloud, vid) for vid in range(3)}) == 3


def test_an_allocation_the_database_refuses_fails_alone_and_gives_back_its_lease(cloud, clock):
    """10.0.0.50 is held in the database behind memory's back: the group fails, each insert is
    tried alone, VM 1 fails with the store's error, its lease is free again in memory and
    VMs 0 and 2 commit (its id stays a gap: VM 2 took the next one)."""
    address = vn.parse_ip("10.0.0.50")
    cloud.store.take_leases([Lease(0, address, 0, -1)])
    answers = [
        vms.allocate(cloud, ADMIN, vm_text()),
        vms.allocate(cloud, ADMIN, vm_text("10.0.0.50")),
        vms.allocate(cloud, ADMIN, vm_text()),
    ]
    assert address in cloud.pools.vnets.get(0).leases  # reserved until the commit
    clock.advance(0)
    assert answers[0].result == 0 and answers[2].result == 2
    assert isinstance(answers[1].result.value, StoreError)
    answers[1].addErrback(lambda _: None)
    assert cloud.store.list_vm_ids() == [0, 2] and 1 not in cloud.pools.vms
    assert address not in cloud.pools.vnets.get(0).leases
    assert cloud.pools.next_ids["vm"] == 3


def test_a_refused_last_allocation_gives_its_id_back(cloud, clock):
    cloud.store.take_leases([Lease(0, vn.parse_ip("10.0.0.50"), 0, -1)])
    answer = vms.allocate(cloud, ADMIN, vm_text("10.0.0.50"))
    clock.advance(0)
    assert isinstance(answer.result.value, StoreError)
    answer.addErrback(lambda _: None)
    assert cloud.pools.next_ids["vm"] == 0 and len(cloud.pools.vms) == 0
    assert vms.allocate(cloud, ADMIN, vm_text()).called is False
    clock.advance(0)
    assert cloud.store.list_vm_ids() == [0]
