"""The lifecycle shell on fake driver channels and a real SQLite store: the bytes each manager
sends, the states each reply leads to, capacity, history, vm.log and what reaches the store."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer, task

from oned import lcm as lcm_module
from oned import lifecycle as lc
from oned.api import vm_actions
from oned.api.cloud import Caller, Cloud
from oned.config import load_config
from oned.drivers import Drivers
from oned.errors import ActionNotAllowed, AuthorizationError
from oned.lcm import LifeCycle, recount_usage, route_effects
from oned.mad import Reply
from oned.pools import Pools
from oned.records import Host, HostShare, User, Vm
from oned.states import HostState, LcmState, VmState
from oned.store import Store
from oned.store.errors import StoreError
from oned.template import parse
from oned.tm import TransferManager
from oned.vmfiles import VmFiles
from oned.vmm import VirtualMachineManager

ADMIN = Caller(0, "oneadmin")
HELEN = Caller(1, "helen")
TTYLINUX = """NAME = ttylinux
CPU = 0.5
MEMORY = 64
DISK = [ SOURCE = "/srv/images/ttylinux.img", TARGET = "hda" ]
DISK = [ TYPE = swap, SIZE = 128, TARGET = "hdb" ]
NIC = [ NETWORK = "One-TD", IP = "192.168.0.140" ]
CONTEXT = [ HOSTNAME = "$NAME", IP = "$NIC[IP]", ID = "$VMID" ]
"""


class FakeChannel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []
        self.pending: dict[tuple[str, int], defer.Deferred] = {}
        self.cancelled: list[int] = []

    def request(self, action, oid, *args, timeout):
        self.sent.append(" ".join([action, str(oid), *map(str, args)]))
        self.pending[(action, oid)] = d = defer.Deferred()
        return d

    def answer(self, action: str, oid: int, ok: bool = True, info: str = "") -> None:
        self.pending.pop((action, oid)).callback(Reply(action, str(oid), ok, info))

    def cancel(self, oid) -> None:
        self.cancelled.append(oid)


@pytest.fixture
def shell(tmp_path):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    config = load_config("DB = [ BACKEND = sqlite ]\nVM_POLLING_INTERVAL = 0\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
    pools = Pools()
    store.insert_user(User(0, "oneadmin", "x"))
    pools.put_user(User(0, "oneadmin", "x"))
    for hid in (0, 1):
        host = Host(hid, f"host0{hid}", "im_kvm", "vmm_kvm", "tm_ssh",
                    share=HostShare(max_cpu=200, max_mem=2048 * 1024))  # fmt: skip
        store.insert_host(host)
        pools.put_host(host)
    cloud = Cloud(pools, store, config, logging.getLogger("t"), clock=clock.seconds)
    cloud.var_dir = str(tmp_path / "var")
    vmm, tmc = FakeChannel("vmm_kvm"), FakeChannel("tm_ssh")
    drivers = Drivers(vmm={"vmm_kvm": vmm}, tm={"tm_ssh": tmc})  # type: ignore[dict-item]
    changed: list[int] = []
    lcm = LifeCycle(
        cloud,
        VmFiles(cloud.var_dir, threaded=False),
        logging.getLogger("t"),
        lambda h: changed.append(h.id),
    )
    vmm_manager = VirtualMachineManager(lcm, drivers, clock, logging.getLogger("t"))
    tm_manager = TransferManager(lcm, drivers, clock, logging.getLogger("t"))
    tm_manager.front_end = "frontend"
    lcm.effects = route_effects(vmm_manager, tm_manager, None)
    cloud.lcm = lcm
    vm = Vm(0, 0, "ttylinux", parse(TTYLINUX), stime=int(clock.seconds()))
    store.insert_vm(vm)
    pools.vms.put(vm)
    yield cloud, clock, vmm, tmc, store, tmp_path
    store.close()


def vm_of(cloud, vid=0) -> Vm:
    return cloud.pools.vms.get(vid)


def test_deploy_runs_prolog_boot_and_running_with_the_wire_of_1_4(shell):
    """PENDING -> PROLOG (TRANSFER prolog) -> BOOT (DEPLOY + deployment file) -> RUNNING."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 1)
    assert (vm_of(cloud).state, vm_of(cloud).lcm_state) == (VmState.ACTIVE, LcmState.PROLOG)
    script = tmp / "var" / "0" / "transfer.0.prolog"
    assert tmc.sent == [f"TRANSFER 0 {script}"]
    assert script.read_text().splitlines() == [
        f"CLONE frontend:/srv/images/ttylinux.img host01:{tmp}/var/0/images/disk.0",
        f"MKSWAP 128 host01:{tmp}/var/0/images/disk.1",
        f"CONTEXT {tmp}/var/0/context.sh host01:{tmp}/var/0/images/disk.2",
    ]
    context = (tmp / "var" / "0" / "context.sh").read_text()
    assert context.splitlines()[1:] == ['HOSTNAME="ttylinux"', 'IP="192.168.0.140"', 'ID="0"']
    tmc.answer("TRANSFER", 0)
    assert vm_of(cloud).lcm_state == LcmState.BOOT
    assert vmm.sent == [f"DEPLOY 0 host01 {tmp}/var/0/images/deployment.0 -"]
    assert (tmp / "var" / "0" / "deployment.0").read_text().startswith("<VM><ID>0</ID>")
    vmm.answer("DEPLOY", 0, True, "one-0")
    vm = vm_of(cloud)
    assert (vm.lcm_state, vm.deploy_id) == (LcmState.RUNNING, "one-0")
    assert store.get_vm(0).lcm_state == LcmState.RUNNING
    share = cloud.pools.hosts.get(1).share
    assert (share.cpu_usage, share.mem_usage, share.running_vms) == (50, 65536, 1)
    log = (tmp / "var" / "0" / "vm.log").read_text()
    assert "New VM state is ACTIVE/PROLOG" in log and "New VM state is ACTIVE/RUNNING" in log


