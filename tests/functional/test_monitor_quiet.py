"""An error line in oned.log means an error (issue 16 item 5): creating a healthy host, and a
probe cut off by a stop of oned, log no ``[InM][E]`` line; the host ends MONITORED."""

from __future__ import annotations

import re
from pathlib import Path

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

ERROR_LINE = re.compile(r"^.*\[\w+\]\[E\].*$", re.M)


def scripted_oned(tmp_path: Path, rules: str, **settings: object) -> tuple[OnedProcess, Path]:
    """An oned (not started) with IM_MAD im_script: im_dummy run by the YAML ``rules`` (a file
    it re-reads when it changes: drivers/im_dummy.py), and oned.conf ``settings``."""
    script = tmp_path / "im_script.yaml"
    script.write_text(rules)
    extra = (
        f'IM_MAD = [ name = "im_script", executable = "one_im_dummy",\n'
        f'           arguments = "--script {script}" ]\n'
    )
    return OnedProcess(tmp_path / "one", conf_extra=extra).set(**settings), script


@pytest.fixture
def cloud(tmp_path):
    """oned monitoring every second; im_script's slow* hosts answer after 60 s."""
    oned, script = scripted_oned(tmp_path, '"slow*": {delay: 60}\n', HOST_MONITORING_INTERVAL=1)
    oned.start()
    yield oned, script
    oned.stop()


def host_state(oned: OnedProcess, hid: int) -> int:
    return pyone.OneServer(oned.endpoint, session="oneadmin:onecloud").host.info(hid).STATE


def monitorings(oned: OnedProcess, hid: int) -> int:
    return oned.log.count(f"[InM][D]: Host {hid} successfully monitored.")


def test_creating_a_healthy_host_logs_no_error(cloud):
    """onehost create with im_dummy, then three monitorings: not one [E] line in oned.log."""
    oned, _ = cloud
    created = oned.run_cli("onehost", "create", "host01", "im_dummy", "vmm_dummy", "tm_dummy")
    assert created.returncode == 0, created.stderr
    wait_for(lambda: monitorings(oned, 0) >= 3, timeout=20)
    assert host_state(oned, 0) == 2
    assert ERROR_LINE.findall(oned.log) == []


def test_a_probe_cut_off_by_a_stop_is_monitored_again_without_an_error(cloud):
    """A healthy but slow host is MONITORING when oned stops; the next oned monitors it again at
    once, quietly (1.4's "stuck in MONITORING" was an [E] line for a probe nobody waited for)."""
    oned, script = cloud
    assert (
        oned.run_cli("onehost", "create", "slow01", "im_script", "vmm_dummy", "tm_dummy").returncode
        == 0
    )
    wait_for(lambda: host_state(oned, 0) == 1)
    assert oned.stop() == 0
    script.write_text("{}\n")  # no rule: answered at once
    oned.start()
    wait_for(lambda: monitorings(oned, 0) >= 1, timeout=20)
    assert host_state(oned, 0) == 2
    assert "its last MONITOR was cut off; monitoring it again" in oned.log
    assert ERROR_LINE.findall(oned.log) == []
