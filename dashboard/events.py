"""The live stream, `GET /api/events` (Server-Sent Events), fed by oned's change feed.

Per signed-in session one `Feed`: a loop of `one.system.changes(since, wait_ms)` as that user
(oned holds each call until something the user may see changed), run on a thread pool of its
own so that held calls never starve the API's workers. Each reply becomes events (the shapes
of /api/*, `dashboard.views.changes`) written once to every open stream of the session. The
loop starts with the session's first stream and ends after its last one closed (at the end of
the call in flight). A new stream's first event is `reset` (fetch now) once the feed knows
where it stands, so a page that fetches on `reset` misses nothing. oned out of reach is
`oned {"up": false}` once, retried every `RETRY` s, then `{"up": true}` and `reset`. A comment
every `KEEPALIVE` s keeps proxies from closing quiet streams.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task, threads
from twisted.python.threadpool import ThreadPool
from twisted.web import server

from dashboard import views, web
from dashboard.oned import DashboardError, Oned
from dashboard.sessions import Session
from oned import log as onelog

log = onelog.module("DASH")
WAIT_MS = 25_000  # how long oned may hold one call
RETRY = 2.0  # s between two calls while oned is out of reach
KEEPALIVE = 15.0
MAX_FEEDS = 200  # sessions with a live stream at once (each holds a thread in its call)
MAX_STREAMS = 8  # open streams (tabs) of one session


def frame(event: str, data: Any) -> bytes:
    """One SSE event: `event:` and one `data:` line (JSON never holds a raw newline)."""
    return b"event: " + event.encode() + b"\ndata: " + web.encode(data) + b"\n\n"


def poll(oned: Oned, session: str, since: int, epoch: str) -> tuple[str, int, bool, list[bytes]]:
    """One call of the feed (on a pool thread): (epoch, seq, reset, encoded events)."""
    mine = (epoch,) if epoch else ()  # a restarted oned then resets for sure
    root = oned.document(session, "one.system.changes", since, WAIT_MS, *mine)
    epoch, seq, reset, events = views.changes(root)
    return epoch, seq, reset, [frame(name, data) for name, data in events]


class Feed:
    """One session's loop and its open streams."""

    def __init__(self, feeds: Feeds, session: Session) -> None:
        self.feeds = feeds
        self.session = session
        self.streams: dict[server.Request, None] = {}
        self.waiting_reset: list[server.Request] = []  # new streams, before the first reply
        self.epoch = ""
        self.seq = 0
        self.down = False
        self.running = False

    def add(self, request: server.Request) -> None:
        self.streams[request] = None
        if self.epoch:
            request.write(b"event: reset\ndata: {}\n\n")
        else:
            self.waiting_reset.append(request)
        if not self.running:
            self.running = True
            self._next()

    def remove(self, request: server.Request) -> None:
        self.streams.pop(request, None)

    def send(self, data: bytes) -> None:
        for request in list(self.streams):
            request.write(data)

    def _next(self) -> None:
        if not self.streams:
            self.running = False
            self.feeds.ended(self)
            return
        d = threads.deferToThreadPool(
            self.feeds.clock, self.feeds.pool, poll, self.feeds.oned, self.session.oned_session,
            self.seq, self.epoch,
        )  # fmt: skip
        d.addCallbacks(self._answered, self._failed)
        d.addErrback(lambda f: log.error("feed failed", exc_info=onelog.exc_info(f)))

    def _answered(self, reply: tuple[str, int, bool, list[bytes]]) -> None:
        epoch, seq, reset, events = reply
        was_down, self.down = self.down, False
        if was_down:
            self.send(frame("oned", {"up": True}))
        first = not self.epoch
        if not first and (reset or epoch != self.epoch):
            self.send(b"event: reset\ndata: {}\n\n")
        self.epoch, self.seq = epoch, seq
        for request in self.waiting_reset:
            if request in self.streams:
                request.write(b"event: reset\ndata: {}\n\n")
        self.waiting_reset.clear()
        if events:
            self.send(b"".join(events))
        self._next()

    def _failed(self, failure: Any) -> None:
        error = failure.value
        if not isinstance(error, DashboardError):
            log.error("change feed call failed", exc_info=onelog.exc_info(failure))
            error = DashboardError(500, "internal error")
        if error.status == 401:  # the password no longer works: the session is over
            self.feeds.forget(self.session)
            self._next()
            return
        if error.oned_down and not self.down:
            self.down = True
            self.send(frame("oned", {"up": False, "error": error.message}))
        elif not error.oned_down:
            log.warning(f"change feed of {self.session.user}: {error.message}")
        delay = RETRY if error.oned_down else 10 * RETRY
        self.feeds.clock.callLater(delay, self._next)


class Feeds:
    """The feeds of every session with an open stream."""

    def __init__(self, oned: Oned, clock: Any, max_feeds: int = MAX_FEEDS) -> None:
        self.oned = oned
        self.clock = clock
        self.max_feeds = max_feeds
        self.feeds: dict[str, Feed] = {}
        self.pool = ThreadPool(minthreads=0, maxthreads=max_feeds, name="dashboard-feeds")
        self.forget = self.end  # what a session oned refused becomes (the server's sign-out)
        self._keepalive = task.LoopingCall(self._beat)
        self._keepalive.clock = clock
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.pool.start()
            self.clock.addSystemEventTrigger("during", "shutdown", self.pool.stop)
            self._keepalive.start(KEEPALIVE, now=False)

    def stream(self, request: server.Request, session: Session) -> Any:
        """Answer `request` with the session's event stream (kept open)."""
        feed = self.feeds.get(session.key)
        if feed is None and len(self.feeds) >= self.max_feeds:
            return _refuse(request, 503, "too many live streams; try again later")
        if feed is not None and len(feed.streams) >= MAX_STREAMS:
            return _refuse(request, 429, "too many open streams for this session")
        self._start()
        if feed is None:
            feed = self.feeds[session.key] = Feed(self, session)
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")  # nginx: do not hold events back
        request.write(b"retry: 2000\n: connected\n\n")
        request.notifyFinish().addBoth(lambda _: feed.remove(request))
        feed.add(request)
        return server.NOT_DONE_YET

    def seq(self, session: Session) -> int:
        feed = self.feeds.get(session.key)
        return feed.seq if feed else 0

    def ended(self, feed: Feed) -> None:
        if self.feeds.get(feed.session.key) is feed:
            del self.feeds[feed.session.key]

    def end(self, session: Session) -> None:
        """Close the session's streams (signed out, or its password no longer works)."""
        feed = self.feeds.get(session.key)
        if feed is None:
            return
        for request in list(feed.streams):
            feed.remove(request)
            request.finish()

    def _beat(self) -> None:
        for feed in list(self.feeds.values()):
            feed.send(b": keep-alive\n\n")


def _refuse(request: server.Request, status: int, message: str) -> Any:
    web.write_json(request, status, web.encode({"error": message}))
    return server.NOT_DONE_YET
