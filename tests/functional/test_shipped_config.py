"""Shipped configuration files against a real oned (issue 16, item 6): sched.conf as shipped
changes nothing and warns of nothing, and an edit takes effect when mm_sched starts again; an
edit of a driver's file (im_ec2.conf, against moto's EC2) takes effect at oned's next start."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyone

from tests.functional.moto_region import MotoRegion
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

SHIPPED = Path(__file__).resolve().parents[2] / "share" / "etc" / "sched.conf"


def started_log(oned) -> str:
    """Start mm_sched, wait for its configuration header, stop it; sched.log's new text."""
    log_file, pid_file = oned.location / "var" / "sched.log", oned.location / "var" / "sched.pid"
    before = log_file.read_text() if log_file.exists() else ""
    proc = subprocess.Popen([sys.executable, "-m", "scheduler"], env=oned.env)
    try:
        # the pid file is written once the header is logged and SIGTERM stops it cleanly
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
        wait_for(lambda: not pid_file.exists(), timeout=15)
    return log_file.read_text()[len(before) :]


def test_an_edit_of_the_shipped_sched_conf_takes_effect_at_the_next_start(oned):
    conf = oned.location / "etc" / "sched.conf"
    shutil.copy(SHIPPED, conf)
    first = started_log(oned)
    assert f"Configuration: {conf}" in first
    assert "    MAX_DISPATCH = 30" in first and "[W]" not in first
    conf.write_text(SHIPPED.read_text().replace("#MAX_DISPATCH = 30", "MAX_DISPATCH = 7"))
    second = started_log(oned)
    assert "    MAX_DISPATCH = 7" in second and "MAX_DISPATCH = 30" not in second


def test_an_edit_of_the_shipped_im_ec2_conf_takes_effect_at_one_stop_one_start(
    tmp_path, monkeypatch
):
    """A driver file: the shipped im_ec2.conf pointed at a local EC2 region (moto) gives the
    host 5 small instances (TOTALCPU 500); SMALL_INSTANCES=2 gives 200 after a restart."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws: the credentials file is used
    stanza = (
        'IM_MAD = [ name = "im_ec2", executable = "one_im_ec2",\n'
        '           arguments = "im_ec2/im_ec2.conf" ]\n'
    )
    with MotoRegion() as region:
        oned = OnedProcess(tmp_path / "one", conf_extra=stanza).set(HOST_MONITORING_INTERVAL=1)
        etc = oned.location / "etc"
        (etc / "im_ec2").mkdir(parents=True)
        (etc / "ec2").mkdir()
        credentials = etc / "ec2" / "credentials.yaml"
        credentials.write_text("access_key_id: AKIATEST\nsecret_access_key: test\n")
        credentials.chmod(0o600)
        shipped = (SHIPPED.parent / "im_ec2" / "im_ec2.conf").read_text()
        assert "SMALL_INSTANCES=5\n" in shipped
        account = f"ENDPOINT={region.endpoint}\nCREDENTIALS=ec2/credentials.yaml\n"
        shipped = shipped.replace("ENDPOINT=\n", "").replace("CREDENTIALS=\n", account)
        conf = etc / "im_ec2" / "im_ec2.conf"
        conf.write_text(shipped)
        oned.start()
        try:
            one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
            hid = one.host.allocate("ec2", "im_ec2", "vmm_dummy", "tm_dummy")
            wait_for(lambda: one.host.info(hid).HOST_SHARE.MAX_CPU == 500, timeout=30)
            oned.stop()
            conf.write_text(shipped.replace("SMALL_INSTANCES=5\n", "SMALL_INSTANCES=2\n"))
            oned.start()
            wait_for(lambda: one.host.info(hid).HOST_SHARE.MAX_CPU == 200, timeout=30)
        finally:
            oned.stop()


def test_an_edit_of_a_shipped_driver_file_takes_effect_at_the_next_start(tmp_path):
    """im_dummy.conf as shipped sets nothing (TOTALCPU 800); CPU = 1600 uncommented in it gives
    1600 after a restart, and a flag in the IM_MAD's arguments wins over the file."""
    stanza = (
        'IM_MAD = [ name = "im_file", executable = "one_im_dummy",\n'
        '           arguments = "im_dummy/im_dummy.conf" ]\n'
        'IM_MAD = [ name = "im_flag", executable = "one_im_dummy",\n'
        '           arguments = "im_dummy/im_dummy.conf --cpu 300" ]\n'
    )
    oned = OnedProcess(tmp_path / "one", conf_extra=stanza).set(HOST_MONITORING_INTERVAL=1)
    conf = oned.location / "etc" / "im_dummy" / "im_dummy.conf"
    conf.parent.mkdir(parents=True)
    shipped = (SHIPPED.parent / "im_dummy" / "im_dummy.conf").read_text()
    conf.write_text(shipped)
    oned.start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        hid = one.host.allocate("h1", "im_file", "vmm_dummy", "tm_dummy")
        flagged = one.host.allocate("h2", "im_flag", "vmm_dummy", "tm_dummy")
        wait_for(lambda: one.host.info(hid).HOST_SHARE.MAX_CPU == 800, timeout=30)
        oned.stop()
        conf.write_text(shipped + "CPU = 1600\n")
        oned.start()
        wait_for(lambda: one.host.info(hid).HOST_SHARE.MAX_CPU == 1600, timeout=30)
        wait_for(lambda: one.host.info(flagged).HOST_SHARE.MAX_CPU == 300, timeout=30)
    finally:
        oned.stop()
