"""one.vm.deploy through the group commit (oned.api.deploy_group) on the lifecycle shell, fake
driver channels and a real SQLite store: the deploys of one reactor turn share one transaction
and are answered after it, the capacity each takes is reserved at once, and a deploy that cannot
be committed answers an error with memory left as the database."""

from __future__ import annotations

import pytest

from oned.api import vm_actions
from oned.commits import CommitQueue
from oned.errors import ActionNotAllowed, NoSuchObject
from oned.records import Vm
from oned.states import LcmState, VmState
from oned.store.errors import StoreError
from oned.template import parse
from tests.unit.test_lcm_shell import ADMIN, shell  # noqa: F401  (the fixture)

SMALL = "NAME = small\nCPU = 1.5\nMEMORY = 64\n"  # 150 of a host's 200: one per host


@pytest.fixture
def grouped(shell):  # noqa: F811
    cloud, clock, vmm, tmc, store, tmp = shell
    cloud.commits = CommitQueue(store, clock.callLater)
    for vid in (1, 2):
        vm = Vm(vid, 0, f"small{vid}", parse(SMALL), stime=int(clock.seconds()))
        store.insert_vm(vm)
        cloud.pools.vms.put(vm)
    return shell


def result_of(d):
    found: list = []
    d.addBoth(found.append)
    return found[0] if found else None


def pair(cloud, store, vid):
    vm, stored = cloud.pools.vms.get(vid), store.get_vm(vid)
    assert (vm.state, vm.lcm_state) == (stored.state, stored.lcm_state)  # memory is the DB
    return vm.state, vm.lcm_state


def usage(cloud, hid):
    share = cloud.pools.hosts.get(hid).share
    return share.cpu_usage, share.running_vms


def test_the_deploys_of_one_turn_share_one_commit_and_are_answered_after_it(grouped):
    cloud, clock, vmm, tmc, store, tmp = grouped
    answers = [vm_actions.deploy(cloud, ADMIN, vid, vid - 1, True) for vid in (1, 2)]
    assert not any(d.called for d in answers) and tmc.sent == []
    assert store.get_vm(1).state == VmState.PENDING  # nothing written before the flush
    clock.advance(0)
    assert [result_of(d) for d in answers] == [1, 2] and cloud.commits.groups == 1
    assert pair(cloud, store, 1) == (VmState.ACTIVE, LcmState.PROLOG)
    assert len(tmc.sent) == 2 and store.get_vm(2).history[-1].hid == 1
    assert usage(cloud, 0) == (150, 1) and usage(cloud, 1) == (150, 1)  # counted once


def test_a_second_deploy_of_the_turn_sees_the_capacity_the_first_reserved(grouped):
    """Both fit an empty host alone; the second is refused before anything is committed."""
    cloud, clock, vmm, tmc, store, tmp = grouped
    first = vm_actions.deploy(cloud, ADMIN, 1, 0, True)
    assert usage(cloud, 0) == (150, 1)  # reserved at once
    with pytest.raises(ActionNotAllowed, match="not enough CPU"):
        vm_actions.deploy(cloud, ADMIN, 2, 0, True)
    clock.advance(0)
    assert result_of(first) == 1 and usage(cloud, 0) == (150, 1)
    assert pair(cloud, store, 2) == (VmState.PENDING, 0)


def test_two_deploys_of_one_vm_in_a_turn_move_it_once(grouped):
    """The second passed the checks on the VM still PENDING; its compare-and-swap fails and it
    answers as a deploy of a VM no longer PENDING, its reservation given back."""
    cloud, clock, vmm, tmc, store, tmp = grouped
    first = vm_actions.deploy(cloud, ADMIN, 1, 0)
    second = vm_actions.deploy(cloud, ADMIN, 1, 1)
    clock.advance(0)
    assert result_of(first) == 1
    refused = result_of(second)
    assert refused.check(ActionNotAllowed) and "ACTIVE/PROLOG" in refused.value.message
    assert usage(cloud, 0) == (150, 1) and usage(cloud, 1) == (0, 0)
    assert len(store.get_vm(1).history) == 1


def test_a_vm_deleted_before_the_commit_is_not_deployed_and_gives_its_room_back(grouped):
    cloud, clock, vmm, tmc, store, tmp = grouped
    answer = vm_actions.deploy(cloud, ADMIN, 1, 0)
    vm_actions.action(cloud, ADMIN, "delete", 1)  # committed at once
    clock.advance(0)
    refused = result_of(answer)
    assert refused.check(NoSuchObject) and store.get_vm(1).state == VmState.DONE
    assert usage(cloud, 0) == (0, 0) and tmc.sent == []


def test_a_user_template_updated_before_the_commit_is_kept(grouped):
    cloud, clock, vmm, tmc, store, tmp = grouped
    answer = vm_actions.deploy(cloud, ADMIN, 1, 0)
    vm_actions.update(cloud, ADMIN, 1, 'LABEL = "web"', 1)
    clock.advance(0)
    assert result_of(answer) == 1
    assert store.get_vm(1).user_template.get_str("LABEL") == "web"
    assert cloud.pools.vms.get(1).user_template.get_str("LABEL") == "web"


def test_a_failed_commit_answers_each_deploy_with_the_error_and_changes_nothing(grouped):
    cloud, clock, vmm, tmc, store, tmp = grouped
    answers = [vm_actions.deploy(cloud, ADMIN, vid, vid - 1) for vid in (1, 2)]

    def refuse(writes):
        raise StoreError("the database went away")

    store.run = refuse
    clock.advance(0)
    for answer in answers:
        assert result_of(answer).check(StoreError)
    del store.run
    for vid in (1, 2):
        assert pair(cloud, store, vid) == (VmState.PENDING, 0)
        assert store.get_vm(vid).history == [] and cloud.pools.vms.get(vid).history == []
    assert usage(cloud, 0) == (0, 0) and usage(cloud, 1) == (0, 0) and tmc.sent == []


def test_the_new_history_record_is_inserted_and_a_changed_one_updated(grouped):
    """The deploy's record is new (inserted straight); PROLOG's success changes it (updated)."""
    cloud, clock, vmm, tmc, store, tmp = grouped
    answer = vm_actions.deploy(cloud, ADMIN, 1, 0)
    clock.advance(0)
    assert result_of(answer) == 1
    assert store.get_vm(1).history[0].pstime > 0
    tmc.answer("TRANSFER", 1)
    clock.advance(0)
    assert store.get_vm(1).history == cloud.pools.vms.get(1).history
    assert store.get_vm(1).history[0].petime > 0