def test_shutdown_runs_epilog_to_done_gives_capacity_back_and_leaves_memory(shell):
    """RUNNING -> SHUTDOWN -> EPILOG -> DONE; the VM is read from the store afterwards."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, True, "one-0")
    vm_actions.action(cloud, ADMIN, "shutdown", 0)
    assert vmm.sent[-1] == "SHUTDOWN 0 host00 one-0 -"
    vmm.answer("SHUTDOWN", 0)
    assert vm_of(cloud).lcm_state == LcmState.EPILOG
    assert (
        (tmp / "var" / "0" / "transfer.0.epilog").read_text().strip().startswith("DELETE host00:")
    )
    tmc.answer("TRANSFER", 0)
    assert vm_of(cloud) is None
    done = store.get_vm(0)
    assert done.state == VmState.DONE and done.history[-1].eetime > 0
    assert cloud.pools.hosts.get(0).share.running_vms == 0


def test_a_deploy_failure_leads_to_failed_with_the_message_and_capacity_back(shell):
    """The driver's message lands in the VM (ERROR) and vm.log; the host has its room back."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, False, "virsh: cannot allocate memory")
    vm = vm_of(cloud)
    assert vm.state == VmState.FAILED
    assert "cannot allocate memory" in vm.template.get("ERROR")["MESSAGE"]
    assert cloud.pools.hosts.get(0).share.cpu_usage == 0
    assert tmc.sent[-1].endswith("transfer.0.delete")


def test_a_missing_disk_source_fails_the_prolog_naming_the_disk(shell):
    """No SOURCE: PROLOG_FAILURE without anything sent to the host."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_of(cloud).template.set("DISK", {"TARGET": "hda"})
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    clock.advance(0)
    vm = vm_of(cloud)
    assert vm.state == VmState.FAILED
    assert "undefined source disk image" in vm.template.get("ERROR")["MESSAGE"]


def test_actions_the_state_does_not_allow_are_refused_naming_it(shell):
    """suspend of a PENDING VM: 0x800 with the state."""
    cloud = shell[0]
    with pytest.raises(ActionNotAllowed, match="VM 0 is PENDING: suspend"):
        vm_actions.action(cloud, ADMIN, "suspend", 0)


def test_deploy_with_enforce_refuses_a_host_without_room(shell):
    """oned's own capacity check: no over-commit by a stale scheduler."""
    cloud = shell[0]
    cloud.pools.hosts.get(0).share.mem_usage = 2000 * 1024
    with pytest.raises(ActionNotAllowed, match="not enough memory"):
        vm_actions.deploy(cloud, ADMIN, 0, 0, True)
    assert vm_of(cloud).state == VmState.PENDING


