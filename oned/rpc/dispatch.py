"""From request bytes to reply bytes: decode, find the method, authenticate, call, encode.

Never raises and never leaks a traceback: OneErrors become ``[false, message, code]``; anything
else is logged with its traceback and answered as an internal error.

``system.multicall`` (the XML-RPC extension xmlrpc-c, and so OpenNebula's oned, serves) takes
an array of ``{methodName, params}`` structs and answers an array with, per call, a one-item
array holding that call's reply (a multicall refused as a whole is an XML-RPC fault, as
standard clients expect). Each call carries its own session. They run in order, in one
reactor turn when their sessions are known: the scheduler sends its deployments this way, one
HTTP request for many VMs. A call answering later holds the ones after it, except that a run
of deploys (or of allocations) with known sessions is submitted at once and shares one group
commit; each is still answered after that commit, and the next other call runs after it.
At most MAX_CALLS calls; once the replies pass MAX_REPLY bytes, the remaining calls are not
run and each says so.

Abuse: a body over MAX_UNAUTHENTICATED_REQUEST_SIZE is decoded only once the session it starts
with (``peek``) is good, and then in a worker thread; a smaller one is decoded at once (the
common case, the fastest). Password checks are limited per client address (``FailedLogins``):
over MAX_AUTH_FAILURES in a minute, the address is refused without a check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from oned import log
from oned.api.cloud import Caller, Cloud
from oned.api.sessions import Sessions
from oned.auth import FailedLogins
from oned.errors import AuthenticationError, BadCall, InternalError, OneError
from oned.rpc import marshal, peek
from oned.rpc.methods import METHODS, Method

RunInThread = Callable[..., defer.Deferred]
Reply = list[bytes] | defer.Deferred
Refuse = Callable[[str, int], list[bytes]]
MULTICALL = "system.multicall"
# A multicall runs in one go and its reply is built whole: bounded, so that one request cannot
# hold the reactor for long or make a reply of gigabytes (1,000 pool listings).
MAX_CALLS = 1000
MAX_REPLY = 64 * 2**20
# Calls whose answer waits for a group commit (oned.commits) and that never depend on one
# another's outcome: a run of them in one multicall is submitted at once, in one group.
RUN_AHEAD = frozenset({"one.vm.allocate", "one.vm.deploy"})


class Dispatcher:
    def __init__(
        self, cloud: Cloud, sessions: Sessions, run_in_thread: RunInThread, log: logging.Logger
    ):
        self._cloud = cloud
        self._sessions = sessions
        self._run_in_thread = run_in_thread
        self._log = log
        self._inline = cloud.config.max_unauthenticated_request_size
        self._logins = FailedLogins(cloud.config.max_auth_failures)

    def handle(self, body: bytes, client: str = "") -> Reply:
        """The reply (a list of byte strings), or a Deferred of it when the session must first
        be verified or the body is decoded in a worker thread. ``client``: the peer's address."""
        if len(body) > self._inline:
            return self._handle_large(body, client)
        try:
            name, params = marshal.decode_call(body)
        except ValueError as exc:
            return marshal.failure(str(exc), BadCall.code)
        return self._dispatch(name, params, client)

    def _dispatch(self, name: str, params: tuple, client: str) -> Reply:
        if name == MULTICALL:
            return self._multicall(params, client)
        return self._one(name, params, client)

    def _one(self, name: str, params: tuple, client: str) -> Reply:
        try:
            method = METHODS.get(name)
            if method is None:
                raise BadCall(f"[{name[:80]}] unknown method")
            if not params:
                raise BadCall(f"[{name}] missing session string")
            args = method.arguments(params[1:])
        except OneError as exc:
            return marshal.failure(exc.message, exc.code)
        except ValueError as exc:
            return marshal.failure(str(exc), BadCall.code)
        caller = self._sessions.cached(params[0])
        if caller is not None:
            return self._call(method, caller, args)
        return self._verified(
            params[0], client, method.name, lambda who: self._call(method, who, args)
        )

    def _verified(
        self,
        session: object,
        client: str,
        what: str,
        then: Callable[[Caller], Reply],
        refuse: Refuse = marshal.failure,
    ) -> Reply:
        """``then(caller)`` once the session is verified in a worker thread; refused at once
        while ``client`` is over its failed logins."""
        wait = self._logins.retry_in(client)
        if wait:
            message = f"[{what}] too many failed logins from {client}; retry in {wait} s"
            return refuse(message, AuthenticationError.code)
        stamp = self._logins.attempt(client)

        def good(who: Caller) -> Reply:
            self._logins.succeeded(client, stamp)
            return then(who)

        d = self._run_in_thread(self._sessions.verify, session, client)
        return d.addCallbacks(good, self._auth_failed, errbackArgs=(what, refuse))

    def _handle_large(self, body: bytes, client: str) -> Reply:
        """Decode ``body`` in a worker thread once the session at its head is good."""
        found = peek.session_of(body[: self._inline])
        if found is None:
            self._log.error(
                f"Refused a request of {len(body)} bytes from {client}: no session in its "
                f"first {self._inline} bytes (MAX_UNAUTHENTICATED_REQUEST_SIZE)"
            )
            return marshal.failure(
                f"[RPC] a request over {self._inline} bytes (MAX_UNAUTHENTICATED_REQUEST_SIZE) "
                "must start with a valid session",
                AuthenticationError.code,
            )
        name, session = found
        if self._sessions.cached(session) is not None:
            return self._decode_large(body, client)
        refuse = marshal.fault if name == MULTICALL else marshal.failure
        return self._verified(
            session, client, name[:80], lambda _: self._decode_large(body, client), refuse
        )

    def _decode_large(self, body: bytes, client: str) -> defer.Deferred:
        self._log.debug(f"Decoding a request of {len(body)} bytes from {client} in a thread")
        d = self._run_in_thread(marshal.decode_call, body)
        return d.addCallbacks(lambda call: self._dispatch(*call, client), self._malformed)

    def _malformed(self, failure: Any) -> list[bytes]:
        if failure.check(ValueError):
            return marshal.failure(str(failure.value), BadCall.code)
        if failure.check(defer.CancelledError):  # the client went away: nobody to answer
            return marshal.failure("[RPC] cancelled", BadCall.code)
        self._log.error(f"Decoding a request failed: {failure.getTraceback()}")
        return marshal.failure("[RPC] Internal error, see oned.log", InternalError.code)

    def _multicall(self, params: tuple, client: str) -> Reply:
        calls = params[0] if len(params) == 1 else None
        if not isinstance(calls, list | tuple):
            return marshal.fault(
                f"[{MULTICALL}] expects one array of {{methodName, params}} structs", BadCall.code
            )
        if len(calls) > MAX_CALLS:
            return marshal.fault(
                f"[{MULTICALL}] {len(calls)} calls; at most {MAX_CALLS} in one multicall",
                BadCall.code,
            )
        replies: list[list[bytes]] = []
        waiting: list[defer.Deferred] = []  # calls answering later, run ahead of their replies
        size, ahead = 0, ""  # bytes of the replies so far; the method the waiting calls share

        def run(at: int) -> Reply:
            """Calls from ``at`` on, in order; one answering later holds the next ones, unless
            they are calls of the same RUN_AHEAD method (then they share its group commit)."""
            nonlocal ahead
            while at < len(calls):
                name = self._run_ahead(calls[at])
                if waiting and (not name or name != ahead):
                    return settled().addCallback(lambda _, at=at: run(at))
                if size > MAX_REPLY:
                    reply = marshal.failure(
                        f"[{MULTICALL}] call {at} not run: the replies before it passed "
                        f"{MAX_REPLY // 2**20} MB",
                        BadCall.code,
                    )
                else:
                    reply = self._inner(calls[at], at, client)
                at += 1
                replies.append([])
                if isinstance(reply, list):
                    add(reply, len(replies) - 1)
                else:
                    waiting.append(reply.addCallback(add, len(replies) - 1))
                    ahead = self._run_ahead(calls[at - 1])  # "" while its session is checked
            if waiting:
                return settled().addCallback(lambda _: marshal.multicall(replies))
            return marshal.multicall(replies)

        def settled() -> defer.Deferred:
            done = defer.gatherResults(list(waiting), consumeErrors=True)
            waiting.clear()
            return done

        def add(reply: list[bytes], slot: int) -> None:
            nonlocal size
            replies[slot] = reply
            size += sum(map(len, reply))

        return run(0)

    def _run_ahead(self, call: object) -> str:
        """The name of a RUN_AHEAD call whose session is known; "" for any other call."""
        name = _method_of(call)
        params = call.get("params") if isinstance(call, dict) else None
        if not name or not isinstance(params, list | tuple) or not params:
            return ""
        return name if self._sessions.cached(params[0]) is not None else ""

    def _inner(self, call: object, at: int, client: str) -> Reply:
        if not isinstance(call, dict):
            return marshal.failure(f"[{MULTICALL}] call {at} is not a struct", BadCall.code)
        name, params = call.get("methodName"), call.get("params", [])
        if not isinstance(name, str) or not isinstance(params, list | tuple):
            return marshal.failure(
                f"[{MULTICALL}] call {at} needs a methodName string and a params array",
                BadCall.code,
            )
        if name == MULTICALL:
            return marshal.failure(f"[{MULTICALL}] call {at}: multicalls do not nest", BadCall.code)
        return self._one(name, tuple(params), client)

    def _call(self, method: Method, caller: Caller, args: tuple) -> Reply:
        """The reply; a Deferred of it when the method answers later (one.system.changes)."""
        self._log.debug(f"{method.name} invoked by {caller.name}")
        try:
            value = method.call(self._cloud, caller, *args)
            if isinstance(value, defer.Deferred):
                return value.addCallbacks(marshal.success, self._later, errbackArgs=(method,))
            return marshal.success(value)
        except OneError as exc:
            self._log.info(f"{method.name} by {caller.name} failed: {exc.message}")
            return marshal.failure(exc.message, exc.code)
        except Exception:
            self._log.exception(f"{method.name} by {caller.name}: internal error")
            return marshal.failure(
                f"[{method.name}] Internal error, see oned.log", InternalError.code
            )

    def _later(self, failure: Any, method: Method) -> list[bytes]:
        """A method's Deferred failed: its error, or an internal one (logged)."""
        if failure.check(OneError):
            return marshal.failure(failure.value.message, failure.value.code)
        if not failure.check(defer.CancelledError):  # the client went away: nobody to tell
            self._log.error(f"{method.name}: internal error", exc_info=log.exc_info(failure))
        return marshal.failure(f"[{method.name}] Internal error, see oned.log", InternalError.code)

    def _auth_failed(
        self, failure: Any, what: str, refuse: Refuse = marshal.failure
    ) -> list[bytes]:
        if failure.check(AuthenticationError):
            return refuse(f"[{what}] {failure.value.message}", AuthenticationError.code)
        if failure.check(defer.CancelledError):
            # The client went away while its session was checked: nobody to answer, nothing to
            # log. The attempt stays counted as a failed login (hanging up costs a try).
            return refuse(f"[{what}] cancelled", AuthenticationError.code)
        self._log.error(f"{what}: authentication error: {failure.getTraceback()}")
        return refuse(f"[{what}] Internal error, see oned.log", InternalError.code)


def _method_of(call: object) -> str:
    """The methodName of a multicall's call when it is a RUN_AHEAD method, else ""."""
    name = call.get("methodName") if isinstance(call, dict) else None
    return name if name in RUN_AHEAD else ""
