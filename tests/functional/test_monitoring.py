"""Host monitoring through real driver processes: im_dummy with scripted outcomes, one_hm."""

from __future__ import annotations

import os
import signal
import time

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for


@pytest.fixture
def cloud(tmp_path):
    """oned monitoring every 2 s, a scripted im_dummy (im_script) and an ERROR host hook."""
    script = tmp_path / "im_script.yaml"
    script.write_text(
        '"bad*": {outcome: failure, message: "disk on fire"}\n'
        '"junk*": {outcome: garbage, message: "Segmentation fault (core dumped)"}\n'
        '"hang*": {outcome: hang}\n'
    )
    hook = tmp_path / "on_error.sh"
    hook.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/hook.out\n')
    hook.chmod(0o755)
    extra = (
        f'IM_MAD = [ name = "im_script", executable = "one_im_dummy",\n'
        f'           arguments = "--script {script}" ]\n'
        f'HOST_HOOK = [ name = "error", on = "ERROR", command = "{hook}",\n'
        f'              arguments = "$HID $NAME" ]\n'
    )
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).set(HOST_MONITORING_INTERVAL=2)
    oned.start()
    yield oned, pyone.OneServer(oned.endpoint, session="oneadmin:onecloud"), tmp_path
    oned.stop()


def state(one, hid: int) -> int:
    return one.host.info(hid).STATE


def last_mon_time(one, hid: int) -> int:
    """1.4's LAST_MON_TIME, which pyone's modern bindings do not map."""
    return int(one.host.info(hid).gds_elementtree_node_.findtext("LAST_MON_TIME"))


def test_a_dummy_host_is_monitored_within_seconds_with_its_capacity(cloud):
    """onehost create ... im_dummy: MONITORED, 800 CPU, 16 GB, and the seed's log lines."""
    oned, one, _ = cloud
    assert (
        oned.run_cli("onehost", "create", "host01", "im_dummy", "vmm_dummy", "tm_dummy").returncode
        == 0
    )
    wait_for(lambda: state(one, 0) == 2)
    share = one.host.info(0).HOST_SHARE
    assert (share.MAX_CPU, share.MAX_MEM) == (800, 16777216)
    row = oned.run_cli("onehost", "list").stdout.splitlines()[1].split()
    assert row[1:] == ["host01", "0", "800", "800", "800", "16777216", "16777216", "on"]
    assert "[InM][I]: Monitoring host host01 (0)" in oned.log
    assert "[InM][D]: Host 0 successfully monitored." in oned.log


def test_failing_garbage_and_hanging_hosts_never_delay_the_others(cloud):
    """bad* -> ERROR with its message, junk* -> ERROR quoting the garbage, hang* waits alone."""
    oned, one, tmp_path = cloud
    for name in ("good1", "bad1", "junk1", "hang1", "good2"):
        one.host.allocate(name, "im_script", "vmm_dummy", "tm_dummy")
    wait_for(lambda: state(one, 0) == 2 and state(one, 4) == 2, timeout=10)
    wait_for(lambda: state(one, 1) == 3 and state(one, 2) == 3, timeout=10)
    assert one.host.info(1).TEMPLATE["ERROR"]["MESSAGE"] == "disk on fire"
    junk = one.host.info(2).TEMPLATE["ERROR"]["MESSAGE"]
    assert junk == "Error parsing host information: Segmentation fault (core dumped)"
    assert state(one, 3) == 1  # still MONITORING: the hang is cut by the action timeout
    show = oned.run_cli("onehost", "show", "bad1").stdout
    assert "disk on fire" in show
    out = wait_for(lambda: (tmp_path / "hook.out").exists() and (tmp_path / "hook.out").read_text())
    assert {"1 bad1", "2 junk1"} <= set(out.split("\n"))


def test_a_host_that_answers_again_goes_back_to_monitored(cloud):
    """Flip the script: the ERROR host recovers at its next interval."""
    _, one, tmp_path = cloud
    one.host.allocate("bad1", "im_script", "vmm_dummy", "tm_dummy")
    wait_for(lambda: state(one, 0) == 3)
    (tmp_path / "im_script.yaml").write_text('"nothing*": {outcome: failure}\n')
    wait_for(lambda: state(one, 0) == 2, timeout=10)
    assert "ERROR" not in one.host.info(0).TEMPLATE


def test_disable_and_enable_as_in_the_seed(cloud):
    """disable: off and no longer monitored; enable: monitored again at once."""
    oned, one, _ = cloud
    one.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: state(one, 0) == 2)
    assert oned.run_cli("onehost", "disable", "host01").returncode == 0
    before = last_mon_time(one, 0)
    time.sleep(3)
    assert state(one, 0) == 4 and before == last_mon_time(one, 0)
    assert oned.run_cli("onehost", "enable", "host01").returncode == 0
    wait_for(lambda: state(one, 0) == 2 and before < last_mon_time(one, 0))


def test_killing_the_driver_stops_monitoring_for_at_most_one_interval(cloud):
    """kill -9 of one_im_dummy: oned restarts it and the host is monitored again."""
    oned, one, _ = cloud
    one.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: state(one, 0) == 2)
    pids = oned.children("one_im_dummy")
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    wait_for(lambda: killed_at + 0.5 < last_mon_time(one, 0), timeout=2 + 4)
    assert state(one, 0) == 2
    assert "driver exited" in oned.log and "restarting" in oned.log


def test_a_missing_driver_executable_is_reported_at_start_and_its_hosts_fail(tmp_path):
    """oned names the attribute, its line and the path; the host goes to ERROR saying so."""
    extra = 'IM_MAD = [ name = "im_gone", executable = "/nonexistent/one_im_gone" ]\n'
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        assert "IM_MAD im_gone (oned.conf line" in oned.log
        assert "/nonexistent/one_im_gone not found" in oned.log
        one.host.allocate("h", "im_gone", "vmm_dummy", "tm_dummy")
        wait_for(lambda: state(one, 0) == 3)
        assert "not found" in one.host.info(0).TEMPLATE["ERROR"]["MESSAGE"]
    finally:
        oned.stop()
