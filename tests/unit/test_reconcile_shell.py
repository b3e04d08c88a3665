"""Restarting oned with VMs mid-action (issue 11, finding 1), stopping it with work in flight
(finding 2) and one.vm.recover: the managers on fake driver channels, virtual time and a real
SQLite store that outlives each "life" of oned."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import task

from oned import lifecycle as lc
from oned.api import vm_actions
from oned.api.cloud import Caller, Cloud
from oned.bootstrap import load_pools
from oned.config import load_config
from oned.drivers import Drivers
from oned.errors import ActionNotAllowed, AuthorizationError, BadCall
from oned.lcm import (
    LifeCycle,
    reconcile_at_start,
    recount_usage,
    route_effects,
    transient_vms,
)
from oned.mad import DriverChannel
from oned.records import Host, HostShare, User, Vm
from oned.states import LcmState, VmState
from oned.store import Store
from oned.template import parse
from oned.tm import TransferManager
from oned.vmfiles import VmFiles
from oned.vmm import VirtualMachineManager
from tests.unit.test_lcm_shell import TTYLINUX, FakeChannel
from tests.unit.test_mad_channel import Exited, FakeReactor

ADMIN, HELEN = Caller(0, "oneadmin"), Caller(1, "helen")
LOG = logging.getLogger("t")
L = LcmState


class Oned:
    """One life of oned over ``store``: pools loaded from it, managers on fake channels."""

    def __init__(self, store: Store, var: str, clock: task.Clock, vmm=None) -> None:
        config = load_config("DB = [ BACKEND = sqlite ]\nVM_POLLING_INTERVAL = 0\n")
        pools = load_pools(store, LOG)
        recount_usage(pools)
        self.cloud = Cloud(pools, store, config, LOG, clock=clock.seconds)
        self.cloud.var_dir = var
        self.vmm = vmm or FakeChannel("vmm_kvm")
        self.tm = FakeChannel("tm_ssh")
        drivers = Drivers(vmm={"vmm_kvm": self.vmm}, tm={"tm_ssh": self.tm})  # type: ignore[dict-item]
        self.lcm = LifeCycle(self.cloud, VmFiles(var, threaded=False), LOG, lambda h: None)
        vmm_manager = VirtualMachineManager(self.lcm, drivers, clock, LOG)
        tm_manager = TransferManager(self.lcm, drivers, clock, LOG)
        tm_manager.front_end = "frontend"
        self.lcm.effects = route_effects(vmm_manager, tm_manager, None)
        self.lcm.probe = vmm_manager.probe
        self.cloud.lcm = self.lcm
        self.clock = clock
        self.found = transient_vms(pools)  # as oned does right after loading the pools

    def reconcile(self, batch: int = 500):
        return reconcile_at_start(self.lcm, self.clock, self.found, batch=batch)

    def vm(self, vid: int = 0) -> Vm:
        return self.cloud.pools.vms.get(vid)

    def pair(self, vid: int = 0) -> tuple[int, int]:
        vm = self.cloud.pools.vms.get(vid) or self.cloud.store.get_vm(vid)
        return vm.state, vm.lcm_state

    def act(self, name: str, vid: int = 0) -> None:
        vm_actions.action(self.cloud, ADMIN, name, vid)


@pytest.fixture
def cloud(tmp_path):
    """(store, var, clock, first life of oned with VM 0 PENDING)."""
    clock = task.Clock()
    clock.advance(1_700_000_000)
    config = load_config("DB = [ BACKEND = sqlite ]\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), LOG)
    store.insert_user(User(0, "oneadmin", "x"))
    store.insert_user(User(1, "helen", "x"))
    for hid in (0, 1):
        share = HostShare(max_cpu=200, max_mem=2048 * 1024)
        store.insert_host(Host(hid, f"host0{hid}", "im_kvm", "vmm_kvm", "tm_ssh", share=share))
    store.insert_vm(Vm(0, 0, "ttylinux", parse(TTYLINUX), stime=int(clock.seconds())))
    var = str(tmp_path / "var")
    yield store, var, clock, Oned(store, var, clock)
    store.close()


def vm_log(var: str) -> str:
    with open(f"{var}/0/vm.log", encoding="utf-8") as f:
        return f.read()


def running(one: Oned, hid: int = 0) -> None:
    vm_actions.deploy(one.cloud, ADMIN, 0, hid)
    one.tm.answer("TRANSFER", 0)
    one.vmm.answer("DEPLOY", 0, True, "one-0")


def to_prolog(one: Oned) -> None:
    vm_actions.deploy(one.cloud, ADMIN, 0, 0)


def to_boot(one: Oned) -> None:
    to_prolog(one)
    one.tm.answer("TRANSFER", 0)


def to_shutdown(one: Oned) -> None:
    running(one)
    one.act("shutdown")


def to_cancel(one: Oned) -> None:
    running(one)
    one.act("cancel")


def to_epilog(one: Oned) -> None:
    to_shutdown(one)
    one.vmm.answer("SHUTDOWN", 0)


def to_epilog_stop(one: Oned) -> None:
    running(one)
    one.act("stop")
    one.vmm.answer("SAVE", 0)


def to_prolog_resume(one: Oned) -> None:
    to_epilog_stop(one)
    one.tm.answer("TRANSFER", 0)
    one.act("resume")
    vm_actions.deploy(one.cloud, ADMIN, 0, 1)


def to_boot_after_stop(one: Oned) -> None:
    to_prolog_resume(one)
    one.tm.answer("TRANSFER", 0)


def to_prolog_migrate(one: Oned) -> None:
    running(one)
    vm_actions.migrate(one.cloud, ADMIN, 0, 1, False)
    one.vmm.answer("SAVE", 0)


def to_boot_after_suspend(one: Oned) -> None:
    running(one)
    one.act("suspend")
    one.vmm.answer("SAVE", 0)
    one.act("resume")


IMAGES = "{var}/0/images"
RESENT = [
    (to_prolog, L.PROLOG, "tm", "TRANSFER 0 {var}/0/transfer.0.prolog"),
    (to_boot, L.BOOT, "vmm", "DEPLOY 0 host00 {var}/0/images/deployment.0 -"),
    (to_shutdown, L.SHUTDOWN, "vmm", "SHUTDOWN 0 host00 one-0 -"),
    (to_cancel, L.CANCEL, "vmm", "CANCEL 0 host00 one-0 -"),
    (to_epilog, L.EPILOG, "tm", "TRANSFER 0 {var}/0/transfer.0.epilog"),
    (to_epilog_stop, L.EPILOG_STOP, "tm", "TRANSFER 0 {var}/0/transfer.0.stop"),
    (to_prolog_resume, L.PROLOG_RESUME, "tm", "TRANSFER 0 {var}/0/transfer.1.resume"),
    (to_boot_after_stop, L.BOOT, "vmm", "RESTORE 0 host01 one-0 {var}/0/images/checkpoint"),
    (to_prolog_migrate, L.PROLOG_MIGRATE, "tm", "TRANSFER 0 {var}/0/transfer.1.migrate"),
    (to_boot_after_suspend, L.BOOT, "vmm", "RESTORE 0 host00 one-0 {var}/0/images/checkpoint"),
]


@pytest.mark.parametrize(("reach", "lcm_state", "driver", "request_"), RESENT)
def test_a_restart_resends_the_request_each_transient_state_waited_for(
    cloud, reach, lcm_state, driver, request_
):
    """Finding 1: oned killed while a VM waits for a driver; the next oned sends the request
    again (logged in oned.log and vm.log), and its reply moves the VM on."""
    store, var, clock, first = cloud
    reach(first)
    assert first.pair() == (VmState.ACTIVE, lcm_state)
    again = Oned(store, var, clock)  # the first life was kill -9ed: nothing more from it
    done = again.reconcile()
    assert done.result == 1
    channel = again.tm if driver == "tm" else again.vmm
    assert channel.sent == [request_.format(var=var)]
    assert "reconciling after restart: re-sending" in vm_log(var)
    action = request_.split()[0]
    channel.answer(action, 0, True, "one-0")
    assert again.pair() != (VmState.ACTIVE, lcm_state)


def test_a_pending_terminate_completes_after_restarts_in_shutdown_and_epilog(cloud):
    """Finding 1: an acknowledged terminate reaches DONE across two kills, capacity given back."""
    store, var, clock, first = cloud
    to_shutdown(first)
    second = Oned(store, var, clock)
    second.reconcile()
    second.vmm.answer("SHUTDOWN", 0)
    assert second.pair() == (VmState.ACTIVE, L.EPILOG)
    third = Oned(store, var, clock)
    third.reconcile()
    third.tm.answer("TRANSFER", 0)
    assert third.pair()[0] == VmState.DONE
    assert third.cloud.pools.hosts.get(0).share.running_vms == 0


@pytest.mark.parametrize(
    ("reach", "answer", "after"),
    [
        (lambda one: one.act("stop"), "STATE=a", (VmState.ACTIVE, L.RUNNING)),
        (lambda one: one.act("stop"), "STATE=d", (VmState.ACTIVE, L.EPILOG_STOP)),
        (lambda one: one.act("suspend"), "STATE=d", (VmState.SUSPENDED, L.LCM_INIT)),
        (lambda one: one.act("suspend"), "STATE=-", (VmState.ACTIVE, L.RUNNING)),
    ],
)
def test_a_save_in_flight_is_polled_and_followed(cloud, reach, answer, after):
    """Finding 1: SAVE is not sent twice; the hypervisor says whether it happened."""
    store, var, clock, first = cloud
    running(first)
    reach(first)
    again = Oned(store, var, clock)
    again.reconcile()
    assert again.vmm.sent == ["POLL 0 host00 one-0 -"]
    again.vmm.answer("POLL", 0, True, f"{answer} USEDMEMORY=100")
    assert again.pair() == after
    assert "reconciling after restart: POLL says" in vm_log(var)


@pytest.mark.parametrize(
    ("live", "answer", "host"), [(True, "STATE=a", "host01"), (True, "STATE=d", "host00"),
                                 (False, "STATE=a", "host00"), (False, "STATE=d", "host01")]
)  # fmt: skip
def test_a_migration_in_flight_is_polled_and_followed(cloud, live, answer, host):
    """Finding 1: a live migration found on the new host arrived, else it rolls back; a cold
    one's SAVE is asked of the old host."""
    store, var, clock, first = cloud
    running(first)
    vm_actions.migrate(first.cloud, ADMIN, 0, 1, live)
    again = Oned(store, var, clock)
    again.reconcile()
    assert again.vmm.sent == [f"POLL 0 {'host01' if live else 'host00'} one-0 -"]
    again.vmm.answer("POLL", 0, True, answer)
    vm = again.vm()
    lcm_state = L.PROLOG_MIGRATE if host == "host01" and not live else L.RUNNING
    assert (vm.lcm_state, vm.history[-1].host_name) == (lcm_state, host)
    hosts = again.cloud.pools.hosts
    busy = hosts.get(0).share.running_vms + hosts.get(1).share.running_vms
    assert busy == 1


