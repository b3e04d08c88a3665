"""The files drivers write on hosts and on the front end are their owner's alone by default.

Issue 10, finding 4: deployment files (which may hold CONTEXT values and VNC passwords) were
written 0644, and ``SshPool.put`` made every file 0755 unless told otherwise. ``SshPool.put``'s
own shell script runs here through ``run_local`` instead of SSH (the e2e tests run it on hosts).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from drivers.runner import RunResult, run_local, write_local
from drivers.ssh import SshPool


class LocalPool(SshPool):
    """SshPool whose commands run on this machine: put's script, unchanged, without sshd."""

    def run(self, host: str, argv: Sequence[str], *, timeout: float, **kw: object) -> RunResult:
        return run_local(argv, timeout=timeout, input=kw.get("input"))  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_put_makes_a_file_for_its_owner_only_unless_told_otherwise(tmp_path):
    """The default was 0755; a caller that needs more (the host probes) says so."""
    pool = LocalPool()
    assert pool.put("host01", str(tmp_path / "a" / "deployment.0"), b"<domain/>").ok
    assert mode(tmp_path / "a" / "deployment.0") == 0o600
    assert pool.put("host01", str(tmp_path / "a" / "probes.sh"), b"#!/bin/sh\n", 0o700).ok
    assert mode(tmp_path / "a" / "probes.sh") == 0o700
    assert (tmp_path / "a" / "deployment.0").read_bytes() == b"<domain/>"


def test_put_never_leaves_the_data_readable_by_others_before_its_chmod(tmp_path, monkeypatch):
    """The temporary file is made under umask 077: a chmod on PATH records its mode first."""
    bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
    bin_dir.mkdir()
    (bin_dir / "chmod").write_text(f'#!/bin/sh\nstat -c %a "$2" >> {seen}\nexec /bin/chmod "$@"\n')
    (bin_dir / "chmod").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert LocalPool().put("host01", str(tmp_path / "vm" / "deployment.0"), b"secret", 0o644).ok
    assert seen.read_text() == "600\n"
    assert mode(tmp_path / "vm" / "deployment.0") == 0o644


def test_write_local_replaces_a_file_with_the_mode_asked_for(tmp_path):
    """The front end's copy (xen or kvm on localhost): 0600 even over an older 0644 file."""
    target = tmp_path / "vm" / "5" / "images" / "deployment.0"
    target.parent.mkdir(parents=True)
    target.write_text("old")
    target.chmod(0o644)
    assert write_local(str(target), b"new").ok
    assert target.read_bytes() == b"new" and mode(target) == 0o600
    assert os.listdir(target.parent) == ["deployment.0"]


def test_write_local_answers_a_failure_as_a_run_result(tmp_path):
    """A folder that cannot be made is a RunResult with the reason, not an exception."""
    (tmp_path / "file").write_text("")
    result = write_local(str(tmp_path / "file" / "deployment.0"), b"x")
    assert not result.ok and result.reason() == "File exists"
