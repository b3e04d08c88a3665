"""A start on an up-to-date schema does not import Alembic (issue 18, start-up memory): Alembic,
mako and pygments cost about 4 MB that would stay for the life of oned. Every other case
(created, migrated, unknown revision) still goes through Alembic."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from oned.store import migrate
from tests.store.targets import LOGGER, Target

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
# Opens the store in a fresh interpreter and prints its log line and whether Alembic, mako or
# pygments were imported: the test process itself has imported Alembic already.
OPEN = """
import json, logging, sys
from oned.store import Store
from tests.store.targets import Db
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
db = Db(**json.loads(sys.argv[1]))
Store.open(db, sys.argv[2], logging.getLogger("open")).close()
print(json.dumps(sorted(m for m in ("alembic", "mako", "pygments") if m in sys.modules)))
"""


def open_in_fresh_process(target: Target) -> tuple[str, list[str]]:
    """The store's log line and the heavy modules a fresh process imported to open it."""
    settings = json.dumps(dataclasses.asdict(target.db))
    done = subprocess.run(
        [sys.executable, "-c", OPEN, settings, target.db_file],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    line, imported = done.stdout.strip().splitlines()[-2:]
    return line, json.loads(imported)


def test_a_start_on_an_up_to_date_schema_imports_no_alembic(target: Target) -> None:
    """The second start reads alembic_version with one query and leaves Alembic unloaded."""
    line, imported = open_in_fresh_process(target)
    assert line == "Database schema at revision 0006 (created)"
    assert imported == ["alembic", "mako", "pygments"]  # what the fast path spares
    again = open_in_fresh_process(target)
    assert again == ("Database schema at revision 0006 (up to date)", [])


def test_an_older_schema_is_still_migrated_through_alembic(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """A database one revision behind is brought to head, and the log line says from where."""
    store = target.open()
    config = migrate.alembic_config(store._conn)
    with store._conn.begin():
        command.downgrade(config, "0005")
    store.close()
    with caplog.at_level(logging.INFO):
        target.open()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == ["Database schema at revision 0006 (migrated from 0005)"]


def test_the_head_read_as_text_is_alembics_head() -> None:
    """The text reader and Alembic agree on the scripts shipped."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert migrate.script_head() == scripts.get_current_head()


def _script(folder: Path, name: str, revision: str, down: str) -> None:
    text = f'"""{name}"""\n\nrevision = {revision}\ndown_revision = {down}\n'
    (folder / f"{name}.py").write_text(text)


@pytest.mark.parametrize(
    ("scripts", "head"),
    [
        ([("a", '"0001"', "None"), ("b", "'0002'", '"0001"')], "0002"),  # repr() quotes too
        ([("a", '"0001"', "None"), ("b", '"0002"', '"0001"'), ("c", '"0003"', '"0001"')], None),
        ([("a", '"0001"', "None"), ("m", '"0002"', '("0001", "x")')], None),  # a merge
        ([("a", "REV", "None")], None),  # not a literal
        ([], None),
    ],
)
def test_scripts_that_do_not_name_one_head_leave_the_decision_to_alembic(
    tmp_path: Path, scripts: list[tuple[str, str, str]], head: str | None
) -> None:
    """Two heads, a merge or an assignment the reader does not understand: no fast path."""
    versions = tmp_path / "versions"
    versions.mkdir()
    for name, revision, down in scripts:
        _script(versions, name, revision, down)
    assert migrate.script_head(str(tmp_path)) == head
