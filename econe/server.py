"""econe-server: the EC2 Query front end's HTTP(S) shell (Twisted), and its process entry.

One handler for GET and POST on any path (SigV4 signs the path, so a prefix behind a proxy
works): the body is bounded while it arrives, the signature parsed, the caller's secret looked
up (a callable that may return a Deferred: oned's EC2 keys next), the signature checked, the
query parsed, the action run, its dict rendered. Every refusal is an EC2 error document with
a 4xx; anything unexpected is logged with its traceback and answered InternalError (500)
without details. The pure parts are `signature`, `query`, `actions` and `responses`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
import time
from dataclasses import replace
from typing import Any

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.web import resource, server

from econe import daemon, keyexchange, signature
from econe.actions import ACTIONS, LOCAL
from econe.config import Settings, resolved
from econe.context import Context, Services
from econe.credentials import Credentials
from econe.errors import Ec2Error
from econe.query import QueryRequest
from econe.query import parse as parse_query
from econe.request import HttpRequest, Policy
from econe.responses import CONTENT_TYPE, new_request_id, render, render_error
from econe.s3_api import is_s3
from econe.s3_store import ObjectStore
from econe.s3_web import S3Endpoint
from econe.wiring import config_path, lookup_of, read_settings, server_session, services_of
from oned.errors import ConfigError
from oned.locations import locations

log = logging.getLogger("econe")
# access key id -> Credentials: an `econe.credentials.Lookup` (asked on worker threads, its
# `cached` on the reactor), or a callable answering a secret, Credentials or None (or a
# Deferred of one).
Lookup = Any


class BoundedRequest(server.Request):
    """A request that stops keeping its body past `max_body` bytes (answered 413 then); an
    S3 request has its own bound, and a PUT of an object streams to disk (`econe.s3_web`)."""

    max_body = 0
    body_limit = 0  # this request's bound when it is not max_body
    s3: S3Endpoint | None = None
    upload: Any = None  # econe.s3_sink.Upload of an S3 object's body
    too_large = False
    econe_user = "-"  # for the access log, once the signature is verified
    econe_action = "-"
    gone = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        path = getattr(self.channel, "_path", b"").partition(b"?")[0]
        if self.s3 is not None and path not in (b"/", b"", keyexchange.PATH):
            self.s3.begin(self, length)
        if self.upload is not None:
            self.content = io.BytesIO()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.upload is not None:
            self.upload.feed(data)
            return
        self._received += len(data)
        if self._received > (self.body_limit or self.max_body):
            self.too_large = True
        if not self.too_large:
            super().handleContentChunk(data)

    def connectionLost(self, reason: Failure) -> None:
        if self.upload is not None:
            self.upload.abort()
            for d in (self.landed, self.s3_auth):  # nobody waits for them now
                d.addErrback(lambda _: None)
        super().connectionLost(reason)


def policy_of(settings: Settings) -> Policy:
    regions = settings.signing_regions or (settings.region,)
    host = settings.public_url.split("/")[2].lower() if settings.public_url else None
    return Policy(
        service="ec2",
        regions=None if "*" in regions else frozenset(regions),
        scope_services=frozenset({"*"}) if "*" in regions else None,
        window=settings.signature_window,
        hosts=(host,) if host else (),
    )


def http_request(request: server.Request) -> HttpRequest:
    """The pure view of a Twisted request: raw path and query, headers, body bytes."""
    path, _, query = request.uri.partition(b"?")
    headers = tuple(
        (name.decode("latin-1"), value.decode("utf-8", "replace"))
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    )
    content = request.content
    assert content is not None  # Twisted gives every request a body buffer
    content.seek(0)
    return HttpRequest(
        request.method.decode("latin-1"),
        path.decode("utf-8", "replace"),
        query.decode("utf-8", "replace"),
        headers,
        content.read(),
    )


class QueryResource(resource.Resource):
    """The EC2 Query endpoint."""

    isLeaf = True

    def __init__(
        self, settings: Settings, lookup: Lookup, clock: Any, services: Services | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.lookup = lookup
        self.clock = clock
        self.policy = policy_of(settings)
        self.services = services or Services()
        self.s3: S3Endpoint | None = None
        if settings.s3_dir:
            store = ObjectStore(settings.s3_dir)
            self.s3 = S3Endpoint(settings, store, self.verified, clock, self.services, self.policy)

    def render_GET(self, request: BoundedRequest) -> Any:  # type: ignore[override]
        return self._render(request)

    render_POST = render_PUT = render_DELETE = render_HEAD = render_GET  # S3 uses them all

    def _render(self, request: BoundedRequest) -> Any:
        request_id = new_request_id()
        started = time.monotonic()
        request.notifyFinish().addErrback(lambda _: setattr(request, "gone", True))
        path, _, query = request.uri.decode("utf-8", "replace").partition("?")
        auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
        s3 = self.s3 if path != keyexchange.PATH.decode() else None
        if s3 is not None and is_s3(request.method.decode("latin-1"), path, query, auth):
            http = http_request(request)
            d = s3.answer(request, http, request_id)
            d.addErrback(s3.refused, http, request_id)
            d.addCallback(s3.write, request, request_id, started)
            d.addErrback(lambda f: log.error("cannot answer %s", request_id, exc_info=f.value))
            return server.NOT_DONE_YET
        if request.uri.partition(b"?")[0] == keyexchange.PATH:
            d = self._key_exchange(request)
        else:
            d = self._answer(request, request_id)
        d.addErrback(self._refused, request_id)
        d.addCallback(self._write, request, request_id, started)
        d.addErrback(lambda f: log.error("cannot answer %s", request_id, exc_info=f.value))
        return server.NOT_DONE_YET

    @defer.inlineCallbacks
    def _answer(self, request: BoundedRequest, request_id: str) -> Any:
        if request.too_large:
            raise Ec2Error("RequestEntityTooLarge", f"the body is over {self.settings.max_body}")
        http = http_request(request)
        signed, creds = yield self.verified(http, self.policy)
        request.econe_user = signed.access_key
        call = parse_query(http, self.settings.max_body)
        request.econe_action = call.action
        ctx = Context(signed.access_key, self.settings, request_id, creds, self.services)
        body = yield self._run(ctx, call)
        return 200, render(call.action, body, request_id, call.version)

    @defer.inlineCallbacks
    def verified(self, http: HttpRequest, policy: Policy) -> Any:
        """(signed, credentials) of a correctly signed request; the endpoint's error else."""
        signed = signature.parse(http, policy, self.clock.seconds())
        creds = yield self._credentials(signed.access_key)
        try:
            signature.check(signed, creds.secret if creds else None, policy)
        except Ec2Error:
            if creds is None or not hasattr(self.lookup, "refetch"):
                raise
            # A key rotated since it was kept: one fresh look before refusing.
            creds = yield threads.deferToThread(self.lookup.refetch, signed.access_key)
            signature.check(signed, creds.secret if creds else None, policy)
        return signed, creds

    def _key_exchange(self, request: BoundedRequest) -> defer.Deferred:
        """`POST /one/ec2key` (econe.keyexchange); 404 when econe cannot read secrets."""
        request.econe_action = "ec2key"
        session, oned = self.services.server_session, self.services.oned
        if request.method != b"POST" or session is None or oned is None:
            return defer.fail(Ec2Error("NotFound", "no EC2 key exchange here", status=404))
        header = request.getHeader(b"authorization")
        try:
            user, password = keyexchange.credentials_of(header.decode() if header else None)
        except Ec2Error:
            return defer.fail()
        request.econe_user = user
        d = threads.deferToThread(keyexchange.exchange, oned, session, user, password)
        return d.addCallback(lambda body: (200, body))

    def _credentials(self, key: str) -> defer.Deferred:
        if not hasattr(self.lookup, "cached"):
            d = defer.maybeDeferred(self.lookup, key)
            return d.addCallback(lambda s: Credentials(s, -1, key, "") if isinstance(s, str) else s)
        found = self.lookup.cached(key)
        if found is not None:
            return defer.succeed(found)
        return threads.deferToThread(self.lookup.get, key)

    def _run(self, ctx: Context, call: QueryRequest) -> defer.Deferred:
        action = ACTIONS.get(call.action)
        if action is None:
            raise Ec2Error("UnsupportedOperation", f"{call.action} is not supported yet")
        if call.dry_run:
            raise Ec2Error("DryRunOperation", "Request would have succeeded, DryRun flag is set")
        if call.action in LOCAL:
            return defer.maybeDeferred(action, ctx, call)
        return threads.deferToThread(action, ctx, call)

    def _refused(self, failure: Failure, request_id: str) -> tuple[int, bytes]:
        if failure.check(Ec2Error):
            return render_error(failure.value, request_id)
        log.error("request %s failed", request_id, exc_info=failure.value)
        return render_error(Ec2Error("InternalError", "an internal error occurred"), request_id)

    def _write(
        self, answer: tuple[int, bytes], request: BoundedRequest, request_id: str, started: float
    ) -> None:
        status, body = answer
        log.info(
            "%s %s %s %s %d %.1fms %s",
            getattr(request.getClientAddress(), "host", "-"),
            request.method.decode("latin-1"),
            request.econe_action,
            request.econe_user,
            status,
            (time.monotonic() - started) * 1000,
            request_id,
        )
        if request.gone:  # the client hung up; nothing to answer
            return
        request.setResponseCode(status)
        json_body = body.startswith(b"{")  # the key exchange's answer; EC2's are XML
        request.setHeader(
            b"Content-Type", b"application/json" if json_body else CONTENT_TYPE.encode()
        )
        request.setHeader(b"x-amzn-RequestId", request_id.encode())
        request.setHeader(b"Content-Length", str(len(body)).encode())
        request.write(body)
        request.finish()


