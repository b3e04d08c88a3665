"""The change marks and the waiting calls behind one.system.changes (oned/changes.py), on
virtual time: what changed after S costs the changes, old or foreign S resets, waiters are
bounded, answered once, and forgotten when cancelled."""

from __future__ import annotations

import tracemalloc

import pytest
from twisted.internet import task

from oned import changes as ch
from oned.pools import Pools
from oned.records import Vm
from oned.template import Template


def test_changes_after_a_seq_list_each_object_once_in_the_order_of_its_last_change():
    log = ch.ChangeLog(limit=10)
    start = log.seq
    log.mark(ch.VM, 1)
    log.mark(ch.HOST, 1)
    log.mark(ch.VM, 1)
    found = log.since(start)
    assert list(found.keys) == [(ch.HOST, 1), (ch.VM, 1)]
    assert found.removed == {}
    assert log.seq == start + 3
    assert list(log.since(start + 2).keys) == [(ch.VM, 1)]
    assert not log.since(log.seq).keys


def test_a_removal_keeps_the_owner_it_had():
    log = ch.ChangeLog(limit=10)
    start = log.seq
    log.mark(ch.IMAGE, 4, owner=7)
    log.mark(ch.HOST, 2, owner=ch.EVERYONE)
    found = log.since(start)
    assert found.removed == {(ch.IMAGE, 4): 7, (ch.HOST, 2): ch.EVERYONE}


def test_a_seq_older_than_the_ring_ahead_of_it_or_of_another_epoch_is_not_remembered():
    log = ch.ChangeLog(limit=4)
    start = log.seq
    assert log.remembers(start) and not log.remembers(start - 1)  # before this epoch
    for oid in range(4):
        log.mark(ch.VM, oid)
    assert log.remembers(start)
    log.mark(ch.VM, 9)
    assert not log.remembers(start)  # its next mark was overwritten
    assert log.remembers(start + 1)
    assert not log.remembers(log.seq + 1)
    assert log.remembers(log.seq, log.epoch)
    assert not log.remembers(log.seq, "0" * 16)


def test_the_sequence_starts_a_new_epoch_before_it_leaves_32_bits():
    log = ch.ChangeLog(limit=4)
    epoch = log.epoch
    log.seq = ch.SEQ_MAX
    log.mark(ch.VM, 1)
    assert log.epoch != epoch and log.seq < ch.SEQ_MAX and log.seq == log.first + 1
    assert list(log.since(log.first).keys) == [(ch.VM, 1)]


def test_every_pool_change_leaves_a_mark_of_its_kind():
    pools = Pools()
    start = pools.changes.seq
    vm = Vm(5, 3, "a", Template())
    pools.vms.put(vm)
    pools.vms.changed(5)
    pools.vms.remove(5)
    pools.vms.remove(5)  # gone already: no mark
    assert pools.changes.seq == start + 3
    found = pools.changes.since(start)
    assert list(found.keys) == [(ch.VM, 5)] and found.removed == {(ch.VM, 5): 3}


def test_the_marks_cost_no_memory_per_object():
    """The ring is allocated once: 20,000 VM changes add nothing but the pool's own objects."""
    log = ch.ChangeLog()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for oid in range(20_000):
        log.mark(ch.VM, oid)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 20_000  # under a byte per change


class Recorder:
    def __init__(self, answers: bool = True) -> None:
        self.checks = 0
        self.expired = 0
        self.answers = answers

    def waiter(self) -> ch.Waiter:
        return ch.Waiter(self.check, self.expire)

    def check(self) -> bool:
        self.checks += 1
        return self.answers

    def expire(self) -> None:
        self.expired += 1


def test_a_change_checks_each_waiter_once_in_the_next_turn():
    log, clock = ch.ChangeLog(limit=8), task.Clock()
    waiters = ch.Waiters(log, clock.callLater)
    seen = Recorder()
    waiters.add(seen.waiter(), 10)
    log.mark(ch.VM, 1)
    log.mark(ch.VM, 2)
    assert seen.checks == 0
    clock.advance(0)
    assert seen.checks == 1 and len(waiters) == 0
    clock.advance(10)
    assert seen.expired == 0  # its timer went with it


def test_a_waiter_that_sees_nothing_keeps_waiting_until_its_timer():
    log, clock = ch.ChangeLog(limit=8), task.Clock()
    waiters = ch.Waiters(log, clock.callLater)
    blind = Recorder(answers=False)
    waiters.add(blind.waiter(), 5)
    log.mark(ch.VM, 1)
    clock.advance(0)
    log.mark(ch.VM, 2)
    clock.advance(0)
    assert blind.checks == 2 and len(waiters) == 1
    clock.advance(5)
    assert blind.expired == 1 and len(waiters) == 0


def test_waiters_are_bounded_cancelled_without_an_answer_and_answered_at_close():
    log, clock = ch.ChangeLog(limit=8), task.Clock()
    waiters = ch.Waiters(log, clock.callLater, limit=2)
    first, second = Recorder(), Recorder()
    one = first.waiter()
    waiters.add(one, 5)
    waiters.add(second.waiter(), 5)
    with pytest.raises(ch.TooManyWaiters, match="2 calls are already waiting"):
        waiters.add(Recorder().waiter(), 5)
    waiters.cancel(one)
    assert len(waiters) == 1 and len(clock.getDelayedCalls()) == 1
    waiters.close()
    assert (first.expired, second.expired) == (0, 1) and len(waiters) == 0
    assert not clock.getDelayedCalls()


def test_a_removal_by_a_uid_too_large_for_a_mark_is_shown_to_oneadmin_only():
    log = ch.ChangeLog(limit=4)
    start = log.seq
    log.mark(ch.VM, 2**31 - 1, owner=2**31 - 1)
    log.mark(ch.VM, 5, owner=2**28 - 3)
    assert log.since(start).removed == {(ch.VM, 2**31 - 1): ch.ADMIN_ONLY, (ch.VM, 5): 2**28 - 3}


def test_a_change_made_while_waiters_are_checked_checks_them_again():
    log, clock = ch.ChangeLog(limit=8), task.Clock()
    waiters = ch.Waiters(log, clock.callLater)
    later = Recorder(answers=False)

    def first_check() -> bool:
        log.mark(ch.VM, 7)  # as if answering this call changed an object
        return True

    waiters.add(ch.Waiter(first_check, lambda: None), 5)
    waiters.add(later.waiter(), 5)
    log.mark(ch.VM, 1)
    clock.advance(0)  # runs the check scheduled by that change too
    assert later.checks == 2 and len(waiters) == 1