def test_reconciliation_goes_in_batches_of_reactor_turns(cloud):
    """10,000 transient VMs must not block the reactor: ``batch`` VMs per turn."""
    store, var, clock, first = cloud
    for vid in range(1, 5):
        store.insert_vm(Vm(vid, 0, "t", parse(TTYLINUX), stime=1))
    one = Oned(store, var, clock)
    for vid in range(5):
        vm_actions.deploy(one.cloud, ADMIN, vid, 0)
    again = Oned(store, var, clock)
    done = again.reconcile(batch=2)
    assert len(again.tm.sent) == 2 and not done.called
    assert [c.getTime() for c in clock.getDelayedCalls()] == [clock.seconds()]  # the next turn
    clock.advance(0)
    assert len(again.tm.sent) == 5 and done.result == 5


def test_only_vms_transient_when_oned_loaded_them_are_reconciled(cloud):
    """A deploy the new oned itself sent before its drivers were up is not sent twice."""
    store, var, clock, first = cloud
    again = Oned(store, var, clock)
    to_prolog(again)
    assert again.reconcile().result == 0
    assert len(again.tm.sent) == 1


def test_a_vm_moved_on_before_its_poll_answer_is_left_alone(cloud):
    """An operator's delete between the POLL and its answer wins."""
    store, var, clock, first = cloud
    running(first)
    first.act("stop")
    again = Oned(store, var, clock)
    again.reconcile()
    again.act("delete")
    again.vmm.answer("POLL", 0, True, "STATE=a")
    assert again.pair()[0] == VmState.DONE