def site(
    settings: Settings, lookup: Lookup, clock: Any, services: Services | None = None
) -> server.Site:
    """The Site serving `QueryResource`, bounding bodies and idle clients."""
    query = QueryResource(settings, lookup, clock, services)
    bounded = type("Bounded", (BoundedRequest,), {"max_body": settings.max_body, "s3": query.s3})
    web = server.Site(query, timeout=settings.request_timeout)
    web.requestFactory = bounded  # type: ignore[assignment]
    web.displayTracebacks = False
    web.noisy = False
    return web


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="econe-server", description=__doc__.splitlines()[0])
    p.add_argument(
        "command", nargs="?", choices=("start", "stop"), help="start detached, or stop; "
        "without one: serve in the foreground"
    )  # fmt: skip
    p.add_argument("-f", "--foreground", action="store_true", help="start: do not detach")
    p.add_argument("-c", "--config", help="econe.conf (default: <etc>/econe/econe.conf)")
    p.add_argument("--log", help="log file, '-' for stderr (default: <log>/econe-server.log)")
    p.add_argument("--port", type=int, help="listen on this port instead of econe.conf's")
    return p


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 1 with one line on stderr when it cannot start."""
    args = parser().parse_args(argv)
    locs = locations()
    if args.command == "stop":
        return daemon.stop(locs)
    if args.command == "start" and not args.foreground:
        return daemon.start(sys.argv[1:] if argv is None else argv, locs)
    path = args.config or config_path(locs.etc)
    try:
        settings = read_settings(path, bool(args.config))
        if args.port:
            settings = replace(settings, port=args.port)
        settings = resolved(settings, locs.etc)
        settings = replace(settings, s3_dir=settings.s3_dir or os.path.join(locs.var, "econe-s3"))
        session = server_session(settings)
        lookup = lookup_of(settings, session)
        services = services_of(settings, locs.etc, locs.var, session)
    except (ConfigError, OSError) as exc:
        print(f"econe-server: {exc}", file=sys.stderr)
        return 1
    # Never let other users read the log: it names users and their actions.
    os.umask(os.umask(0o077) | 0o007)
    _setup_log(args.log or os.path.join(locs.log, "econe-server.log"))
    return _serve(settings, lookup, services, path, locs if args.command == "start" else None)


def _serve(settings: Settings, lookup: Lookup, services: Services, path: str, locs: Any) -> int:
    from twisted.internet import error, reactor

    try:
        _listen(reactor, site(settings, lookup, reactor, services), settings)
    except (error.CannotListenError, OSError) as exc:
        print(
            f"econe-server: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    if locs is not None and not daemon.claim(locs):
        print("econe-server: already running", file=sys.stderr)
        return 1
    reactor.suggestThreadPoolSize(16)  # type: ignore[attr-defined]
    # SIGHUP (logrotate, systemctl reload): reopen the log from the reactor, not the handler
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(_reopen_logs))  # type: ignore[attr-defined]
    log.info("econe-server listening on %s (config %s)", settings.endpoint, path)
    reactor.run()  # type: ignore[attr-defined,misc]
    if locs is not None:
        daemon.release(locs)
    log.info("econe-server stopped")
    return 0


def _listen(reactor: Any, web: server.Site, settings: Settings) -> None:
    if settings.ssl_cert:
        from twisted.internet import ssl

        context = ssl.DefaultOpenSSLContextFactory(settings.ssl_key, settings.ssl_cert)
        reactor.listenSSL(settings.port, web, context, interface=settings.host)
    else:
        reactor.listenTCP(settings.port, web, interface=settings.host)


class _ReopeningFileHandler(logging.FileHandler):
    """econe-server.log, reopened at the same path on SIGHUP (after logrotate renamed it): a
    record is written whole to the old file or the new one, under the handler's lock."""

    def reopen(self) -> None:
        with self.lock or contextlib.nullcontext():
            if self.stream is not None:
                self.stream.flush()
                self.stream.close()
            self.stream = self._open()


def _setup_log(path: str) -> None:
    if path == "-":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        handler = _ReopeningFileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s [ECONE][%(levelname).1s]: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _reopen_logs() -> None:
    for handler in log.handlers:
        if isinstance(handler, _ReopeningFileHandler):
            try:
                handler.reopen()
            except OSError as exc:  # the old file stays open: nothing is lost
                log.error("cannot reopen %s: %s", handler.baseFilename, exc.strerror)
            else:
                log.info("%s reopened", os.path.basename(handler.baseFilename))


if __name__ == "__main__":
    sys.exit(main())