def test_a_late_reply_for_a_vm_that_moved_on_is_dropped(shell):
    """A duplicated TRANSFER success changes nothing."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    assert cloud.lcm.driver_event(0, lc.Event.PROLOG_SUCCESS) is None
    assert vm_of(cloud).lcm_state == LcmState.BOOT


def test_live_migration_moves_the_vm_and_its_capacity(shell):
    """MIGRATE goes to the old host's driver naming the new host; capacity follows."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, True, "one-0")
    vm_actions.migrate(cloud, ADMIN, 0, 1, True)
    assert vmm.sent[-1] == "MIGRATE 0 host00 one-0 host01"
    vmm.answer("MIGRATE", 0)
    vm = vm_of(cloud)
    assert (vm.lcm_state, vm.history[-1].host_name) == (LcmState.RUNNING, "host01")
    hosts = cloud.pools.hosts
    assert (hosts.get(0).share.running_vms, hosts.get(1).share.running_vms) == (0, 1)


def test_capacity_is_recounted_from_the_vms_at_start(shell):
    """After a crash the hosts' allocated capacity is derived again, never drifted."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 1)
    cloud.pools.hosts.get(1).share.cpu_usage = 999
    recount_usage(cloud.pools)
    assert cloud.pools.hosts.get(1).share.cpu_usage == 50


def helens_vm(cloud, store, text: str = "CPU = 0.5\nMEMORY = 64") -> Vm:
    """VM 1, PENDING, owned by helen (uid 1)."""
    store.insert_user(User(1, "helen", "x"))
    cloud.pools.put_user(User(1, "helen", "x"))
    vm = Vm(1, 1, "hers", parse(text))
    store.insert_vm(vm)
    cloud.pools.vms.put(vm)
    return vm


def assert_nothing_changed(cloud, store, vmm, tmc, vid: int) -> None:
    """The VM is PENDING without history, in memory and in the store; no host holds anything."""
    for vm in (vm_of(cloud, vid), store.get_vm(vid)):
        assert (vm.state, vm.history) == (VmState.PENDING, [])
    for host in cloud.pools.hosts:
        assert (host.share.cpu_usage, host.share.mem_usage, host.share.running_vms) == (0, 0, 0)
    assert (vmm.sent, tmc.sent) == ([], [])


def test_the_owner_may_not_deploy_her_vm_deploy_is_an_admin_action(shell):
    """Issue 10 finding 3: any user could deploy their VM to any host; now 0x200, as in modern
    OpenNebula, and nothing changes."""
    cloud, clock, vmm, tmc, store, tmp = shell
    helens_vm(cloud, store)
    with pytest.raises(AuthorizationError) as refused:
        vm_actions.deploy(cloud, HELEN, 1, 0)
    assert refused.value.message == (
        "[one.vm.deploy] User [1] not authorized to perform ADMIN on VM [1]."
    )
    assert refused.value.code == 0x200
    assert_nothing_changed(cloud, store, vmm, tmc, 1)


@pytest.mark.parametrize("live", [False, True], ids=["migrate", "livemigrate"])
def test_the_owner_may_not_migrate_her_running_vm(shell, live):
    """Issue 10 finding 3: migrate and livemigrate choose a host too; the VM stays where it is."""
    cloud, clock, vmm, tmc, store, tmp = shell
    helens_vm(cloud, store)
    vm_actions.deploy(cloud, ADMIN, 1, 0)
    tmc.answer("TRANSFER", 1)
    vmm.answer("DEPLOY", 1, True, "one-1")
    with pytest.raises(AuthorizationError, match=r"\[one.vm.migrate\] User \[1\] not authorized"):
        vm_actions.migrate(cloud, HELEN, 1, 1, live)
    vm = vm_of(cloud, 1)
    assert (vm.lcm_state, len(vm.history), vm.history[-1].hid) == (LcmState.RUNNING, 1, 0)
    assert cloud.pools.hosts.get(1).share.running_vms == 0


def test_deploy_and_migrate_to_a_disabled_host_are_refused_even_for_oneadmin(shell):
    """Issue 10 finding 3: a DISABLED host took VMs; now 0x800 naming the host and its state."""
    cloud, clock, vmm, tmc, store, tmp = shell
    cloud.pools.hosts.get(1).state = HostState.DISABLED
    with pytest.raises(ActionNotAllowed, match=r"Host \[1\] \(host01\) is DISABLED"):
        vm_actions.deploy(cloud, ADMIN, 0, 1)
    assert_nothing_changed(cloud, store, vmm, tmc, 0)
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, True, "one-0")
    with pytest.raises(ActionNotAllowed, match="is DISABLED"):
        vm_actions.migrate(cloud, ADMIN, 0, 1, True)
    assert vm_of(cloud).history[-1].hid == 0


@pytest.mark.parametrize("enforce", [False, True])
def test_a_vm_larger_than_the_host_is_refused_for_oneadmin_and_reserves_nothing(shell, enforce):
    """Issue 10 finding 3: CPU=10000 MEMORY=10^9 was deployed and made the host look full; now
    refused at deploy whoever asks, with or without enforce, and no capacity is reserved."""
    cloud, clock, vmm, tmc, store, tmp = shell
    helens_vm(cloud, store, "CPU = 10000\nMEMORY = 1000000000")
    with pytest.raises(ActionNotAllowed, match=r"VM \[1\] does not fit in host \[0\]"):
        vm_actions.deploy(cloud, ADMIN, 1, 0, enforce)
    assert_nothing_changed(cloud, store, vmm, tmc, 1)


def test_a_vm_larger_than_the_new_host_is_not_migrated(shell):
    """The total capacity of the destination is checked at migrate too."""
    cloud, clock, vmm, tmc, store, tmp = shell
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    vmm.answer("DEPLOY", 0, True, "one-0")
    cloud.pools.hosts.get(1).share.max_mem = 32 * 1024
    with pytest.raises(ActionNotAllowed, match=r"does not fit in host \[1\] \(host01\): memory"):
        vm_actions.migrate(cloud, ADMIN, 0, 1, False)
    assert (vm_of(cloud).lcm_state, cloud.pools.hosts.get(1).share.running_vms) == (
        LcmState.RUNNING,
        0,
    )


def test_a_host_not_monitored_yet_takes_a_vm_only_without_enforce(shell):
    """Unknown capacity (totals 0): the scheduler's enforced deploy is refused, oneadmin's plain
    deploy is his call."""
    cloud, clock, vmm, tmc, store, tmp = shell
    share = cloud.pools.hosts.get(0).share
    share.max_cpu = share.max_mem = 0
    with pytest.raises(ActionNotAllowed, match="not been monitored yet"):
        vm_actions.deploy(cloud, ADMIN, 0, 0, True)
    assert_nothing_changed(cloud, store, vmm, tmc, 0)
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    assert vm_of(cloud).lcm_state == LcmState.PROLOG


def test_a_driver_outcome_the_database_refused_is_committed_once_it_is_back(shell):
    """Issue 11: with PostgreSQL restarting, DEPLOY SUCCESS failed to commit and the error
    reached no one ("Unhandled error in Deferred"); the VM would sit in BOOT until a restart.
    The outcome is tried again every RETRY seconds. (A mock of the store's failure: a real
    server restart is bench/chaos.py --restart-db.)"""
    cloud, clock, vmm, tmc, store, tmp = shell
    cloud.lcm.call_later = clock.callLater
    vm_actions.deploy(cloud, ADMIN, 0, 0)
    tmc.answer("TRANSFER", 0)
    real, refusals = store.update_vm, [2]

    def restarting(*args, **kwargs):
        if refusals[0]:
            refusals[0] -= 1
            raise StoreError("postgresql://db: the server is shutting down")
        return real(*args, **kwargs)

    store.update_vm = restarting
    vmm.answer("DEPLOY", 0, True, "one-0")
    assert vm_of(cloud).lcm_state == LcmState.BOOT and store.get_vm(0).lcm_state == LcmState.BOOT
    clock.advance(lcm_module.RETRY)
    assert vm_of(cloud).lcm_state == LcmState.BOOT  # refused a second time
    clock.advance(lcm_module.RETRY)
    assert store.get_vm(0).lcm_state == LcmState.RUNNING
    assert vm_of(cloud).lcm_state == LcmState.RUNNING
