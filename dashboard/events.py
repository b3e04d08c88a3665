"""The live stream, `GET /api/events` (Server-Sent Events), fed by oned's change feed.

Per user (their `user:password`: all their sessions share it) one `Feed`: a loop of
`one.system.changes(since, wait_ms)` as that user (oned holds each call until something the
user may see changed), on a thread pool of its own so that held calls never starve the API's
workers. At its start and at each reset the feed lists the user's VMs and hosts again into its
`PoolCopy` and sends `reset` to the streams (fetch again); otherwise each reply's objects go
into the copy and, as events (the shapes of /api/*), once to every open stream. A new stream
gets `reset` as soon as the copy is ready, so a page that fetches on `reset` misses nothing
and its lists come from the copy. The loop starts at sign-in or with a first stream and ends
`LINGER` s after the last stream closed (a reload finds it running). oned out of reach is
`oned {"up": false}` once, retried every `RETRY` s, then `{"up": true}` and `reset`. A
comment every `KEEPALIVE` s keeps proxies from closing quiet streams.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task, threads
from twisted.python.threadpool import ThreadPool
from twisted.web import server

import oned.log as onelog
from dashboard import api, views, web
from dashboard.oned import DashboardError, Oned
from dashboard.pool_copy import PoolCopy
from dashboard.sessions import Session

log = onelog.module("DASH")
WAIT_MS = 25_000  # how long oned may hold one call
RETRY = 2.0  # s between two calls while oned is out of reach
KEEPALIVE = 15.0
LINGER = 60.0  # s a feed runs on without streams
MAX_FEEDS = 200  # users with a running feed (each holds a thread in its call)
MAX_STREAMS = 8  # open streams (tabs) of one session
READY_WAIT = 2.0  # s a read waits for the feed before asking oned itself
RESET = b"event: reset\ndata: {}\n\n"


def frame(event: str, data: Any) -> bytes:
    """One SSE event: `event:` and one `data:` line (JSON never holds a raw newline)."""
    return b"event: " + event.encode() + b"\ndata: " + web.encode(data) + b"\n\n"


@dataclass
class Step:
    """One reply of the feed, read on a pool thread."""

    epoch: str
    seq: int
    fresh: tuple[list, list] | None  # the VMs and hosts listed again (a reset), or None
    events: list[tuple[str, dict]]
    frames: bytes


def step(oned: Oned, session: str, since: int, epoch: str) -> Step:
    """One call of the feed, and the listings when it resets (or is the first)."""
    mine = (epoch,) if epoch else ()  # a restarted oned then resets for sure
    root = oned.listing(session, "one.system.changes", since, WAIT_MS, *mine)
    new_epoch, seq, reset, events = views.changes(root)
    fresh = api.listings(oned, session) if reset or new_epoch != epoch else None
    frames = b"".join(frame(name, data) for name, data in events)
    return Step(new_epoch, seq, fresh, events, frames)


class Feed:
    """One user's loop, their pools' copy and their open streams."""

    def __init__(self, feeds: Feeds, oned_session: str, user: str) -> None:
        self.feeds = feeds
        self.oned_session = oned_session
        self.user = user
        # one connection of its own (its calls run one at a time on any pool thread)
        self.oned = feeds.oned.single(oned_session) if feeds.oned is not None else None
        self.streams: dict[server.Request, Session] = {}
        self.copy = PoolCopy()
        self.epoch = ""
        self.seq = 0
        self.down = ""  # why oned cannot be reached, while it cannot
        self.failing = False  # the last call failed: readers ask oned themselves
        self.started = self.answered = 0  # numbers of the calls started, and of the last reply
        self.written = 0  # a reply to a call after this number has the user's last write
        self.running = False
        self.stopping = False
        self.idle_since: float | None = feeds.clock.seconds()
        self._waiting: list[defer.Deferred] = []

    def add(self, request: server.Request, session: Session) -> None:
        self.streams[request] = session
        self.idle_since, self.stopping = None, False
        if self.down:
            request.write(frame("oned", {"up": False, "error": self.down}))
        elif self.copy.ready:
            request.write(RESET)
        self.run()

    def remove(self, request: server.Request) -> None:
        if self.streams.pop(request, None) is not None and not self.streams:
            self.idle_since = self.feeds.clock.seconds()

    def send(self, data: bytes) -> None:
        for request in list(self.streams):
            request.write(data)

    def wrote(self) -> None:
        """The user changed something (an action answered): reads wait for a reply to a call
        started from now, which has the change (read your writes)."""
        self.written = self.started

    def ready(self) -> defer.Deferred:
        """Fires with the copy once it is loaded and has the user's last write, or None when
        the caller should ask oned (the feed fails, or `READY_WAIT` s passed)."""
        if self.failing or self.down or not self.running:
            return defer.succeed(None)
        if self.copy.ready and self.answered > self.written:
            return defer.succeed(self.copy)
        d: defer.Deferred = defer.Deferred()
        self._waiting.append(d)
        timer = self.feeds.clock.callLater(READY_WAIT, self._give_up, d)
        return d.addBoth(_cancelled, timer)

    def _give_up(self, d: defer.Deferred) -> None:
        if d in self._waiting:
            self._waiting.remove(d)
            d.callback(None)

    def _wake(self, failed: bool = False) -> None:
        keep = []
        for d in self._waiting:
            if failed:
                d.callback(None)
            elif self.copy.ready and self.answered > self.written:
                d.callback(self.copy)
            else:
                keep.append(d)
        self._waiting = keep

    def run(self) -> None:
        if not self.running:
            self.running = True
            self._next()

    def _next(self) -> None:
        idle = self.idle_since is not None and (
            self.stopping or self.feeds.clock.seconds() - self.idle_since > LINGER
        )
        if idle and not self.streams:
            self.running = False
            if self.oned is not None:
                self.oned.close()
            self._wake(failed=True)
            self.feeds.ended(self)
            return
        self.started += 1
        d = self.feeds.call(step, self.oned, self.oned_session, self.seq, self.epoch)
        d.addCallbacks(self._answered, self._failed, callbackArgs=(self.started,))
        d.addErrback(lambda f: log.error("change feed failed", exc_info=onelog.exc_info(f)))

    def _answered(self, reply: Step, number: int) -> None:
        if self.down:
            self.send(frame("oned", {"up": True}))
        self.down, self.failing = "", False
        self.epoch, self.seq, self.answered = reply.epoch, reply.seq, number
        if reply.fresh is not None:
            self.copy.load(*reply.fresh)
            self.copy.apply(reply.events)
            self.send(RESET)
        elif reply.events:
            self.copy.apply(reply.events)
            self.send(reply.frames)
        self._wake()
        self._next()

    def _failed(self, failure: Any) -> None:
        error = failure.value
        if not isinstance(error, DashboardError):
            log.error("change feed call failed", exc_info=onelog.exc_info(failure))
            error = DashboardError(500, "internal error")
        self.failing = True
        self._wake(failed=True)
        if error.status == 401:  # the password no longer works: its sessions are over
            self.feeds.refused(set(self.streams.values()))
            self.stopping = True
            self._next()
            return
        if error.oned_down and not self.down:
            self.down = error.message
            self.epoch = ""  # list again when it answers: what changed meanwhile is unknown
            self.copy.forget()
            self.send(frame("oned", {"up": False, "error": error.message}))
        elif not error.oned_down:
            log.warning(f"change feed of {onelog.one_line(self.user, 64)}: {error.message}")
        delay = RETRY if error.oned_down else 10 * RETRY
        self.feeds.clock.callLater(delay, self._next)


class Feeds:
    """The feeds of the users signed in."""

    def __init__(
        self,
        oned: Oned,
        clock: Any,
        max_feeds: int = MAX_FEEDS,
        call: Callable[..., defer.Deferred] | None = None,
    ) -> None:
        """`call(step, *args)` runs a feed's step (default: on the feeds' thread pool)."""
        self.oned = oned
        self.clock = clock
        self.call = call or self._in_pool
        self.max_feeds = max_feeds
        self.feeds: dict[str, Feed] = {}
        # the sessions oned refused on a feed (the server forgets them)
        self.refused: Callable[[set[Session]], None] = lambda sessions: None
        # whether a session is still signed in (checked at each keep-alive: expiry ends streams)
        self.alive: Callable[[Session], bool] = lambda session: True
        self.pool = ThreadPool(minthreads=0, maxthreads=max_feeds, name="dashboard-feeds")
        self._keepalive = task.LoopingCall(self._beat)
        self._keepalive.clock = clock
        self._started = False

    def _in_pool(self, function: Callable[..., Any], *args: Any) -> defer.Deferred:
        return threads.deferToThreadPool(self.clock, self.pool, function, *args)

    def _start(self) -> None:
        if not self._started:
            self._started = True
            if self.call == self._in_pool:
                self.pool.start()
                self.clock.addSystemEventTrigger("during", "shutdown", self._stop_pool)
            self._keepalive.start(KEEPALIVE, now=False)

    def _stop_pool(self) -> None:
        """At shutdown: end the calls oned holds (up to `WAIT_MS`) so the pool's threads,
        which the stop joins, return at once."""
        for feed in list(self.feeds.values()):
            feed.stopping = True
            if feed.oned is not None:
                feed.oned.interrupt()
        self.pool.stop()

    def feed_of(self, session: Session, create: bool = False) -> Feed | None:
        feed = self.feeds.get(session.oned_session)
        if feed is None and create and len(self.feeds) < self.max_feeds:
            self._start()
            feed = self.feeds[session.oned_session] = Feed(self, session.oned_session, session.user)
        return feed

    def warm(self, session: Session) -> None:
        """Start the user's feed at sign-in: their first page finds the copy ready."""
        feed = self.feed_of(session, create=True)
        if feed is not None:
            feed.run()

    def stream(self, request: server.Request, session: Session) -> Any:
        """Answer `request` with the session's event stream (kept open)."""
        feed = self.feed_of(session, create=True)
        if feed is None:
            return _refuse(request, 503, "too many live streams; try again later")
        if sum(s is session for s in feed.streams.values()) >= MAX_STREAMS:
            return _refuse(request, 429, "too many open streams for this session")
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")  # nginx: do not hold events back
        request.write(b"retry: 2000\n: connected\n\n")
        request.notifyFinish().addBoth(lambda _: feed.remove(request))
        feed.add(request, session)
        return server.NOT_DONE_YET

    def seq(self, session: Session) -> int:
        feed = self.feeds.get(session.oned_session)
        return feed.seq if feed else 0

    def ended(self, feed: Feed) -> None:
        if self.feeds.get(feed.oned_session) is feed:
            del self.feeds[feed.oned_session]

    def end(self, session: Session) -> None:
        """Close the session's streams (signed out, or refused); the feed stops when no
        other session of the user has one."""
        feed = self.feeds.get(session.oned_session)
        if feed is None:
            return
        for request, owner in list(feed.streams.items()):
            if owner is session:
                feed.remove(request)
                request.finish()
        if not feed.streams:
            feed.stopping = True

    def _beat(self) -> None:
        """Keep quiet streams open; close those whose session expired."""
        for feed in list(self.feeds.values()):
            for request, session in list(feed.streams.items()):
                if not self.alive(session):
                    feed.remove(request)
                    request.finish()
            feed.send(b": keep-alive\n\n")


def _cancelled(value: Any, timer: Any) -> Any:
    if timer.active():
        timer.cancel()
    return value


def _refuse(request: server.Request, status: int, message: str) -> Any:
    web.write_json(request, status, web.encode({"error": message}))
    return server.NOT_DONE_YET
