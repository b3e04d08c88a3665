"""Shared test setup: make the repository importable without installing it, and keep every test
(and every process a test starts) out of the operator's home."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$HOME`` is a temporary folder for the whole session, so that nothing a test starts
    (oned, its drivers, paramiko, the CLIs) reads or writes the operator's ``~/.ssh``,
    ``~/.one`` or dot files; the SSH agent is out of reach for the same reason.

    The test hosts' key lives in ``<home>/.ssh`` (tests/e2e/host_fixtures.py), which is where
    the SSH drivers look (paramiko: ``~/.ssh/id_*`` and ``~/.ssh/known_hosts``). The test
    guest's cache stays the operator's ``${XDG_CACHE_HOME:-~/.cache}/onecloud/guest``: building
    it takes minutes, and it is a cache, named as one.
    """
    home = tmp_path_factory.mktemp("home")
    real_home = os.environ.get("HOME") or str(Path.home())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", os.environ.get("XDG_CACHE_HOME") or f"{real_home}/.cache")
        patch.setenv("HOME", str(home))
        patch.delenv("SSH_AUTH_SOCK", raising=False)
        patch.setenv("PATH", f"{_openssh_wrapper(home)}{os.pathsep}{os.environ['PATH']}")
        yield home


def _openssh_wrapper(home: Path) -> Path:
    """A folder whose ``ssh`` runs OpenSSH with the session's key and known_hosts.

    OpenSSH finds ``~/.ssh`` through the password database, not ``$HOME``: without this, the
    ``ssh`` that libvirt runs for ``qemu+ssh://`` URIs would read the operator's keys."""
    folder = home / "bin"
    folder.mkdir()
    ssh_dir = home / ".ssh"
    real = shutil.which("ssh") or "/usr/bin/ssh"
    wrapper = folder / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec {real} -F /dev/null -o IdentitiesOnly=yes -i "{ssh_dir}/id_ed25519" '
        f'-o UserKnownHostsFile="{ssh_dir}/known_hosts" -o GlobalKnownHostsFile=/dev/null "$@"\n'
    )
    wrapper.chmod(0o755)
    return folder


@pytest.fixture(autouse=True)
def no_oned_left() -> Iterator[None]:
    """After each test and all its fixtures: every oned (and ``one start``'s mm_sched) that an
    ``OnedProcess`` made during the test is stopped, even when the fixture that started it
    failed before its own teardown. Autouse, so set up first and torn down last."""
    from tests.functional.oned_process import STARTED

    mark = len(STARTED)
    yield
    for process in STARTED[mark:]:
        process.cleanup()
    del STARTED[mark:]
