"""one-dashboard: the web dashboard's HTTP(S) shell (Twisted), and its process entry.

`/api/...` is the JSON interface of share/doc/dashboard.md: the session cookie is looked up
here (on the reactor), the CSRF token checked on every POST but sign-in, the body bounded and
parsed, then the route (`dashboard.api`, pure and blocking) runs on a worker thread as the
signed-in user. `/api/events` is the live stream (`dashboard.events`). Anything else is a file
of dashboard/static/. Every answer carries a strict Content-Security-Policy. One log line per
request: address, method, path, user, status, time; never a password or a cookie.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.web import resource, server

import oned.log as onelog
from dashboard import api, config, daemon, events, web
from dashboard.config import Settings
from dashboard.oned import DashboardError, Oned
from dashboard.pool_copy import PoolCopy
from dashboard.sessions import Session, Sessions
from dashboard.signin import PATHS, SignIn
from oned.errors import ConfigError
from oned.locations import Locations, locations

log = onelog.module("DASH")


class Dashboard(resource.Resource):
    """Every path of the dashboard."""

    isLeaf = True

    def __init__(self, settings: Settings, ctx: api.Context, clock: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.https = settings.scheme == "https"
        self.feeds = events.Feeds(ctx.oned, clock)
        sessions = Sessions(settings.session_lifetime, settings.max_sessions)
        self.signin = SignIn(sessions, ctx, self.https, self.feeds.warm, self.feeds.end)
        self.feeds.refused = self._forget
        self.feeds.alive = sessions.alive

    def render(self, request: web.DashboardRequest) -> Any:  # type: ignore[override]
        started = time.monotonic()
        request.notifyFinish().addBoth(lambda _: web.log_access(request, started))
        web.secure_headers(request, self.https)
        path = request.path.decode("utf-8", "replace")
        method = request.method.decode("latin-1")
        if not path.startswith("/api/"):
            if method not in ("GET", "HEAD"):
                return web.fail(request, DashboardError(405, "method not allowed"))
            return web.serve_static(request, path)
        if path in PATHS:
            return self.signin.route(request, method, path)
        session = self.signin.session(request)
        if session is None:
            return web.fail(request, DashboardError(401, "not signed in"))
        request.user = session.user
        if path == "/api/events" and method == "GET":
            return self.feeds.stream(request, session)
        return self._api(request, method, path, session)

    def _api(self, request: web.DashboardRequest, method: str, path: str, session: Session) -> Any:
        """A route of `dashboard.api`, checked here, run on a worker thread."""
        found = api.find(method, path)
        if found is None:
            known = api.allowed(path)
            error = DashboardError(405, "method not allowed") if known else None
            return web.fail(request, error or DashboardError(404, "no such API path"))
        route, ids = found
        args: tuple[Any, ...] = ids
        if method == "POST":
            body = self.signin.csrf_refusal(request, session) or web.json_body(request)
            if isinstance(body, DashboardError):
                return web.fail(request, body)
            args = (*ids, body)
        caller = api.Caller(session.oned_session, session.uid, session.admin)
        feed = self.feeds.feed_of(session) if route.run in api.COPIED else None
        d = feed.ready() if feed is not None else defer.succeed(None)
        d.addCallback(self._answer, route, caller, args, session)
        if method == "POST":
            d.addCallback(self._wrote, session)
        ok = lambda answer: web.answer(request, *answer)  # noqa: E731
        d.addCallbacks(ok, self._failed, errbackArgs=(request, session))
        return server.NOT_DONE_YET

    def _forget(self, sessions: set[Session]) -> None:
        """oned refused these sessions' password on the live feed: they are over."""
        for session in sessions:
            self.signin.forget(session)

    def _answer(
        self, copy: PoolCopy | None, route: api.Route, caller: api.Caller, args: tuple,
        session: Session,
    ) -> defer.Deferred:  # fmt: skip
        """The route's answer (on a worker thread), from the user's pool copy when it has one."""
        seq = self.feeds.seq(session)
        if copy is not None:
            vms, hosts = copy.listing("vm"), copy.listing("host")  # here: the reactor owns it
            answer = api.from_listings(route.run, vms, hosts)
            return threads.deferToThread(_checked, self.ctx, caller, route, answer, seq)
        return threads.deferToThread(_run, route, self.ctx, caller, args, seq)

    def _wrote(self, answer: Any, session: Session) -> Any:
        """The user's action is done: their next reads wait for the feed to have it."""
        feed = self.feeds.feed_of(session)
        if feed is not None:
            feed.wrote()
        return answer

    def _failed(self, failure: Failure, request: server.Request, session: Session) -> None:
        if failure.check(DashboardError):
            error = failure.value
            if error.status == 401:  # oned no longer takes the password: sign in again
                self.signin.forget(session)
        else:
            log.error(f"{request.path!r} failed", exc_info=onelog.exc_info(failure))
            error = DashboardError(500, "internal error")
        web.fail(request, error)


