"""PROGRESS lines of a DriverChannel: handed to ``on_progress``; malformed ones are garbage."""

from __future__ import annotations

import pytest

from tests.unit.test_mad_channel import FakeReactor, feed, started


@pytest.fixture
def reactor() -> FakeReactor:
    return FakeReactor()


def test_progress_lines_reach_the_listener_and_leave_requests_alone(reactor, caplog):
    """PROGRESS 3 1048576 3221225472 -> ("3", 1048576, 3221225472); the CP still waits."""
    ch = started(reactor, caplog)
    seen: list[tuple[str, int, int]] = []
    ch.on_progress = lambda oid, done, total: seen.append((oid, done, total))
    d = ch.request("CP", 3, "/tmp/a", "/srv/images/3", timeout=60)
    feed(reactor, b"PROGRESS 3 1048576 3221225472\nPROGRESS 3 2097152 0\n")
    assert seen == [("3", 1048576, 3221225472), ("3", 2097152, 0)]
    assert not d.called
    feed(reactor, b"CP SUCCESS 3 3221225472 sha256:ab\n")
    assert d.result.ok and d.result.info == "3221225472 sha256:ab"
    assert "malformed" not in caplog.text


@pytest.mark.parametrize(
    "line",
    [b"PROGRESS 3 12", b"PROGRESS 3 -1 10", b"PROGRESS 3 1e6 0", b"PROGRESS 3 1 2 3",
     b"PROGRESS 3 \xc2\xb2 0", b"PROGRESS 3 123456789012345678901 0"],
)  # fmt: skip
def test_a_malformed_progress_line_is_garbage(reactor, caplog, line):
    """Counts are plain decimal digits, exactly two of them; anything else is logged and dropped."""
    ch = started(reactor, caplog)
    seen: list[tuple[str, int, int]] = []
    ch.on_progress = lambda *args: seen.append(args)
    feed(reactor, line + b"\n")
    assert seen == [] and "ignored a malformed line" in caplog.text


def test_without_a_listener_progress_is_dropped_quietly_and_a_failing_one_is_logged(
    reactor, caplog
):
    """No listener: nothing logged. A listener that raises is logged; the channel goes on."""
    ch = started(reactor, caplog)
    feed(reactor, b"PROGRESS 3 1 2\n")
    assert "PROGRESS" not in caplog.text

    def broken(oid, done, total):
        raise KeyError(oid)

    ch.on_progress = broken
    d = ch.request("CP", 3, "a", "b", timeout=60)
    feed(reactor, b"PROGRESS 3 1 2\nCP FAILURE 3 gone\n")
    assert "handling 'PROGRESS 3 1 2' failed" in caplog.text
    assert d.result.ok is False and d.result.info == "gone"
