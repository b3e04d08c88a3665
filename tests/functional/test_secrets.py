"""Secrets on disk and in logs (issue 10, findings 4 and 5's log part), against a real oned.

oned is started with the test's own umask (022, as a shell gives), so every mode below comes
from oned's UMASK and the modes it asks for, not from the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import xmlrpc.client
from pathlib import Path

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.store.targets import ServerUnreachable, scratch_database, skipped_backends
from tests.waiting import wait_for

LOG_LINE = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \[\w+\]\[[EWID]\]: ")
DB_PASSWORD = "Db-Pa55-never-logged"
CONTEXT_SECRET = "ctx-secret-never-logged"


@pytest.fixture(autouse=True)
def shell_umask():
    """oned inherits 022 from the test, as from a login shell."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_a_vm(oned: OnedProcess) -> Path:
    """A VM with a CONTEXT secret RUNNING on the dummy drivers; its folder."""
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    one.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == 2)
    vid = one.vm.allocate(
        f'NAME = secret\nMEMORY = 64\nCONTEXT = [ TOKEN = "{CONTEXT_SECRET}", TARGET = "hdb" ]'
    )
    one.vm.deploy(vid, 0)
    wait_for(lambda: (one.vm.info(vid).STATE, one.vm.info(vid).LCM_STATE) == (3, 3))
    return oned.location / "var" / str(vid)


def test_the_db_password_of_oned_conf_never_reaches_oned_log(tmp_path):
    """Finding 4: oned printed oned.conf, DB PASSWD included, into oned.log at every start."""
    oned = OnedProcess(tmp_path / "one").set(
        DB=f'[ BACKEND = "sqlite", USER = "oneadmin", PASSWD = "{DB_PASSWORD}" ]'
    )
    oned.start()
    oned.stop()
    assert DB_PASSWORD not in oned.log
    assert "PASSWD=***" in oned.log  # the header still shows that one is set


def test_database_logs_vm_folders_and_their_files_are_private(tmp_path):
    """Finding 4: one.db, oned.log, var/, VM folders, deployment files, context.sh, transfer
    scripts and driver logs were 0644/0755 (driver logs 0755); all are now their user's only."""
    oned = OnedProcess(tmp_path / "one").start()
    folder = run_a_vm(oned)
    var = oned.location / "var"
    try:
        files = [var / "one.db", var / "one.db-wal", var / "oned.log", folder / "vm.log"]
        files += [var / f"{name}.log" for name in ("im_dummy", "vmm_dummy", "tm_dummy")]
        files += sorted(folder.glob("deployment.*")) + sorted(folder.glob("transfer.*"))
        files += [folder / "context.sh"]
        assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
        assert (mode(var), mode(folder)) == (0o700, 0o700)
        assert CONTEXT_SECRET in (folder / "context.sh").read_text()
    finally:
        oned.stop()
    assert CONTEXT_SECRET not in oned.log


def test_umask_027_lets_oneadmin_s_group_read_and_no_one_else(tmp_path):
    """The operator's opt-in: UMASK = 027 gives 0640 files and 0750 folders."""
    oned = OnedProcess(tmp_path / "one").set(UMASK="027").start()
    folder = run_a_vm(oned)
    oned.stop()
    var = oned.location / "var"
    assert (mode(var / "one.db"), mode(var / "oned.log"), mode(folder / "context.sh")) == (
        0o640,
        0o640,
        0o640,
    )
    assert (mode(var), mode(folder)) == (0o750, 0o750)


def test_an_older_install_s_readable_database_and_log_are_tightened_with_a_warning(tmp_path):
    """Finding 4 for existing installs: one.db and oned.log of mode 0644 become 0600 at start,
    and oned.log says which files it changed."""
    oned = OnedProcess(tmp_path / "one").start()
    oned.stop()
    var = oned.location / "var"
    for path, old in ((var, 0o755), (var / "one.db", 0o644), (var / "oned.log", 0o644)):
        path.chmod(old)
    oned.start()
    oned.stop()
    assert (mode(var), mode(var / "one.db"), mode(var / "oned.log")) == (0o700, 0o600, 0o600)
    warnings = [line for line in oned.log.splitlines() if "[ONE][W]" in line]
    changed = f"{var / 'one.db'} had mode 0644"
    assert any(changed in line and "now 0600" in line for line in warnings), warnings


def failed_login(oned: OnedProcess, name: str) -> None:
    server = xmlrpc.client.ServerProxy(oned.endpoint)
    # A refused body is fine too: what matters is what reached oned.log.
    with contextlib.suppress(xmlrpc.client.Error, OSError):
        server.one.userpool.info(f"{name}:password")


def test_a_user_name_with_a_newline_cannot_forge_a_line_in_oned_log(tmp_path):
    """Finding 5: a newline in the user name of a failed login wrote a line of the client's."""
    oned = OnedProcess(tmp_path / "one").start()
    forged = "Mon Jan 01 00:00:00 2024 [ReM][I]: forged"
    failed_login(oned, f"eve\n{forged}")
    oned.stop()
    lines = oned.log.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), [line[:120] for line in lines]
    assert not any(line.startswith(forged) for line in lines)


@pytest.mark.parametrize("size", [60_000, 1_000_000])
def test_a_huge_user_name_adds_at_most_a_few_kilobytes_to_oned_log(tmp_path, size):
    """Finding 5: each failed login with a 7 MB user name added 7 MB to oned.log."""
    oned = OnedProcess(tmp_path / "one").start()
    before = len(oned.log)
    failed_login(oned, "e" * size)
    oned.stop()
    grown = oned.log[before:]
    assert len(grown) < 12_000, grown[:300]
    assert "e" * 5_000 not in grown


@pytest.mark.db
def test_the_postgresql_password_is_masked_in_the_url_oned_logs_at_connect(tmp_path):
    """Finding 4 on a server database: the test server trusts 127.0.0.1, so any password is
    accepted, and oned.log shows the URL it connected to with ``***`` for it."""
    if "postgresql" in skipped_backends():
        pytest.skip("ONECLOUD_SKIP_DB names postgresql")
    databases = scratch_database("postgresql", prefix="onecloud_secret")
    try:
        db = next(databases)
    except ServerUnreachable as exc:
        pytest.fail(str(exc))
    try:
        oned = OnedProcess(tmp_path / "one").set(
            DB=f'[ BACKEND = "postgresql", SERVER = "{db.server}", USER = "{db.user}", '
            f'PASSWD = "{DB_PASSWORD}", DB_NAME = "{db.db_name}" ]'
        )
        oned.start()
        oned.stop()
        assert DB_PASSWORD not in oned.log
        assert f"Connecting to postgresql+psycopg://{db.user}:***@" in oned.log
    finally:
        databases.close()
