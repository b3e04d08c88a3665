"""A group's VM updates merged (oned.store.vm_writes) on every backend: consecutive
compare-and-swaps go as one statement with their new and changed history records and released
leases; when one of them does not hold, each is run alone and only that one writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oned.records import Vm
from oned.states import LcmState, VmState
from oned.store import Store, StoreError
from tests.store.test_networks import a_vm, held, lease, loaded, ranged
from tests.store.test_records import a_record

pytestmark = pytest.mark.db
PENDING = (VmState.PENDING, 0)


def deployed(vm: Vm) -> Vm:
    """``vm`` moved to PROLOG with a new history record."""
    return replace(
        vm, state=VmState.ACTIVE, lcm_state=LcmState.PROLOG, history=[a_record(vm.id, 0)]
    )


def deploys(store: Store, saved: list[bool], vids: range) -> list:
    """The compare-and-swaps that move PENDING VMs ``vids`` to PROLOG, each with a new record."""
    news = [deployed(a_vm(vid)) for vid in vids]
    return [store.vm_update(new, PENDING, new.history, (), saved.append, []) for new in news]


def test_a_run_of_updates_writes_each_vm_its_new_history_and_says_each_held(store: Store):
    for vid in range(3):
        store.insert_vm(a_vm(vid))
    saved: list[bool] = []
    store.run(deploys(store, saved, range(3)))
    assert saved == [True, True, True]
    for vm in store.get_vms(range(3)):
        assert (vm.lcm_state, vm.history) == (LcmState.PROLOG, [a_record(vm.id, 0)])


def test_a_changed_record_is_updated_and_released_leases_go_back(store: Store):
    net = ranged()
    store.insert_network(net)
    for vid in range(2):
        vm = deployed(a_vm(vid))
        store.insert_vm(vm, [lease(net, f"10.0.0.{vid + 1}", vid)])
    saved: list[bool] = []
    writes = []
    for vid in range(2):
        old = deployed(a_vm(vid))
        done = replace(old, state=VmState.DONE, lcm_state=0, history=[a_record(vid, 0, etime=9)])
        released = [lease(net, f"10.0.0.{vid + 1}", vid)]
        expect = (old.state, old.lcm_state)
        writes.append(
            store.vm_update(done, expect, done.history, released, saved.append, old.history)
        )
    store.run(writes)
    assert saved == [True, True] and held(loaded(store)[net.id]) == {}
    assert [vm.history[0].etime for vm in store.get_vms(range(2))] == [9, 9]


def test_an_update_that_does_not_hold_writes_nothing_and_the_others_commit(store: Store):
    """VM 1 moved on in the database: the run falls back to one statement each."""
    for vid in range(3):
        store.insert_vm(a_vm(vid))
    store.update_vm(replace(a_vm(1), state=VmState.HOLD))
    saved: list[bool] = []
    store.run(deploys(store, saved, range(3)))
    assert saved == [True, False, True]
    vms = store.get_vms(range(3))
    assert [vm.state for vm in vms] == [VmState.ACTIVE, VmState.HOLD, VmState.ACTIVE]
    assert [len(vm.history) for vm in vms] == [1, 0, 1]


def test_two_updates_of_one_vm_in_a_run_move_it_once(store: Store):
    store.insert_vm(a_vm(0))
    saved: list[bool] = []
    new = deployed(a_vm(0))
    store.run([store.vm_update(new, PENDING, new.history, (), saved.append, []) for _ in "ab"])
    assert saved == [True, False] and len(store.get_vm(0).history) == 1


def test_a_run_of_updates_that_fails_after_its_merged_rows_leaves_them_as_they_were(
    store: Store,
):
    """VM 2's new record collides with one stored already: the group's transaction fails after
    the merged UPDATE held, and the rows it wrote go back too (the savepoint of a merged run
    never commits on its own, SQLite included)."""
    for vid in range(3):
        store.insert_vm(a_vm(vid))
    store.upsert_history(a_record(2, 0))
    saved: list[bool] = []
    with pytest.raises(StoreError):
        store.run(deploys(store, saved, range(3)))
    assert [vm.state for vm in store.get_vms(range(3))] == [VmState.PENDING] * 3
    assert [len(vm.history) for vm in store.get_vms(range(3))] == [0, 0, 1]
