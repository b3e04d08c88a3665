"""DONE VMs at scale (issue 18) on every backend: pages of ids straight from the index, the
purge of old ones in batches, and ids that stay used after a purge."""

from __future__ import annotations

import threading

import pytest

from oned.records import History, Vm
from oned.states import HistoryReason, VmState
from oned.store import Store, StoreError, done
from tests.store.targets import Target
from tests.store.test_user_template import a_vm

pytestmark = pytest.mark.db

DAY = 86_400
NOW = 1_790_000_000


def a_done_vm(vid: int, ended: int, uid: int = 0) -> Vm:
    vm = a_vm(vid)
    vm.uid, vm.state, vm.etime = uid, VmState.DONE, ended
    vm.history = [History(vid, 0, "h", 0, "/d", "vmm", "tm", 1, ended, reason=HistoryReason.USER)]
    return vm


def fill(store: Store) -> None:
    """VMs 0..9 DONE, ended 10..1 days before NOW (so 0 is the oldest, 9 ended a day ago),
    uid 0 for the even ones and 1 for the odd ones; VMs 10 and 11 PENDING."""
    for vid in range(10):
        store.insert_vm(a_done_vm(vid, NOW - (10 - vid) * DAY, uid=vid % 2))
    store.insert_vm(a_vm(10))
    store.insert_vm(a_vm(11))


def test_a_page_of_done_vms_is_an_offset_and_a_size_in_id_order(store: Store) -> None:
    """one.vmpool.info(flt, offset, -size, 6) reads its page of ids and nothing else."""
    fill(store)
    done = int(VmState.DONE)
    assert store.list_vm_ids(state=done, include_done=True, offset=3, limit=4) == [3, 4, 5, 6]
    assert store.list_vm_ids(state=done, include_done=True, offset=8, limit=4) == [8, 9]
    assert store.list_vm_ids(state=done, include_done=True, offset=20, limit=4) == []
    assert store.list_vm_ids(uid=1, state=done, include_done=True, offset=1, limit=2) == [3, 5]
    assert store.list_vm_ids(include_done=True, offset=9, limit=2) == [9, 10]
    assert store.list_vm_ids(include_done=True, start=8, end=10) == [8, 9, 10]


def test_a_dry_run_counts_the_done_vms_that_ended_before_the_time(store: Store) -> None:
    fill(store)
    assert store.count_done(NOW - 5 * DAY) == 5
    assert store.count_done(NOW) == 10
    assert store.count_done(1) == 0


def test_the_purge_removes_the_oldest_done_vms_and_their_history_in_batches(
    store: Store,
) -> None:
    """Batches of 2, at most 3 VMs a call: VMs 0..2 go, their history with them; the
    PENDING VMs and the DONE VMs that ended later stay, with theirs."""
    fill(store)
    assert store.purge_done(NOW - 5 * DAY, batch=2, limit=3) == 3
    assert [vm.id for vm in store.get_vms(range(12))] == list(range(3, 12))
    assert store.purge_done(NOW - 5 * DAY, batch=2, limit=100) == 2
    assert store.purge_done(NOW - 5 * DAY, batch=2, limit=100) == 0
    left = store.get_vms(range(12))
    assert [vm.id for vm in left] == list(range(5, 12))
    assert [len(vm.history) for vm in left] == [1] * 5 + [0, 0]
    assert store.load_vms()[0].id == 10  # the live VMs load as before


def test_purged_ids_are_never_given_again_even_the_highest(store: Store, target: Target) -> None:
    """The last VMs ever created are DONE and purged: the next VM id is still after them."""
    for vid in range(4):
        store.insert_vm(a_done_vm(vid, NOW - DAY))
    assert store.purge_done(NOW, batch=3) == 4
    assert store.get_vms(range(4)) == []
    store.close()
    assert target.open().next_oids()["vm"] == 4


def test_a_purge_on_a_worker_thread_leaves_the_store_usable_meanwhile(store: Store) -> None:
    """purge_done runs on a connection of its own while oned's thread inserts VMs."""
    for vid in range(300):
        store.insert_vm(a_done_vm(vid, NOW - DAY))
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(store.purge_done(NOW, batch=50)))
    worker.start()
    for vid in range(300, 320):
        store.insert_vm(a_vm(vid))
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert result == [300]
    assert [vm.id for vm in store.load_vms()] == list(range(300, 320))
    assert store.next_oids()["vm"] == 320


def test_a_batch_naming_a_vm_not_done_removes_nothing(store: Store, target: Target) -> None:
    """The delete checks what the query found: a live VM in a batch rolls the batch back."""
    fill(store)
    engine = target.engine()
    try:
        refused = pytest.raises(StoreError, match=r"1 of VMs 0\.\.10 are not DONE")
        with refused, engine.begin() as conn:
            done.delete(conn, [0, 10])
    finally:
        engine.dispose()
    assert [len(vm.history) for vm in store.get_vms([0, 10])] == [1, 0]
    assert store.next_oids()["vm"] == 12
