"""oned.log's hygiene: one line per message, cut, secrets masked; and the modes of oned's files."""

from __future__ import annotations

import logging
import os
import stat
import sys

import pytest

from oned import filemodes
from oned.__main__ import masked
from oned.config import DbConfig
from oned.log import MAX_MESSAGE, OneFormatter, one_line
from oned.store.engine import loggable_url
from oned.template import parse


def formatted(message: str, exc_info: object = None) -> str:
    record = logging.LogRecord("one.AuM", logging.ERROR, __file__, 1, message, None, exc_info)
    return OneFormatter().format(record)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("eve\nforged", "eve\\nforged"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[31mred\x00", "\\x1b[31mred\\x00"),
        ("next\x85line\u2028sep", "next\\x85line\\u2028sep"),
        ("plain été", "plain été"),
    ],
)
def test_control_characters_in_a_message_are_written_escaped(text, shown):
    """Finding 5: a newline (or CR, ESC, NEL, U+2028) in a user name cannot start a log line."""
    assert one_line(text) == shown
    assert formatted(f'Authentication failed for "{text}"').count("\n") == 0


def test_a_long_message_is_cut_saying_how_much_was_cut():
    """Finding 5: a 7 MB user name adds a few KB, not 7 MB, to oned.log."""
    line = formatted("e" * 7_000_000)
    assert len(line) < MAX_MESSAGE + 200
    assert line.endswith(f"... [{7_000_000 - MAX_MESSAGE} characters cut]")


def test_a_traceback_stays_multi_line_under_its_one_line_message():
    """exc_info is ours: kept readable, while the message above it is still escaped."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        line = formatted("failed for\nx", sys.exc_info())
    first, *rest = line.splitlines()
    assert first.endswith("failed for\\nx")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "RuntimeError: boom"


def test_the_db_password_is_masked_in_the_configuration_logged_at_start():
    """Finding 4: the oned.conf header of oned.log showed DB PASSWD."""
    conf = parse('PORT = 2633\nDB = [ BACKEND = "mysql", USER = "one", PASSWD = "s3cret" ]\n')
    shown = masked(conf).to_str()
    assert "s3cret" not in shown and "PASSWD=***" in shown and "USER=one" in shown


def test_the_database_url_logged_at_connect_hides_the_password():
    """Finding 4: the URL oned logs when it connects shows the user, never the password."""
    db = DbConfig(backend="postgresql", server="db", user="one", passwd="p@ss:w/rd", db_name="one")
    assert loggable_url(db, "") == "postgresql+psycopg://one:***@db:5432/one"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_oned_s_files_are_never_readable_by_others_whatever_the_umask(tmp_path, umask_022):
    """Even under a shell's 022, files ask for 0640 and folders for 0750 at most."""
    filemodes.write_file(str(tmp_path / "a" / "b" / "deployment.0"), "x")
    filemodes.create_file(str(tmp_path / "oned.log"))
    os.close(filemodes.open_append(str(tmp_path / "vm.log")))
    assert [mode(tmp_path / p) for p in ("a", "a/b")] == [0o750, 0o750]
    assert [mode(tmp_path / p) for p in ("a/b/deployment.0", "oned.log", "vm.log")] == [0o640] * 3


def test_tighten_takes_away_the_bits_umask_forbids_and_says_so(tmp_path):
    """An older install's 0644 one.db becomes 0600; a file already private is left alone."""
    wide, private = tmp_path / "one.db", tmp_path / "oned.log"
    wide.write_text("")
    private.write_text("")
    wide.chmod(0o644)
    private.chmod(0o600)
    messages = filemodes.tighten([str(wide), str(private), str(tmp_path / "missing")], 0o077)
    assert (mode(wide), mode(private)) == (0o600, 0o600)
    assert messages == [f"{wide} had mode 0644, wider than UMASK 077 allows: now 0600"]
