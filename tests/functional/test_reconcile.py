"""Crash healing on a real oned with real driver processes (issue 11): kill -9 with VMs in
PROLOG, BOOT, SHUTDOWN and EPILOG, SIGTERM with deploys in flight, and onevm recover.

The hangs come from the dummy VMM's --script and from ``tm_hold``, a TM driver of this test
that leaves a TRANSFER unanswered while a file named after the script's kind (``prolog``,
``epilog``) exists in its hold folder."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

RUNNING, DONE, FAILED = (3, 3), (6, 0), (7, 0)
PROLOG, BOOT, SHUTDOWN, EPILOG = (3, 1), (3, 2), (3, 12), (3, 11)

TM_HOLD = f"""#!{sys.executable}
import os, sys
hold = sys.argv[1]
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "INIT":
        print("INIT SUCCESS - -", flush=True)
    elif words[0] == "FINALIZE":
        break
    elif words[0] == "TRANSFER" and not os.path.exists(
        os.path.join(hold, words[2].rsplit(".", 1)[-1])
    ):
        print(f"TRANSFER SUCCESS {{words[1]}} -", flush=True)
"""


class Cloud:
    def __init__(self, tmp: Path) -> None:
        self.hold = tmp / "hold"
        self.hold.mkdir()
        self.script = tmp / "vmm.yaml"
        self.script.write_text("")
        driver = tmp / "tm_hold"
        driver.write_text(TM_HOLD)
        driver.chmod(0o755)
        extra = (
            f'VM_MAD = [ name = "vmm_hang", executable = "one_vmm_dummy",\n'
            f'          arguments = "--script {self.script}", type = "xml" ]\n'
            f'TM_MAD = [ name = "tm_hold", executable = "{driver}", arguments = "{self.hold}" ]\n'
        )
        self.oned = OnedProcess(tmp / "one", conf_extra=extra).set(VM_POLLING_INTERVAL=1)
        self.oned.start()
        self.one = self.connect()
        self.one.host.allocate("held", "im_dummy", "vmm_hang", "tm_hold")  # 0
        self.one.host.allocate("plain", "im_dummy", "vmm_hang", "tm_dummy")  # 1
        wait_for(lambda: all(self.one.host.info(h).STATE == 2 for h in (0, 1)))

    def set_script(self, text: str) -> None:
        """Replace the dummy VMM's script at once: the driver re-reads it whenever it changes,
        and a file caught half-written (empty) would mean "no rule" to it."""
        part = self.script.with_suffix(".part")
        part.write_text(text)
        os.replace(part, self.script)

    def connect(self) -> pyone.OneServer:
        return pyone.OneServer(self.oned.endpoint, session="oneadmin:onecloud")

    def vm(self, hid: int = 0) -> int:
        vid = self.one.vm.allocate("NAME = v\nCPU = 0.1\nMEMORY = 16")
        self.one.vm.deploy(vid, hid)
        return vid

    def pair(self, vid: int) -> tuple[int, int]:
        vm = self.one.vm.info(vid)
        return vm.STATE, vm.LCM_STATE

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.oned.stop(sig)
        self.oned.start()
        self.one = self.connect()

    def vm_log(self, vid: int) -> str:
        return (self.oned.location / "var" / str(vid) / "vm.log").read_text()


@pytest.fixture
def cloud(tmp_path):
    cloud = Cloud(tmp_path)
    yield cloud
    cloud.oned.stop()


def test_kill_9_with_vms_in_prolog_boot_shutdown_and_epilog_then_all_reach_a_stable_state(cloud):
    """Finding 1: after kill -9 nothing re-sent what was in flight; VMs sat in PROLOG, BOOT,
    SHUTDOWN, EPILOG for good and acknowledged terminates never completed."""
    one, hold = cloud.one, cloud.hold
    cloud.set_script("SHUTDOWN: {outcome: hang}\n")
    shutdown, epilog = cloud.vm(), cloud.vm()
    wait_for(lambda: cloud.pair(shutdown) == RUNNING and cloud.pair(epilog) == RUNNING)
    one.vm.action("terminate", shutdown)
    (hold / "epilog").touch()
    (hold / "prolog").touch()
    cloud.set_script(f'SHUTDOWN: {{"{shutdown}": {{outcome: hang}}}}\n'
                            "DEPLOY: {outcome: hang}\n")  # fmt: skip
    one.vm.action("terminate", epilog)
    prolog, boot = cloud.vm(0), cloud.vm(1)
    wait_for(lambda: cloud.pair(epilog) == EPILOG and cloud.pair(boot) == BOOT)
    found = {vid: cloud.pair(vid) for vid in (prolog, boot, shutdown, epilog)}
    assert found == {prolog: PROLOG, boot: BOOT, shutdown: SHUTDOWN, epilog: EPILOG}

    (hold / "epilog").unlink()
    (hold / "prolog").unlink()
    cloud.set_script("")
    cloud.restart(signal.SIGKILL)
    wanted = {prolog: RUNNING, boot: RUNNING, shutdown: DONE, epilog: DONE}
    wait_for(lambda: {vid: cloud.pair(vid) for vid in wanted} == wanted, timeout=30)
    for vid in wanted:
        assert "reconciling after restart: re-sending" in cloud.vm_log(vid)
    assert "Reconciling 4 VMs found in a transient state" in cloud.oned.log
    shares = [cloud.one.host.info(h).HOST_SHARE.RUNNING_VMS for h in (0, 1)]
    assert shares == [1, 1]


def test_sigterm_with_10_deploys_in_flight_fails_none_and_they_run_after_the_restart(cloud):
    """Finding 2: SIGTERM turned 10 deploys in flight into FAILED ("driver vmm_dummy is
    stopping") and gave their capacity back. Now the 5 that answer within the grace period
    run, the 5 that do not stay BOOT and run once oned is back."""
    cloud.set_script('DEPLOY: {"[0-4]": {delay: 2}, "*": {outcome: hang}}\n')
    vids = [cloud.vm() for _ in range(10)]
    wait_for(lambda: all(cloud.pair(vid) == BOOT for vid in vids))
    time.sleep(0.5)  # BOOT is committed just before DEPLOY is written to the driver
    cloud.oned.stop(signal.SIGTERM, timeout=30)
    assert "requests unanswered at stop; reconciled at the next start" in cloud.oned.log
    for vid in vids:
        log = cloud.vm_log(vid)
        assert "FAILED" not in log
        assert ("New VM state is ACTIVE/RUNNING" in log) == (vid in vids[:5])
    cloud.set_script("")
    cloud.oned.start()
    cloud.one = cloud.connect()
    wait_for(lambda: all(cloud.pair(vid) == RUNNING for vid in vids), timeout=30)
    for vid in vids:
        reconciled = "reconciling after restart: re-sending DEPLOY" in cloud.vm_log(vid)
        assert reconciled == (vid in vids[5:])
    assert cloud.one.host.info(0).HOST_SHARE.RUNNING_VMS == 10


@pytest.mark.parametrize(
    ("flag", "after"),
    [("--success", RUNNING), ("--failure", FAILED), ("--retry", RUNNING), ("--delete", DONE)],
)
def test_onevm_recover_ends_a_vm_stuck_in_boot_each_way(cloud, flag, after):
    """onevm recover on a VM whose DEPLOY never answers (the --retry one answers the second)."""
    cloud.set_script("DEPLOY: {outcome: hang, times: 1}\n")
    vid = cloud.vm()
    wait_for(lambda: cloud.pair(vid) == BOOT)
    done = cloud.oned.run_cli("onevm", "recover", flag, str(vid))
    assert (done.returncode, done.stderr) == (0, "")
    wait_for(lambda: cloud.pair(vid) == after)
    refused = cloud.oned.run_cli("onevm", "recover", "--retry", str(vid))
    assert refused.returncode != 0
    if after != DONE:
        assert "transient state only" in refused.stderr
