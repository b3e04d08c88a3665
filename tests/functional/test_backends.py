"""oned itself, not only its store, on PostgreSQL and MariaDB selected in oned.conf."""

from __future__ import annotations

import pytest

from tests.functional.oned_process import OnedProcess, check_survives_kill_9
from tests.store.targets import ServerUnreachable, scratch_database, skipped_backends


@pytest.mark.db
@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_oned_runs_on_a_server_database_and_keeps_everything_across_kill_9(tmp_path, backend):
    """DB = [ BACKEND = ... ] in oned.conf; users, hosts and VMs survive a SIGKILL."""
    if backend in skipped_backends():
        pytest.skip(f"ONECLOUD_SKIP_DB names {backend}")
    databases = scratch_database(backend, prefix="onecloud_oned")
    try:
        db = next(databases)
    except ServerUnreachable as exc:
        pytest.fail(str(exc))
    try:
        conf = (
            f'DB = [ BACKEND = "{backend}", SERVER = "{db.server}", USER = "{db.user}", '
            f'PASSWD = "", DB_NAME = "{db.db_name}" ]'
        )
        oned = OnedProcess(tmp_path / "one")
        text = (oned.location / "etc" / "oned.conf").read_text()
        (oned.location / "etc" / "oned.conf").write_text(
            "\n".join(line for line in text.splitlines() if not line.startswith("DB "))
            + "\n"
            + conf
        )
        oned.start()
        check_survives_kill_9(oned)
        assert "Database schema at revision 0006 (up to date)" in oned.log
        assert not (oned.location / "var" / "one.db").exists()
        oned.stop()
    finally:
        databases.close()
