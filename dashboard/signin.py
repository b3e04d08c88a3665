"""Sign-in, sign-out and the session of a request (Twisted): `/api/login`, `/api/logout`,
`/api/session`, the cookie and its flags, the CSRF check, and the failed sign-ins allowed.

oned checks the password (`api.login`, on a worker thread); the dashboard keeps the session
(`dashboard.sessions`). oned counts failed logins per client address and every sign-in comes
from the dashboard's: each browser's address gets `LOGIN_FAILURES` a minute, fewer than oned's
default gives the dashboard, so one browser alone cannot lock the others out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import threads
from twisted.python.failure import Failure
from twisted.web import server

from dashboard import api, web
from dashboard.oned import DashboardError
from dashboard.sessions import Session, Sessions, TooManySessions
from oned.auth import FailedLogins

COOKIE = b"one_dashboard"
LOGIN_FAILURES = 5  # failed sign-ins per browser address and minute
PATHS = ("/api/login", "/api/logout", "/api/session")


class SignIn:
    """The sessions of the dashboard and the three routes that open, show and close them.
    `opened(session)` and `closed(session)` tell the rest (the live feeds)."""

    def __init__(
        self,
        sessions: Sessions,
        ctx: api.Context,
        https: bool,
        opened: Callable[[Session], None],
        closed: Callable[[Session], None],
    ) -> None:
        self.sessions = sessions
        self.ctx = ctx
        self.https = https
        self.opened = opened
        self.closed = closed
        self.logins = FailedLogins(LOGIN_FAILURES)

    def session(self, request: server.Request) -> Session | None:
        """The live session of the request's cookie, or None."""
        cookie = request.getCookie(COOKIE)
        return self.sessions.get(cookie.decode("latin-1")) if cookie else None

    def csrf_refusal(self, request: server.Request, session: Session) -> DashboardError | None:
        token = request.getHeader(b"x-csrf-token")
        if not session.csrf_ok(token.decode("latin-1") if token else None):
            return DashboardError(403, "missing or wrong CSRF token")
        return None

    def forget(self, session: Session) -> None:
        """Sign `session` out (asked, or oned no longer takes its password)."""
        self.sessions.close(session)
        self.closed(session)

    def route(self, request: web.DashboardRequest, method: str, path: str) -> Any:
        session = self.session(request)
        if session is not None:
            request.user = session.user
        if path == "/api/session" and method == "GET":
            if session is None:
                return web.fail(request, DashboardError(401, "not signed in"))
            web.write_json(request, 200, web.encode(session.public()))
            return server.NOT_DONE_YET
        if method != "POST":
            return web.fail(request, DashboardError(405, "method not allowed"))
        if path == "/api/login":
            return self._login(request)
        if session is None:
            return web.fail(request, DashboardError(401, "not signed in"))
        refused = self.csrf_refusal(request, session)
        if refused is not None:
            return web.fail(request, refused)
        self.forget(session)
        self._set_cookie(request, "", 0)
        web.write_json(request, 204, None)
        return server.NOT_DONE_YET

    def _login(self, request: web.DashboardRequest) -> Any:
        body = web.json_body(request)
        if isinstance(body, DashboardError):
            return web.fail(request, body)
        user, password = body.get("user"), body.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            return web.fail(request, DashboardError(400, "user and password: strings"))
        request.user = user[:64]
        peer = str(getattr(request.getClientAddress(), "host", "-"))
        wait = self.logins.retry_in(peer)
        if wait:
            message = f"too many failed sign-ins; try again in {wait} s"
            return web.fail(request, DashboardError(429, message))
        stamp = self.logins.attempt(peer)
        d = threads.deferToThread(api.login, self.ctx, user, password)
        d.addCallback(self._signed_in, request, password, (peer, stamp))
        d.addErrback(self._refused, request)
        return server.NOT_DONE_YET

    def _signed_in(
        self, found: dict[str, Any], request: server.Request, password: str, attempt: tuple
    ) -> None:
        self.logins.succeeded(*attempt)
        try:
            cookie, session = self.sessions.open(
                found["user"], found["uid"], found["admin"], password
            )
        except TooManySessions as exc:
            web.fail(request, DashboardError(503, str(exc)))
            return
        self._set_cookie(request, cookie, int(self.sessions.lifetime))
        web.write_json(request, 200, web.encode(session.public()))
        self.opened(session)

    def _refused(self, failure: Failure, request: server.Request) -> None:
        if failure.check(DashboardError):
            web.fail(request, failure.value)
            return
        web.log.error("sign-in failed", exc_info=web.onelog.exc_info(failure))
        web.fail(request, DashboardError(500, "internal error"))

    def _set_cookie(self, request: server.Request, value: str, max_age: int) -> None:
        flags = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        secure = "; Secure" if self.https else ""
        request.setHeader(b"Set-Cookie", f"{COOKIE.decode()}={value}{flags}{secure}".encode())
