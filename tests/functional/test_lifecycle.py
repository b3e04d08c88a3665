"""The VM life-cycle end to end through real driver processes (vmm_dummy, tm_dummy/nfs)."""

from __future__ import annotations

import signal
import time

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

RUNNING, DONE, FAILED, PENDING, HOLD, STOPPED, SUSPENDED = (3, 3), 6, 7, 1, 2, 4, 5


@pytest.fixture
def cloud(tmp_path):
    """Two dummy hosts; vmm_script fails its first DEPLOY (fault injection)."""
    script = tmp_path / "vmm.yaml"
    script.write_text(
        'DEPLOY: {outcome: failure, message: "no room on the hypervisor", times: 1}\n'
    )
    extra = (
        'VM_MAD = [ name = "vmm_script", executable = "one_vmm_dummy",\n'
        f'          arguments = "--script {script}", type = "xml" ]\n'
    )
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).set(VM_POLLING_INTERVAL=1)
    oned.start()
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    for name in ("host01", "host02"):
        one.host.allocate(name, "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: all(one.host.info(h).STATE == 2 for h in (0, 1)))
    yield oned, one
    oned.stop()


def pair(one, vid: int) -> tuple[int, int]:
    vm = one.vm.info(vid)
    return vm.STATE, vm.LCM_STATE


def running(one, vid: int) -> bool:
    return pair(one, vid) == RUNNING


def test_deploy_runs_the_vm_and_shutdown_takes_it_to_done(cloud):
    """pend -> prol -> boot -> runn on host01; shutdown -> epil -> done; capacity follows."""
    oned, one = cloud
    vid = one.vm.allocate("NAME = web\nCPU = 0.5\nMEMORY = 128")
    one.vm.deploy(vid, 0)
    wait_for(lambda: running(one, vid))
    vm = one.vm.info(vid)
    assert vm.DEPLOY_ID == f"dummy-{vid}"
    assert [h.HOSTNAME for h in vm.HISTORY_RECORDS.HISTORY] == ["host01"]
    share = one.host.info(0).HOST_SHARE
    assert (share.RUNNING_VMS, share.CPU_USAGE, share.MEM_USAGE) == (1, 50, 131072)
    wait_for(lambda: one.vm.info(vid).MONITORING.MEMORY)  # polled
    one.vm.action("shutdown", vid)
    wait_for(lambda: one.vm.info(vid).STATE == DONE)
    assert one.host.info(0).HOST_SHARE.RUNNING_VMS == 0
    assert [v.ID for v in one.vmpool.info(-2, -1, -1, -1).VM] == []
    log = wait_for(
        lambda: (
            (t := (oned.location / "var" / str(vid) / "vm.log").read_text()).endswith(
                "New VM state is DONE\n"
            )
            and t
        )
    )
    for state in ("ACTIVE/PROLOG", "ACTIVE/BOOT", "ACTIVE/RUNNING", "ACTIVE/EPILOG", "DONE"):
        assert f"New VM state is {state}" in log


def test_a_failed_deploy_leaves_the_vm_failed_with_the_message_and_the_next_one_runs(cloud):
    """HOUSE-STYLE shape 7: the first deploy fails, capacity is back, the next VM runs."""
    oned, one = cloud
    one.host.allocate("host03", "im_dummy", "vmm_script", "tm_dummy")
    wait_for(lambda: one.host.info(2).STATE == 2)
    first = one.vm.allocate("CPU = 1\nMEMORY = 64")
    one.vm.deploy(first, 2)
    wait_for(lambda: one.vm.info(first).STATE == FAILED)
    assert "no room on the hypervisor" in one.vm.info(first).TEMPLATE["ERROR"]["MESSAGE"]
    assert one.host.info(2).HOST_SHARE.RUNNING_VMS == 0
    show = oned.run_cli("onevm", "show", str(first)).stdout
    assert "no room on the hypervisor" in show
    second = one.vm.allocate("CPU = 1\nMEMORY = 64")
    one.vm.deploy(second, 2)
    wait_for(lambda: running(one, second))


def test_actions_in_the_wrong_state_are_refused_naming_it(cloud):
    """suspend of a PENDING VM: OneActionException (0x800) with the state."""
    _, one = cloud
    vid = one.vm.allocate("MEMORY = 64")
    with pytest.raises(pyone.OneActionException, match="PENDING"):
        one.vm.action("suspend", vid)
    with pytest.raises(pyone.OneActionException, match="Unknown action"):
        one.vm.action("explode", vid)


def test_hold_release_stop_resume_suspend_resume_and_migrations(cloud):
    """Every user action of the seed's list walks the VM where 1.4 would."""
    oned, one = cloud
    vid = one.vm.allocate("MEMORY = 64\nCPU = 0.1")
    one.vm.action("hold", vid)
    assert one.vm.info(vid).STATE == HOLD
    one.vm.action("release", vid)
    one.vm.deploy(vid, 0)
    wait_for(lambda: running(one, vid))
    one.vm.action("stop", vid)
    wait_for(lambda: one.vm.info(vid).STATE == STOPPED)
    assert one.host.info(0).HOST_SHARE.RUNNING_VMS == 0
    one.vm.action("resume", vid)
    assert one.vm.info(vid).STATE == PENDING
    one.vm.deploy(vid, 1)
    wait_for(lambda: running(one, vid))
    one.vm.action("suspend", vid)
    wait_for(lambda: one.vm.info(vid).STATE == SUSPENDED)
    one.vm.action("resume", vid)
    wait_for(lambda: running(one, vid))
    one.vm.migrate(vid, 0, True)
    wait_for(lambda: running(one, vid) and one.vm.info(vid).HISTORY_RECORDS.HISTORY[-1].HID == 0)
    # a live migration writes the VM's XML at its new seq, as a deploy does: the driver reads
    # the destination's TM_MAD there (shared storage or not: issue 16)
    seq = one.vm.info(vid).HISTORY_RECORDS.HISTORY[-1].SEQ
    assert (oned.location / "var" / str(vid) / f"deployment.{seq}").is_file()
    one.vm.migrate(vid, 1, False)
    wait_for(lambda: running(one, vid) and one.vm.info(vid).HISTORY_RECORDS.HISTORY[-1].HID == 1)
    hosts = [h.HOSTNAME for h in one.vm.info(vid).HISTORY_RECORDS.HISTORY]
    # deploy, (stop/resume/)deploy, (suspend/)resume, livemigrate, migrate: one record each
    assert hosts == ["host01", "host02", "host02", "host01", "host02"]
    assert [one.host.info(h).HOST_SHARE.RUNNING_VMS for h in (0, 1)] == [0, 1]
    one.vm.action("finalize", vid)
    wait_for(lambda: one.vm.info(vid).STATE == DONE)
    assert one.host.info(1).HOST_SHARE.RUNNING_VMS == 0


def test_deploy_and_migrate_to_a_disabled_host_are_refused_even_for_oneadmin(cloud):
    """Issue 10 finding 3: a VM went to a DISABLED host; now 0x800 naming the host."""
    _, one = cloud
    one.host.status(1, 1)
    vid = one.vm.allocate("MEMORY = 64")
    with pytest.raises(pyone.OneActionException, match=r"Host \[1\] \(host02\) is DISABLED"):
        one.vm.deploy(vid, 1)
    assert pair(one, vid) == (PENDING, 0)
    one.vm.deploy(vid, 0)
    wait_for(lambda: running(one, vid))
    for live in (True, False):
        with pytest.raises(pyone.OneActionException, match="is DISABLED"):
            one.vm.migrate(vid, 1, live)
    assert one.host.info(1).HOST_SHARE.RUNNING_VMS == 0
    one.host.status(1, 0)
    wait_for(lambda: one.host.info(1).STATE == 2)
    one.vm.migrate(vid, 1, True)
    wait_for(lambda: running(one, vid) and one.vm.info(vid).HISTORY_RECORDS.HISTORY[-1].HID == 1)


@pytest.mark.parametrize("enforce", [False, True])
def test_a_vm_larger_than_the_host_is_refused_at_deploy_even_for_oneadmin(cloud, enforce):
    """Issue 10 finding 3: a VM larger than the host (there CPU=10000 MEMORY=10^9, now refused
    at allocate too) was deployed and made the host look full to the scheduler; now refused
    whoever asks, and the host holds nothing for it. The dummy host has 8 CPUs and 16 GB."""
    _, one = cloud
    vid = one.vm.allocate("NAME = huge\nCPU = 16\nMEMORY = 32768")
    with pytest.raises(pyone.OneActionException, match=r"VM \[\d+\] does not fit in host \[0\]"):
        one.vm.deploy(vid, 0, enforce)
    assert pair(one, vid) == (PENDING, 0)
    share = one.host.info(0).HOST_SHARE
    assert (share.RUNNING_VMS, share.CPU_USAGE, share.MEM_USAGE) == (0, 0, 0)


def test_cancel_and_delete_from_running(cloud):
    """cancel ends in DONE; delete (finalize) of a RUNNING VM too; both give capacity back."""
    _, one = cloud
    vids = [one.vm.allocate("MEMORY = 64") for _ in range(2)]
    for vid in vids:
        one.vm.deploy(vid, 0)
    wait_for(lambda: all(running(one, v) for v in vids))
    one.vm.action("cancel", vids[0])
    one.vm.action("delete", vids[1])
    wait_for(lambda: all(one.vm.info(v).STATE == DONE for v in vids))
    assert one.host.info(0).HOST_SHARE.RUNNING_VMS == 0


def test_running_vms_and_capacity_survive_kill_9(cloud):
    """The states and the hosts' allocated capacity are the same after a restart."""
    oned, one = cloud
    vid = one.vm.allocate("MEMORY = 256\nCPU = 2")
    one.vm.deploy(vid, 1)
    wait_for(lambda: running(one, vid))
    oned.stop(signal.SIGKILL)
    oned.start()
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert running(one, vid)
    share = one.host.info(1).HOST_SHARE
    assert (share.RUNNING_VMS, share.CPU_USAGE, share.MEM_USAGE) == (1, 200, 256 * 1024)


REAL_NET = """NAME = "One-TD"
TYPE = RANGED
BRIDGE = br0
NETWORK_SIZE = 4
NETWORK_ADDRESS = 192.168.1.128
"""


def used_ips(one, nid: int) -> list[str]:
    node = one.vn.info(nid).gds_elementtree_node_
    return sorted(
        lease.findtext("IP") for lease in node.iter("LEASE") if lease.findtext("USED") == "1"
    )


@pytest.mark.parametrize("ending", ["shutdown", "failure", "delete"])
def test_leases_go_back_when_the_vm_is_done_failed_or_deleted(cloud, tmp_path, ending):
    """The NIC's lease is free again once the VM reaches DONE or FAILED."""
    _, one = cloud
    nid = one.vn.allocate(REAL_NET, -1)
    one.host.allocate("host03", "im_dummy", "vmm_script", "tm_dummy")
    wait_for(lambda: one.host.info(2).STATE == 2)
    if ending == "failure":
        one.vm.deploy(one.vm.allocate("MEMORY = 8"), 2)  # uses up the scripted failure... once
    vid = one.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD", IP = 192.168.1.130 ]')
    assert used_ips(one, nid) == ["192.168.1.130"]
    if ending == "failure":
        (tmp_path / "vmm.yaml").write_text('DEPLOY: {outcome: failure, message: "boom"}\n')
        time.sleep(1.1)  # the script is re-read when its mtime changes
        one.vm.deploy(vid, 2)
        wait_for(lambda: one.vm.info(vid).STATE == FAILED)
    else:
        one.vm.deploy(vid, 0)
        wait_for(lambda: running(one, vid))
        one.vm.action(ending, vid)
        wait_for(lambda: one.vm.info(vid).STATE == DONE)
    assert used_ips(one, nid) == []


def test_cancel_removes_the_vm_folder_from_its_host_with_the_real_tm(tmp_path):
    """Issue 16: after cancel, the real one_tm's DELETE runs; nothing of the DONE VM stays.

    tm_nfs (VM_DIR is oned's var dir) and tm_ssh on localhost (one_tm works locally).
    """
    oned = OnedProcess(tmp_path / "one").set(VM_POLLING_INTERVAL=1).start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        hosts = [one.host.allocate(h, "im_dummy", "vmm_dummy", tm)
                 for h, tm in (("host01", "tm_nfs"), ("localhost", "tm_ssh"))]  # fmt: skip
        wait_for(lambda: all(one.host.info(h).STATE == 2 for h in hosts))
        disk = tmp_path / "disk.img"
        disk.write_bytes(b"x" * 65536)
        for hid in hosts:
            vid = one.vm.allocate(f'MEMORY = 64\nDISK = [ SOURCE = "{disk}", TARGET = hda ]')
            one.vm.deploy(vid, hid)
            wait_for(lambda vid=vid: running(one, vid), timeout=60)
            images = oned.location / "var" / str(vid) / "images"
            assert (images / "disk.0").read_bytes() == disk.read_bytes()
            one.vm.action("cancel", vid)
            wait_for(lambda vid=vid: one.vm.info(vid).STATE == DONE, timeout=60)
            wait_for(lambda images=images: not images.exists(), timeout=60)
            assert one.vm.info(vid).STATE == DONE
            assert (oned.location / "var" / str(vid) / "transfer.0.delete").exists()
    finally:
        oned.stop()