# -- graceful stop (finding 2) -----------------------------------------------------------------


def real_vmm(reactor: FakeReactor) -> DriverChannel:
    channel = DriverChannel("vmm_kvm", ["/bin/vmm"], {}, reactor, LOG)
    channel.start()
    reactor.spawned[-1][0].outReceived(b"INIT SUCCESS - -\n")
    return channel


def test_stopping_with_deploys_in_flight_fails_none_and_leaves_them_in_boot(cloud):
    """Finding 2: SIGTERM with a DEPLOY in flight used to fail it ("driver vmm_kvm is
    stopping"), FAILED and capacity given back; now it stays BOOT for the next start."""
    store, var, _, _ = cloud
    reactor = FakeReactor()
    reactor.advance(1_700_000_000)
    one = Oned(store, var, reactor, vmm=real_vmm(reactor))
    to_boot(one)
    transport = reactor.spawned[-1][1]
    assert transport.written[-1].startswith(b"DEPLOY 0 host00 ")
    stopped = one.vmm.stop(grace=10)
    reactor.advance(10)
    assert transport.written[-1] == b"FINALIZE\n"
    reactor.advance(2)
    assert reactor.spawned[-1][1].signals == ["KILL"]
    reactor.spawned[-1][0].processEnded(Exited(-9))
    assert stopped.called
    stored = store.get_vm(0)
    assert one.pair() == (VmState.ACTIVE, L.BOOT) == (stored.state, stored.lcm_state)
    assert one.cloud.pools.hosts.get(0).share.running_vms == 1
    assert "ERROR" not in one.vm().template