def _run(route: api.Route, ctx: api.Context, caller: api.Caller, args: tuple, seq: int) -> Any:
    """On a worker thread: the route's answer, its JSON encoded there too (10,000 VMs)."""
    return _encoded(route, route.run(ctx, caller, *args), seq)


def _checked(
    ctx: api.Context, caller: api.Caller, route: api.Route, answer: api.Answer, seq: int
) -> tuple[int, bytes]:
    """An answer from the copy, once oned still takes the user's password (changed, user
    disabled or deleted since the feed's last call: 401 now, not at its next reply)."""
    api.still_valid(ctx, caller)
    return _encoded(route, answer, seq)


def _encoded(route: api.Route, answer: api.Answer, seq: int) -> tuple[int, bytes]:
    status, body = answer
    if route.run in (api.vms, api.hosts):  # the feed's position
        body = {"seq": seq, **body}
    return status, web.encode(body)


def site(settings: Settings, ctx: api.Context, clock: Any) -> server.Site:
    bounded = type("Bounded", (web.DashboardRequest,), {"max_body": settings.max_body})
    web_site = server.Site(Dashboard(settings, ctx, clock), timeout=60)
    web_site.requestFactory = bounded  # type: ignore[assignment]
    web_site.displayTracebacks = False
    web_site.noisy = False
    return web_site


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="one-dashboard", description=__doc__.splitlines()[0])
    p.add_argument(
        "command", nargs="?", choices=("start", "stop"), help="start detached, or stop; "
        "without one: serve in the foreground"
    )  # fmt: skip
    p.add_argument("-f", "--foreground", action="store_true", help="start: do not detach")
    p.add_argument("-c", "--config", help="dashboard.conf (default: <etc>/dashboard.conf)")
    p.add_argument("--log", help="log file (default: <log>/one-dashboard.log)")
    p.add_argument("--port", type=int, help="listen on this port instead of dashboard.conf's")
    return p


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 1 with one line on stderr when it cannot start."""
    args = parser().parse_args(argv)
    loc = locations()
    if args.command == "stop":
        return daemon.stop(loc)
    if args.command == "start" and not args.foreground:
        return daemon.start(sys.argv[1:] if argv is None else argv, loc)
    try:
        settings = config.read(args.config or config.path(loc.etc), bool(args.config))
        if args.port:
            settings = Settings(**{**settings.__dict__, "port": args.port})
        settings = config.resolved(settings, loc.etc)
        ctx = api.Context(Oned(settings.one_xmlrpc), loc.var, settings.templates_dir or "")
    except ConfigError as exc:
        print(f"one-dashboard: {exc}", file=sys.stderr)
        return 1
    # Never let other users read the log: it names users and what they did.
    os.umask(os.umask(0o077) | 0o007)
    onelog.setup(args.log or os.path.join(loc.log, "one-dashboard.log"), 2)
    return _serve(settings, ctx, loc if args.command == "start" else None)


def _serve(settings: Settings, ctx: api.Context, loc: Locations | None) -> int:
    from twisted.internet import error, reactor

    try:
        _listen(reactor, site(settings, ctx, reactor), settings)
    except (error.CannotListenError, OSError) as exc:
        print(f"one-dashboard: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    if loc is not None and not daemon.claim(loc):
        print("one-dashboard: already running", file=sys.stderr)
        return 1
    reactor.suggestThreadPoolSize(16)  # type: ignore[attr-defined]
    # SIGHUP (logrotate, systemctl reload): reopen the log from the reactor, not the handler
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(onelog.reopen))  # type: ignore[attr-defined]
    url = f"{settings.scheme}://{settings.host}:{settings.port}/"
    log.info(f"one-dashboard listening on {url}, oned at {settings.one_xmlrpc}")
    reactor.run()  # type: ignore[attr-defined,misc]
    if loc is not None:
        daemon.release(loc)
    log.info("one-dashboard stopped")
    return 0


def _listen(reactor: Any, web_site: server.Site, settings: Settings) -> None:
    if settings.ssl_cert:
        from twisted.internet import ssl

        try:
            context = ssl.DefaultOpenSSLContextFactory(settings.ssl_key, settings.ssl_cert)
        except Exception as exc:  # OpenSSL's own errors: a bad or unreadable file
            raise OSError(f"cannot use {settings.ssl_cert} / {settings.ssl_key}: {exc}") from None
        reactor.listenSSL(settings.port, web_site, context, interface=settings.host)
    else:
        reactor.listenTCP(settings.port, web_site, interface=settings.host)


if __name__ == "__main__":
    sys.exit(main())
