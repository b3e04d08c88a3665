"""The live stream's logic on virtual time (task.Clock) with scripted feed replies: a reset
first, events to every stream of the user, the copy read after the user's own write, oned down
and back, the feed's end after its last stream, a refused password ending its sessions."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from dashboard import events
from dashboard.events import Feeds, Step
from dashboard.oned import DashboardError
from dashboard.sessions import Sessions

VM = {"id": 1, "state": "pend"}


class Calls:
    """The feed's calls to oned, each answered by the test."""

    def __init__(self) -> None:
        self.pending: list[tuple[tuple, defer.Deferred]] = []

    def __call__(self, function, *args):
        d: defer.Deferred = defer.Deferred()
        self.pending.append((args[2:], d))  # (since, epoch)
        return d

    def answer(self, step: Step | Exception) -> tuple:
        args, d = self.pending.pop(0)
        if isinstance(step, Exception):
            d.errback(Failure(step))
        else:
            d.callback(step)
        return args


def fresh(seq=10, vms=(VM,), epoch="e1"):
    return Step(epoch, seq, (list(vms), []), [], b"")


def changed(seq, *vms, epoch="e1"):
    found = [("vm", dict(v)) for v in vms]
    frames = b"".join(events.frame(name, data) for name, data in found)
    return Step(epoch, seq, None, found, frames)


def setup():
    clock, calls = task.Clock(), Calls()
    feeds = Feeds(oned=None, clock=clock, call=calls)  # type: ignore[arg-type]
    _, session = Sessions(3600).open("helen", 3, False, "pw")
    return clock, calls, feeds, session


def text(request) -> str:
    return b"".join(request.written).decode()


def test_a_stream_gets_reset_once_the_copy_is_loaded_then_each_change():
    clock, calls, feeds, session = setup()
    request = DummyRequest([b""])
    feeds.stream(request, session)
    assert calls.pending[0][0] == (0, "")
    assert "event: reset" not in text(request)
    calls.answer(fresh())
    assert text(request).count("event: reset") == 1
    assert calls.answer(changed(11, {"id": 1, "state": "runn"})) == (10, "e1")
    assert 'event: vm\ndata: {"id":1,"state":"runn"}\n\n' in text(request)
    assert feeds.feed_of(session).copy.listing("vm") == [{"id": 1, "state": "runn"}]
    assert calls.pending[0][0] == (11, "e1")


def test_every_stream_of_the_user_gets_the_events_and_a_late_one_its_reset_at_once():
    clock, calls, feeds, session = setup()
    first, second = DummyRequest([b""]), DummyRequest([b""])
    feeds.stream(first, session)
    calls.answer(fresh())
    feeds.stream(second, session)
    assert "event: reset" in text(second) and len(calls.pending) == 1
    calls.answer(changed(11, VM))
    assert text(first).count("event: vm") == text(second).count("event: vm") == 1


def test_a_read_after_the_users_action_waits_for_a_reply_to_a_later_call():
    clock, calls, feeds, session = setup()
    feeds.warm(session)
    calls.answer(fresh())
    feed = feeds.feed_of(session)
    assert feed.ready().result is feed.copy
    feed.wrote()  # the call in flight may predate the action
    waiting = feed.ready()
    calls.answer(changed(11))
    assert not waiting.called
    calls.answer(changed(12, {"id": 2, "state": "pend"}))
    assert waiting.result is feed.copy and len(feed.copy.listing("vm")) == 2


def test_a_read_asks_oned_itself_when_the_feed_is_slow_or_failing():
    clock, calls, feeds, session = setup()
    feeds.warm(session)
    waiting = feeds.feed_of(session).ready()
    clock.advance(events.READY_WAIT)
    assert waiting.result is None
    calls.answer(DashboardError(400, "[one.system.changes] unknown method"))
    assert feeds.feed_of(session).ready().result is None
    clock.advance(20 * events.RETRY)
    assert calls.pending  # tried again, slowly


def test_oned_down_is_told_once_and_its_return_is_up_then_reset():
    clock, calls, feeds, session = setup()
    request = DummyRequest([b""])
    feeds.stream(request, session)
    calls.answer(fresh())
    down = DashboardError(502, "cannot reach oned at http://h/RPC2: refused", oned_down=True)
    calls.answer(down)
    clock.advance(events.RETRY)
    calls.answer(down)
    assert text(request).count('"up":false') == 1
    late = DummyRequest([b""])
    feeds.stream(late, session)
    assert '"up":false,"error":"cannot reach oned at http://h/RPC2: refused"' in text(late)
    assert feeds.feed_of(session).ready().result is None  # reads get the 502 themselves
    clock.advance(events.RETRY)
    assert calls.pending[0][0] == (10, "")  # no epoch: the listing is made again
    calls.answer(fresh(seq=3, epoch="e2"))
    assert text(request).endswith('event: oned\ndata: {"up":true}\n\nevent: reset\ndata: {}\n\n')


def test_the_feed_ends_a_while_after_its_last_stream_closed():
    clock, calls, feeds, session = setup()
    request = DummyRequest([b""])
    feeds.stream(request, session)
    calls.answer(fresh())
    request.processingFailed(Failure(ConnectionError("gone")))
    calls.answer(changed(11))
    assert calls.pending  # a reload within LINGER finds it running
    clock.advance(events.LINGER + 1)
    calls.answer(changed(12))
    assert not calls.pending and feeds.feed_of(session) is None


def test_sign_out_closes_that_sessions_streams_and_stops_the_feed():
    clock, calls, feeds, session = setup()
    request = DummyRequest([b""])
    feeds.stream(request, session)
    calls.answer(fresh())
    feeds.end(session)
    assert request.finished
    calls.answer(changed(11))
    assert not calls.pending and feeds.feed_of(session) is None


def test_a_refused_password_ends_the_sessions_that_used_it():
    clock, calls, feeds, session = setup()
    ended = []
    feeds.refused = ended.append
    feeds.stream(DummyRequest([b""]), session)
    calls.answer(fresh())
    calls.answer(DashboardError(401, "User couldn't be authenticated"))
    assert ended == [{session}]


def test_streams_per_session_and_feeds_are_bounded():
    clock, calls, feeds, session = setup()
    for _ in range(events.MAX_STREAMS):
        feeds.stream(DummyRequest([b""]), session)
    refused = DummyRequest([b""])
    feeds.stream(refused, session)
    assert refused.responseCode == 429
    small = Feeds(oned=None, clock=clock, max_feeds=0, call=calls)  # type: ignore[arg-type]
    other = DummyRequest([b""])
    small.stream(other, session)
    assert other.responseCode == 503


def test_an_expired_sessions_streams_close_at_the_next_keep_alive():
    clock, calls, feeds, session = setup()
    live = {session: True}
    feeds.alive = live.get
    request = DummyRequest([b""])
    feeds.stream(request, session)
    calls.answer(fresh())
    clock.advance(events.KEEPALIVE)
    assert not request.finished and text(request).endswith(": keep-alive\n\n")
    live[session] = False
    clock.advance(events.KEEPALIVE)
    assert request.finished