def test_a_reply_within_the_grace_period_is_applied_and_its_next_request_waits(cloud):
    """Finding 2: what finishes while oned stops counts; the request it leads to is not sent
    (the channel is stopping) and is not a failure either."""
    store, var, _, _ = cloud
    reactor = FakeReactor()
    reactor.advance(1_700_000_000)
    one = Oned(store, var, reactor, vmm=real_vmm(reactor))
    running_line = b"DEPLOY SUCCESS 0 one-0\n"
    to_boot(one)
    stopped = one.vmm.stop(grace=10)
    reactor.advance(3)
    reactor.spawned[-1][0].outReceived(running_line)
    assert one.pair() == (VmState.ACTIVE, L.RUNNING)
    assert reactor.spawned[-1][1].written[-1] == b"FINALIZE\n"  # drained: no need to wait
    one.act("shutdown")  # refused by the stopping driver: stays SHUTDOWN, reconciled later
    assert one.pair() == (VmState.ACTIVE, L.SHUTDOWN)
    reactor.advance(2)
    assert reactor.spawned[-1][1].signals == ["KILL"]
    reactor.spawned[-1][0].processEnded(Exited(-9))
    assert stopped.called


# -- one.vm.recover ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "after", "sent"),
    [
        (0, (VmState.FAILED, L.LCM_INIT), []),
        (1, (VmState.ACTIVE, L.RUNNING), []),
        (2, (VmState.ACTIVE, L.BOOT), ["DEPLOY 0 host00 {var}/0/images/deployment.0 -"]),
        (3, (VmState.DONE, L.LCM_INIT), ["CANCEL 0 host00 - -"]),
    ],
)
def test_recover_ends_a_transient_state_as_oneadmin_says(cloud, operation, after, sent):
    """onevm recover --failure/--success/--retry/--delete on a VM stuck in BOOT."""
    store, var, clock, first = cloud
    to_boot(first)
    again = Oned(store, var, clock)  # no reconciliation: stuck as the old oned left it
    assert vm_actions.recover(again.cloud, ADMIN, 0, operation) == 0
    assert again.pair() == after
    assert again.vmm.sent == [s.format(var=var) for s in sent]
    assert again.vmm.cancelled == [0]  # whatever was in flight gives way
    capacity = again.cloud.pools.hosts.get(0).share.running_vms
    assert capacity == (1 if after[0] == VmState.ACTIVE else 0)


def test_recover_is_oneadmins_and_only_for_transient_states(cloud):
    """0x200 for the owner, 0x1000 for an unknown operation, 0x800 for a RUNNING VM."""
    store, var, clock, first = cloud
    running(first)
    with pytest.raises(AuthorizationError):
        vm_actions.recover(first.cloud, HELEN, 0, 1)
    with pytest.raises(BadCall, match="unknown operation 4"):
        vm_actions.recover(first.cloud, ADMIN, 0, 4)
    with pytest.raises(ActionNotAllowed, match="VM 0 is ACTIVE/RUNNING"):
        vm_actions.recover(first.cloud, ADMIN, 0, 2)
    assert first.pair() == (VmState.ACTIVE, L.RUNNING)


def test_recover_success_of_a_shutdown_runs_the_epilog(cloud):
    """--success is the SHUTDOWN SUCCESS reply: the table's epilog follows."""
    store, var, clock, first = cloud
    to_shutdown(first)
    vm_actions.recover(first.cloud, ADMIN, 0, 1)
    assert first.pair() == (VmState.ACTIVE, L.EPILOG)
    assert first.tm.sent[-1] == f"TRANSFER 0 {var}/0/transfer.0.epilog"
    assert lc.state_name(*first.pair()) == "ACTIVE/EPILOG"
