"""What install.sh adds for the system: man pages ``man -l`` reads, systemd units that
``systemd-analyze verify`` accepts, and a logrotate snippet that rotates a real oned's log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.functional.oned_process import ROOT, OnedProcess

UNITS = sorted((ROOT / "share" / "systemd").glob("*.service"))
LOGROTATE = ROOT / "share" / "logrotate" / "onecloud"
VENV = Path(sys.executable).parent.parent


def install(tmp_path: Path, system: bool) -> subprocess.CompletedProcess[str]:
    """install.sh's install_man_and_units, sourced, into ``tmp_path`` (system-wide: its
    folders moved under ``tmp_path`` too)."""
    code = (
        f'source "{ROOT}/install.sh"; read_locations "{VENV}"; '
        f'UNIT_DIR="{tmp_path}/units" LOGROTATE_DIR="{tmp_path}/logrotate.d" '
        f'SYSTEM_MAN_DIR="{tmp_path}/man/man1" install_man_and_units "{VENV}" {str(system).lower()}'
    )
    env = {**os.environ, "ONE_LOCATION": str(tmp_path / "one"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        ["bash", "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_self_contained_install_has_its_man_pages_where_man_finds_them_from_path(tmp_path):
    done = install(tmp_path, system=False)
    assert done.returncode == 0, done.stderr
    man1 = tmp_path / "one" / "share" / "man" / "man1"
    assert (man1 / "oned.1").is_file() and (man1 / "onevm.1").is_file()
    assert not (tmp_path / "units").exists(), "units are for the system-wide install only"
    if shutil.which("man"):
        (tmp_path / "one" / "bin").mkdir()
        env = {**os.environ, "PATH": f"{tmp_path}/one/bin:{os.environ['PATH']}"}
        env.pop("MANPATH", None)
        found = subprocess.run(["man", "-w", "oned"], env=env, capture_output=True, text=True)
        assert found.stdout.strip() == str(man1 / "oned.1")


def test_a_system_wide_install_adds_units_and_logrotate_and_starts_nothing(tmp_path):
    done = install(tmp_path, system=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [u.name for u in UNITS]
    assert (tmp_path / "logrotate.d" / "onecloud").read_text() == LOGROTATE.read_text()
    assert (tmp_path / "man" / "man1" / "mm_sched.1").is_file()
    assert "not started" in done.stdout


@pytest.mark.skipif(not shutil.which("man"), reason="man (man-db) is not installed")
def test_man_reads_every_page_without_a_warning(tmp_path):
    install(tmp_path, system=True)
    for page in sorted((tmp_path / "man" / "man1").glob("*.1")):
        shown = subprocess.run(
            ["man", "--warnings", "-l", str(page)],
            env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert shown.returncode == 0 and not shown.stderr, f"{page.name}: {shown.stderr}"
        assert page.stem.upper() in shown.stdout and "OPTIONS" in shown.stdout


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_each_unit_runs_its_command_in_the_foreground_as_oneadmin(unit):
    text = unit.read_text()
    assert re.search(rf"(?m)^ExecStart=/usr/bin/{unit.stem}( start)?( -f)?$", text)
    for line in ("User=oneadmin", "Type=simple", "Restart=on-failure"):
        assert f"\n{line}\n" in text, f"{unit.name}: no {line}"
    assert re.search(r"(?m)^After=network\.target", text)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_units_with_their_man_pages(tmp_path):
    """Verified as installed, but with ExecStart in this venv (no /usr/bin/oned here)."""
    install(tmp_path, system=True)
    units = tmp_path / "verify"
    units.mkdir()
    for unit in UNITS:
        text = unit.read_text().replace("/usr/bin/", f"{VENV}/bin/")
        (units / unit.name).write_text(text)
    verified = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(u) for u in units.iterdir())],
        env={**os.environ, "MANPATH": str(tmp_path / "man")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate is not installed")
def test_logrotate_with_the_shipped_snippet_rotates_a_running_oneds_log(tmp_path):
    """The snippet with this cloud's folders: oned.log renamed, oned signalled, the new
    oned.log written by oned, no line in between lost."""
    oned = OnedProcess(tmp_path / "one").start()
    var = oned.location / "var"
    text = LOGROTATE.read_text().replace("/var/log/one", str(var))
    text = text.replace("/var/run/one", str(var)).replace("su oneadmin oneadmin", "")
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text)
    try:
        rotated = subprocess.run(
            ["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rotated.returncode == 0, rotated.stderr
        deadline = time.monotonic() + 10
        log = var / "oned.log"
        while not (log.exists() and "oned.log reopened" in log.read_text()):
            assert time.monotonic() < deadline, "oned did not reopen oned.log"
            time.sleep(0.05)
    finally:
        assert oned.stop() == 0
    old = (var / "oned.log.1").read_text()
    assert "Init OpenNebula Log system" in old
    assert log.read_text().rstrip().endswith("[ONE][I]: oned stopped")
