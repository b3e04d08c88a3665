"""oned as a process: start, log, pid file, clean stop, bad config, crash safety."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pyone
import pytest

from tests.functional.oned_process import ROOT, OnedProcess, check_survives_kill_9

LOG_LINE = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \[\w+\]\[[EWID]\]: ")


def test_oned_logs_in_opennebula_format_and_stops_cleanly_on_sigterm(tmp_path):
    """The log header of the seed, a pid file while running, none after SIGTERM."""
    oned = OnedProcess(tmp_path / "one").start()
    pid_file = oned.location / "var" / "oned.pid"
    assert int(pid_file.read_text()) == oned.proc.pid
    assert oned.stop() == 0
    assert not pid_file.exists()
    lines = oned.log.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert "[ONE][I]: Init OpenNebula Log system" in lines[0]
    assert "Log Level: 3 [0=ERROR,1=WARNING,2=INFO,3=DEBUG]" in lines[1]
    assert any("Database schema at revision" in line for line in lines)
    assert any("Created the administrator account oneadmin (uid 0)" in line for line in lines)
    assert lines[-1].endswith("[ONE][I]: oned stopped")


def test_debug_level_0_logs_errors_only(tmp_path):
    """DEBUG_LEVEL is honoured."""
    oned = OnedProcess(tmp_path / "one")
    conf = oned.location / "etc" / "oned.conf"
    conf.write_text(re.sub(r"(?m)^DEBUG_LEVEL\s*=.*$", "DEBUG_LEVEL = 0", conf.read_text()))
    oned.start()
    with pytest.raises(pyone.OneAuthenticationException):
        pyone.OneServer(oned.endpoint, session="oneadmin:bad").userpool.info()
    oned.stop()
    assert "[E]:" in oned.log
    assert "[I]:" not in oned.log and "[D]:" not in oned.log


def test_a_wrong_value_in_oned_conf_stops_oned_naming_attribute_and_line(tmp_path):
    """PORT = "abc" is refused before anything starts."""
    oned = OnedProcess(tmp_path / "one")
    conf = oned.location / "etc" / "oned.conf"
    lines = conf.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("PORT"))
    lines[number - 1] = 'PORT = "abc"'
    conf.write_text("\n".join(lines) + "\n")
    with pytest.raises(RuntimeError) as exc:
        oned.start()
    message = str(exc.value)
    assert "PORT" in message and f"line {number}" in message
    assert not (oned.location / "var" / "one.db").exists()


def test_the_first_start_needs_the_one_auth_file(tmp_path):
    """No ONE_AUTH, no oneadmin: oned says which file it wanted."""
    oned = OnedProcess(tmp_path / "one")
    oned.auth_file.unlink()
    with pytest.raises(RuntimeError, match=r"ONE_AUTH file .*one_auth"):
        oned.start()


def test_a_vm_acknowledged_before_kill_9_is_there_after_restart(tmp_path):
    """Nothing acknowledged is lost: the allocate committed before it answered."""
    oned = OnedProcess(tmp_path / "one").start()
    check_survives_kill_9(oned)
    assert "(up to date)" in oned.log
    oned.stop()


def test_oned_help_describes_its_options():
    """--help is complete."""
    out = subprocess.run(
        [sys.executable, "-m", "oned", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0
    for option in ("-f", "--foreground", "-c", "--config", "--version"):
        assert option in out.stdout
