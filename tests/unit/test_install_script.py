"""install.sh: the layout it makes and the oneadmin user of a system-wide install.

The layout functions run for real, sourced from install.sh, into a temporary ONE_LOCATION with
the development venv (no pip, no apt); the system-wide install is never run here (it would
create a user and write /etc), so what it does is read from the script.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "install.sh"


def bash(code: str, location: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` run after sourcing install.sh, with ONE_LOCATION set and umask 022."""
    # Sourcing a script without this guard would run a system-wide install: never.
    assert 'if [ "${BASH_SOURCE[0]}" = "$0" ]; then' in SCRIPT.read_text()
    return subprocess.run(
        ["bash", "-c", f'umask 022; source "{SCRIPT}"; {code}'],
        env={**os.environ, "ONE_LOCATION": str(location), "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_self_contained_layout_keeps_oned_conf_and_the_state_folders_private(tmp_path):
    """Issue 10, finding 4: etc/oned.conf (the DB password) was installed 0644 and var/ 0755;
    now 0600 and 0700, and an older install's 0755 var/ is narrowed when re-run."""
    location = tmp_path / "one"
    (location / "var").mkdir(parents=True)
    (location / "var").chmod(0o755)
    venv = Path(sys.prefix)
    done = bash(f'lay_out "{venv}" "{location}/bin"', location)
    assert done.returncode == 0, done.stderr
    assert mode(location / "etc" / "oned.conf") == 0o600
    assert (mode(location / "etc"), mode(location / "var")) == (0o700, 0o700)
    assert (location / "share" / "etc" / "sudoers.d" / "onecloud").is_file()
    assert os.path.islink(location / "bin" / "oned")


def test_the_one_auth_file_made_for_start_is_its_owner_s_only(tmp_path):
    """--start writes oneadmin:<random password> into a 0600 file in a 0700 folder."""
    auth = tmp_path / "home" / ".one" / "one_auth"
    done = bash(f'ensure_one_auth "{sys.prefix}"', tmp_path / "one", ONE_AUTH=str(auth))
    assert done.returncode == 0, done.stderr
    assert (mode(auth), mode(auth.parent)) == (0o600, 0o700)
    assert re.fullmatch(r"oneadmin:[A-Za-z0-9]{16}\n", auth.read_text())


def test_the_system_wide_install_creates_oneadmin_and_starts_oned_as_it():
    """Read, not run: a system user and group oneadmin with OpenNebula's home and a shell for
    SSH to the hosts, the layout owned by it, and `one start` run as oneadmin."""
    text = SCRIPT.read_text()
    assert "groupadd --system" in text
    useradd = re.search(r"useradd (.*?)\"\$ONEADMIN\"\n", text, re.S).group(1)
    for flag in ("--system", "--gid", "--home-dir", "--no-create-home", "--shell /bin/bash"):
        assert flag in useradd
    assert re.search(r"ONEADMIN_HOME=/var/lib/one\n", text)
    assert 'lay_out "$venv" "$bin" "$ONEADMIN"' in text
    assert re.search(r'runuser -u "\$ONEADMIN" --', text)


def test_the_help_explains_the_oneadmin_user_the_modes_and_the_sudo_rules():
    """install.sh --help is where an operator learns what the system-wide install does."""
    out = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for words in ("oneadmin", "/var/lib/one", "0600", "UMASK", "sudoers.d/onecloud", "root"):
        assert words in out.stdout, words
