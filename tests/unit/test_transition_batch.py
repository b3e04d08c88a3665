"""Group commit of driver answers (oned.transition_batch) on the lifecycle shell of
test_lcm_shell: fake driver channels, a real SQLite store, a task.Clock as the reactor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oned import lcm as lcm_module
from oned import lifecycle as lc
from oned.api import vm_actions
from oned.states import LcmState, VmState
from oned.store.errors import StoreError
from tests.unit import test_lcm_shell
from tests.unit.test_lcm_shell import ADMIN, vm_of


@pytest.fixture
def grouped(tmp_path):
    """test_lcm_shell's shell: cloud, clock, VMM and TM channels, store, tmp_path."""
    yield from test_lcm_shell.shell.__wrapped__(tmp_path)


class GroupingStore:
    """The real store behind ``run``/``vm_update`` (the group-commit interface): records each
    group, so that a test sees how many transactions the answers took."""

    def __init__(self, store):
        self.store, self.groups = store, []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def vm_update(self, vm, expect, history, released, result, known=None):
        def write(_conn):
            result(self.store.update_vm(vm, expect=expect, history=history, released=released))

        return (vm.id, write)

    def run(self, writes):
        self.groups.append([vid for vid, _ in writes])
        for _, write in writes:
            write(None)


def two_vms_in_prolog(cloud, clock, store):
    second = replace(vm_of(cloud), id=1, history=[])
    store.insert_vm(second)
    cloud.pools.vms.put(second)
    cloud.lcm.group_replies(clock.callLater)
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    vm_actions.deploy(cloud, ADMIN, 1, 1)


def test_the_answers_of_one_turn_are_one_transaction_and_nothing_runs_before_it(grouped):
    cloud, clock, vmm, tmc, store, tmp = grouped
    grouping = cloud.store = GroupingStore(store)
    two_vms_in_prolog(cloud, clock, store)
    tmc.answer("TRANSFER", 0)
    tmc.answer("TRANSFER", 1)
    # Not committed yet: memory and database still say PROLOG, no DEPLOY went out.
    assert [store.get_vm(v).lcm_state for v in (0, 1)] == [LcmState.PROLOG] * 2
    assert [vm_of(cloud, v).lcm_state for v in (0, 1)] == [LcmState.PROLOG] * 2
    assert not vmm.sent
    clock.advance(0)
    assert grouping.groups == [[0, 1]]
    assert [store.get_vm(v).lcm_state for v in (0, 1)] == [LcmState.BOOT] * 2
    assert [s.split()[:2] for s in vmm.sent] == [["DEPLOY", "0"], ["DEPLOY", "1"]]
    vmm.answer("DEPLOY", 0, True, "one-0")
    vmm.answer("DEPLOY", 1, True, "one-1")
    clock.advance(0)
    assert grouping.groups[1] == [0, 1]
    assert [store.get_vm(v).lcm_state for v in (0, 1)] == [LcmState.RUNNING] * 2
    assert cloud.pools.hosts.get(0).share.running_vms == 1


def test_an_answer_whose_vm_a_user_moved_meanwhile_is_stepped_again(grouped):
    """A cancel in the same turn commits first (its reply follows its own commit); the TM
    answer queued before it then no longer fits the VM and is dropped, as a late answer."""
    cloud, clock, vmm, tmc, store, tmp = grouped
    two_vms_in_prolog(cloud, clock, store)
    tmc.answer("TRANSFER", 0)
    tmc.answer("TRANSFER", 1)
    vm_actions.action(cloud, ADMIN, "delete", 0)
    clock.advance(0)
    assert store.get_vm(0).state == VmState.DONE
    assert store.get_vm(1).lcm_state == LcmState.BOOT
    assert [s.split()[:2] for s in vmm.sent] == [["DEPLOY", "1"]]


def test_answers_the_database_refused_are_tried_again_not_lost(grouped):
    cloud, clock, vmm, tmc, store, tmp = grouped
    two_vms_in_prolog(cloud, clock, store)
    real, refusals = store.run, [1]  # the one transaction of the group (update_vm's too)

    def restarting(*args, **kwargs):
        if refusals[0]:
            refusals[0] -= 1
            raise StoreError("postgresql://db: the server is shutting down")
        return real(*args, **kwargs)

    store.run = restarting
    tmc.answer("TRANSFER", 0)
    tmc.answer("TRANSFER", 1)
    clock.advance(0)
    assert [store.get_vm(v).lcm_state for v in (0, 1)] == [LcmState.PROLOG] * 2
    clock.advance(lcm_module.RETRY)
    assert [store.get_vm(v).lcm_state for v in (0, 1)] == [LcmState.BOOT] * 2
    assert [vm_of(cloud, v).lcm_state for v in (0, 1)] == [LcmState.BOOT] * 2


def test_two_answers_for_one_vm_in_a_turn_apply_in_order(grouped):
    """The second is stepped on the state the first left (here: ignored, being a duplicate)."""
    cloud, clock, vmm, tmc, store, tmp = grouped
    two_vms_in_prolog(cloud, clock, store)
    cloud.lcm.driver_reply(0, lc.Event.PROLOG_SUCCESS)
    cloud.lcm.driver_reply(0, lc.Event.PROLOG_SUCCESS)
    clock.advance(0)
    assert store.get_vm(0).lcm_state == LcmState.BOOT
    assert [s.split()[:2] for s in vmm.sent] == [["DEPLOY", "0"]]
