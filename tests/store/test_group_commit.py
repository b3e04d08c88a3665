"""Group commit on every backend: VM inserts of one reactor turn share one transaction, and one
that the database refuses fails alone while the others commit (oned.commits + Store.run)."""

from __future__ import annotations

import pytest
from twisted.internet import task

from oned.commits import CommitQueue
from oned.store import Store, StoreError
from tests.store.test_networks import a_vm, held, lease, loaded, ranged

pytestmark = pytest.mark.db


def test_inserts_of_one_turn_commit_in_one_transaction(store: Store) -> None:
    clock = task.Clock()
    queue = CommitQueue(store, clock.callLater)
    answers = [queue.submit(store.vm_insert(a_vm(vid)), lambda vid=vid: vid) for vid in range(3)]
    clock.advance(0)
    assert [answer.result for answer in answers] == [0, 1, 2] and queue.groups == 1
    assert store.list_vm_ids() == [0, 1, 2]


def test_a_refused_insert_fails_alone_and_the_others_commit(store: Store) -> None:
    """The middle VM asks for a lease another VM holds: the group's transaction fails, then
    each insert is tried alone; the other two commit, the refused one left nothing."""
    net = ranged()
    store.insert_network(net)
    store.insert_vm(a_vm(1), [lease(net, "10.0.0.9", 1)])
    clock = task.Clock()
    queue = CommitQueue(store, clock.callLater)
    undone: list[BaseException] = []
    first = queue.submit(store.vm_insert(a_vm(2), [lease(net, "10.0.0.2", 2)]), lambda: 2)
    bad = queue.submit(
        store.vm_insert(a_vm(3), [lease(net, "10.0.0.9", 3)]), lambda: 3, undone.append
    )
    last = queue.submit(store.vm_insert(a_vm(4), [lease(net, "10.0.0.4", 4)]), lambda: 4)
    clock.advance(0)
    assert first.result == 2 and last.result == 4
    assert isinstance(bad.result.value, StoreError) and len(undone) == 1
    bad.addErrback(lambda _: None)
    assert store.list_vm_ids() == [1, 2, 4]
    assert held(loaded(store)[net.id]) == {"10.0.0.9": 1, "10.0.0.2": 2, "10.0.0.4": 4}
