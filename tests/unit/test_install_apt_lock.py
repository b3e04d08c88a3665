"""install.sh waits, bounded and saying so, for another apt/dpkg holding the lock (issue 12,
finding 9). apt-get is a fake on PATH: nothing is installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "install.sh"
LOCKED = (
    "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 "
    "(unattended-upgr)"
)


def fake_apt_get(bin_dir: Path, locked_calls: int) -> Path:
    """An apt-get that fails as apt does while locked ``locked_calls`` times, then succeeds;
    it counts its calls in ``calls``."""
    bin_dir.mkdir()
    calls = bin_dir / "calls"
    script = bin_dir / "apt-get"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >>"{calls}"\n'
        f'if [ "$(wc -l <"{calls}")" -le {locked_calls} ]; then echo "{LOCKED}" >&2; exit 100; fi\n'
    )
    script.chmod(0o755)
    return calls


def apt_get_waiting(tmp_path: Path, locked_calls: int, wait: str) -> subprocess.CompletedProcess:
    calls = fake_apt_get(tmp_path / "bin", locked_calls)
    env = dict(os.environ, APT_LOCK_WAIT=wait, APT_LOCK_POLL="0")
    env["PATH"] = f"{calls.parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; apt_get_waiting install -y thing; echo rc=$?'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_apt_get_waits_for_another_apt_holding_the_lock_and_says_so_once(tmp_path):
    """Finding 9: install.sh failed at once when unattended-upgrades held the dpkg lock."""
    result = apt_get_waiting(tmp_path, locked_calls=3, wait="600")
    assert result.stdout.splitlines() == [
        "==> waiting (at most 600 s) for another apt/dpkg to finish: "
        "held by process 1234 (unattended-upgr)",
        "rc=0",
    ], result.stderr
    assert (tmp_path / "bin" / "calls").read_text() == "install -y thing\n" * 4


def test_apt_get_gives_up_after_the_wait_naming_the_lock(tmp_path):
    """Bounded: after APT_LOCK_WAIT seconds apt's own message is shown and install.sh stops."""
    result = apt_get_waiting(tmp_path, locked_calls=1000, wait="0")
    assert "rc=" not in result.stdout
    assert result.stderr.splitlines() == [LOCKED, "install.sh: apt-get install failed"]
