"""A DriverChannel on a fake process and virtual time: exact bytes out, replies matched in."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import task
from twisted.python.failure import Failure

from oned.mad import (
    DriverChannel,
    DriverStopping,
    DriverTimeout,
    Reply,
    parse_reply,
)


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.signals: list[str] = []
        self.stdin_closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def signalProcess(self, sig: str) -> None:
        self.signals.append(sig)


class FakeReactor(task.Clock):
    """Virtual time plus a spawnProcess that records what it was asked to run."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[object, FakeTransport, list[str], dict]] = []

    def spawnProcess(self, proto, executable, args, env, path, childFDs):
        transport = FakeTransport()
        self.spawned.append((proto, transport, args, env))
        return transport


class Exited:
    def __init__(self, code: int) -> None:
        self.value = type("E", (), {"exitCode": code})()


@pytest.fixture
def reactor() -> FakeReactor:
    return FakeReactor()


def channel(reactor: FakeReactor, caplog, concurrency: int = 1000) -> DriverChannel:
    caplog.set_level(logging.DEBUG)
    return DriverChannel(
        "im_test", ["/bin/im", "kvm"], {"ONE_LOCATION": "/x"}, reactor,
        logging.getLogger("one.InM"), concurrency=concurrency,
    )  # fmt: skip


def feed(reactor: FakeReactor, data: bytes, which: int = -1) -> None:
    reactor.spawned[which][0].outReceived(data)


def started(reactor: FakeReactor, caplog, **kw) -> DriverChannel:
    ch = channel(reactor, caplog, **kw)
    ch.start()
    feed(reactor, b"INIT SUCCESS - -\n")
    return ch


def test_start_spawns_the_executable_with_one_argument_and_sends_init(reactor, caplog):
    """ARGUMENTS is one argv element; INIT is the first line written."""
    ch = channel(reactor, caplog)
    d = ch.start()
    _, transport, args, env = reactor.spawned[0]
    assert args == ["/bin/im", "kvm"] and env == {"ONE_LOCATION": "/x"}
    assert transport.written == [b"INIT\n"]
    feed(reactor, b"INIT SUCCESS - -\n")
    assert d.called and ch.ready


def test_a_driver_that_does_not_answer_init_in_5_seconds_is_killed(reactor, caplog):
    """The INIT handshake has a deadline."""
    channel(reactor, caplog).start()
    reactor.advance(5)
    assert reactor.spawned[0][1].signals == ["KILL"]
    assert "did not answer INIT" in caplog.text


def test_requests_are_sent_as_one_line_and_replies_matched_by_action_and_id(reactor, caplog):
    """MONITOR 3 host01 1 goes out; the reply for 3 fires that request only."""
    ch = started(reactor, caplog)
    first = ch.request("MONITOR", 3, "host01", 1, timeout=30)
    second = ch.request("MONITOR", 4, "host02", 1, timeout=30)
    assert reactor.spawned[0][1].written[1:] == [b"MONITOR 3 host01 1\n", b"MONITOR 4 host02 1\n"]
    feed(reactor, b"MONITOR SUCCESS 4 TOTALCPU=200\nMONITOR FAIL")
    assert not first.called
    assert second.result == Reply("MONITOR", "4", True, "TOTALCPU=200")
    feed(reactor, b"URE 3 Could not monitor host host01.\n")
    assert first.result == Reply("MONITOR", "3", False, "Could not monitor host host01.")


def test_a_reply_nobody_waits_for_is_logged_and_dropped(reactor, caplog):
    """Late or unknown replies change nothing."""
    started(reactor, caplog)
    feed(reactor, b"MONITOR SUCCESS 99 A=1\n")
    assert "dropped a reply nobody waits for: MONITOR 99" in caplog.text


def test_garbage_and_log_lines_are_logged_and_never_break_the_channel(reactor, caplog):
    """LOG lines go to oned.log with the driver's name; garbage is ignored."""
    ch = started(reactor, caplog)
    d = ch.request("MONITOR", 1, "h", 0, timeout=30)
    feed(reactor, b"\xff\xfe garbage\nLOG - 1 probing h\nLOG E - it broke\nnonsense\n")
    feed(reactor, b"MONITOR SUCCESS 1 A=1\n")
    assert d.result.ok
    assert "im_test [1]: probing h" in caplog.text
    assert "im_test: it broke" in caplog.text
    assert caplog.text.count("ignored a malformed line") == 2


def test_a_request_without_answer_times_out_and_is_cancelled(reactor, caplog):
    """DriverTimeout after its timeout, DRIVER_CANCEL sent, a late reply dropped."""
    ch = started(reactor, caplog)
    d = ch.request("MONITOR", 7, "h", 0, timeout=30)
    reactor.advance(30)
    assert reactor.spawned[0][1].written[-1] == b"DRIVER_CANCEL 7\n"
    assert isinstance(d.result.value, DriverTimeout)
    d.addErrback(lambda f: None)
    feed(reactor, b"MONITOR SUCCESS 7 A=1\n")
    assert "dropped a reply" in caplog.text


