"""DriverChannel.stop (issue 11, finding 2): requests the driver runs may finish within the
grace period; nothing new is sent; what is left fails with DriverStopping, never a FAILURE."""

from __future__ import annotations

from oned.mad import DriverStopping
from tests.unit.test_mad_channel import Exited, FakeReactor, feed, started


def test_stop_waits_for_the_requests_in_flight_then_finalizes(caplog):
    """A reply within the grace period is delivered; FINALIZE follows it at once."""
    reactor = FakeReactor()
    ch = started(reactor, caplog)
    d = ch.request("DEPLOY", 3, "h", "/f", "-", timeout=600)
    stopped = ch.stop(grace=10)
    transport = reactor.spawned[0][1]
    assert b"FINALIZE\n" not in transport.written
    reactor.advance(4)
    feed(reactor, b"DEPLOY SUCCESS 3 dummy-3\n")
    assert d.result.ok and d.result.info == "dummy-3"
    assert transport.written[-1] == b"FINALIZE\n"
    reactor.spawned[0][0].processEnded(Exited(0))
    assert stopped.called


def test_nothing_new_is_sent_while_stopping_and_what_waited_fails_with_driver_stopping(caplog):
    """A request made after stop, and one queued behind the concurrency bound, never go out."""
    reactor = FakeReactor()
    ch = started(reactor, caplog, concurrency=1)
    first = ch.request("DEPLOY", 1, "h", "/f", "-", timeout=600)
    queued = ch.request("DEPLOY", 2, "h", "/f", "-", timeout=600)
    ch.stop(grace=10)
    late = ch.request("SHUTDOWN", 1, "h", "one-1", "-", timeout=600)
    assert isinstance(late.result.value, DriverStopping)
    feed(reactor, b"DEPLOY SUCCESS 1 one-1\n")
    assert first.result.ok
    written = reactor.spawned[0][1].written
    assert not any(line.startswith(b"DEPLOY 2 ") for line in written)
    assert isinstance(queued.result.value, DriverStopping)
    for d in (late, queued):
        d.addErrback(lambda f: None)


def test_at_the_end_of_the_grace_period_unanswered_requests_fail_with_driver_stopping(caplog):
    """They stay in flight for the next start's reconciliation; the log says how many."""
    reactor = FakeReactor()
    ch = started(reactor, caplog)
    d = ch.request("DEPLOY", 3, "h", "/f", "-", timeout=600)
    stopped = ch.stop(grace=10)
    reactor.advance(10)
    assert isinstance(d.result.value, DriverStopping)
    d.addErrback(lambda f: None)
    assert "1 requests unanswered at stop" in caplog.text
    reactor.advance(2)
    assert reactor.spawned[0][1].signals == ["KILL"]
    reactor.spawned[0][0].processEnded(Exited(-9))
    assert stopped.called


def test_a_driver_that_exits_during_the_grace_period_ends_the_stop(caplog):
    """No restart while stopping; its requests fail with DriverStopping."""
    reactor = FakeReactor()
    ch = started(reactor, caplog)
    d = ch.request("DEPLOY", 3, "h", "/f", "-", timeout=600)
    stopped = ch.stop(grace=10)
    reactor.spawned[0][0].processEnded(Exited(1))
    assert stopped.called and isinstance(d.result.value, DriverStopping)
    d.addErrback(lambda f: None)
    reactor.advance(60)
    assert len(reactor.spawned) == 1