def test_in_flight_requests_are_bounded_and_the_rest_wait(reactor, caplog):
    """With concurrency 2 the third request goes out when the first is answered."""
    ch = started(reactor, caplog, concurrency=2)
    for hid in (1, 2, 3):
        ch.request("MONITOR", hid, "h", 0, timeout=30)
    written = reactor.spawned[0][1].written
    assert written[1:] == [b"MONITOR 1 h 0\n", b"MONITOR 2 h 0\n"]
    feed(reactor, b"MONITOR SUCCESS 1 A=1\n")
    assert written[-1] == b"MONITOR 3 h 0\n"


def test_requests_with_the_same_action_and_id_run_one_after_the_other(reactor, caplog):
    """Two hooks for one host: the second is sent when the first is answered."""
    ch = started(reactor, caplog)
    first = ch.request("EXECUTE", 5, "a", "LOCAL", "/bin/true", "-", timeout=30)
    second = ch.request("EXECUTE", 5, "b", "LOCAL", "/bin/true", "-", timeout=30)
    written = reactor.spawned[0][1].written
    assert written[-1] == b"EXECUTE 5 a LOCAL /bin/true -\n"
    feed(reactor, b"EXECUTE SUCCESS 5 a\n")
    assert first.result.ok and not second.called
    assert written[-1] == b"EXECUTE 5 b LOCAL /bin/true -\n"


def test_a_driver_that_dies_is_restarted_with_back_off_and_in_flight_work_reissued(reactor, caplog):
    """The first restart comes after 1 s; what was in flight is sent again after INIT."""
    ch = started(reactor, caplog)
    d = ch.request("MONITOR", 2, "h", 0, timeout=60)
    reactor.spawned[0][0].processEnded(Failure(Exception("died")))  # type: ignore[arg-type]
    assert not ch.ready and len(reactor.spawned) == 1
    reactor.advance(1)
    assert len(reactor.spawned) == 2
    feed(reactor, b"INIT SUCCESS - -\n")
    assert reactor.spawned[1][1].written == [b"INIT\n", b"MONITOR 2 h 0\n"]
    feed(reactor, b"MONITOR SUCCESS 2 A=1\n")
    assert d.result.ok
    assert "re-issuing 1 requests after a restart" in caplog.text


def test_stop_sends_finalize_after_the_grace_period_and_fails_what_is_pending(reactor, caplog):
    """FINALIZE, stdin closed, requests unanswered at the end of the grace period fail with
    DriverStopping (no FAILURE event: tests/unit/test_mad_stop.py)."""
    ch = started(reactor, caplog)
    d = ch.request("MONITOR", 1, "h", 0, timeout=30)
    ch.stop(grace=0)
    reactor.advance(0)
    transport = reactor.spawned[0][1]
    assert transport.written[-1] == b"FINALIZE\n" and transport.stdin_closed
    assert isinstance(d.result.value, DriverStopping)
    d.addErrback(lambda f: None)
    reactor.advance(2)
    assert transport.signals == ["KILL"]


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("MONITOR SUCCESS 3 A=1 B=2", ("MONITOR", "SUCCESS", "3", "A=1 B=2")),
        ("DEPLOY SUCCESS 7 -", ("DEPLOY", "SUCCESS", "7", "")),
        ("INIT SUCCESS", ("INIT", "SUCCESS", "-", "")),
        ("MONITOR SUCCESS", None),
        ("LOG - 4 hello there", ("LOG", "-", "4", "hello there")),
        ("poll success 1 STATE=a", ("POLL", "SUCCESS", "1", "STATE=a")),
    ],
)
def test_reply_lines_split_into_action_result_id_and_info(line, parsed):
    """Only the last field may contain spaces; an omitted info is '-'."""
    assert parse_reply(line) == parsed


def test_cancel_drops_every_request_of_that_id_and_tells_the_driver(reactor, caplog):
    """DRIVER_CANCEL 9 goes out; the pending DEPLOY 9 fails with DriverCancelled."""
    from oned.mad import DriverCancelled

    ch = started(reactor, caplog)
    d = ch.request("DEPLOY", 9, "h", "/f", "-", timeout=30)
    other = ch.request("DEPLOY", 10, "h", "/f", "-", timeout=30)
    ch.cancel(9)
    assert reactor.spawned[0][1].written[-1] == b"DRIVER_CANCEL 9\n"
    assert isinstance(d.result.value, DriverCancelled)
    d.addErrback(lambda f: None)
    assert not other.called


def test_every_request_argument_goes_out_as_one_encoded_word(reactor, caplog):
    """Issue 10, finding 1: arguments were joined with spaces, so a value with a space became
    two arguments at the driver. Now each is one word of drivers/protocol.encode_words, plain
    values unchanged, and parse_request gives back exactly the arguments."""
    from drivers.protocol import Request, parse_request

    ch = started(reactor, caplog)
    ch.request("EXECUTE", 5, "log", "LOCAL", "/bin/log", "a b", "x\nDELETE 5", "", timeout=30)
    line = reactor.spawned[0][1].written[-1]
    assert line == b"EXECUTE 5 log LOCAL /bin/log a%20b x%0ADELETE%205 ''\n"
    assert parse_request(line.decode()) == Request(
        "EXECUTE", "5", ("log", "LOCAL", "/bin/log", "a b", "x\nDELETE 5", "")
    )
