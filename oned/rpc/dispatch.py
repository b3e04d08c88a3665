"""From request bytes to reply bytes: decode, find the method, authenticate, call, encode.

Never raises and never leaks a traceback: OneErrors become ``[false, message, code]``; anything
else is logged with its traceback and answered as an internal error.

``system.multicall`` (the XML-RPC extension xmlrpc-c, and so OpenNebula's oned, serves) takes
an array of ``{methodName, params}`` structs and answers an array with, per call, a one-item
array holding that call's reply (a multicall refused as a whole is an XML-RPC fault, as
standard clients expect). Each call carries its own session. They run in order, in one
reactor turn when their sessions are known: the scheduler sends its deployments this way, one
HTTP request for many VMs. At most MAX_CALLS calls; once the replies pass MAX_REPLY bytes, the
remaining calls are not run and each says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from oned.api.cloud import Caller, Cloud
from oned.api.sessions import Sessions
from oned.errors import AuthenticationError, BadCall, InternalError, OneError
from oned.rpc import marshal
from oned.rpc.methods import METHODS, Method

RunInThread = Callable[..., defer.Deferred]
Reply = list[bytes] | defer.Deferred
MULTICALL = "system.multicall"
# A multicall runs in one go and its reply is built whole: bounded, so that one request cannot
# hold the reactor for long or make a reply of gigabytes (1,000 pool listings).
MAX_CALLS = 1000
MAX_REPLY = 64 * 2**20


class Dispatcher:
    def __init__(
        self, cloud: Cloud, sessions: Sessions, run_in_thread: RunInThread, log: logging.Logger
    ):
        self._cloud = cloud
        self._sessions = sessions
        self._run_in_thread = run_in_thread
        self._log = log

    def handle(self, body: bytes) -> Reply:
        """The reply (a list of byte strings), or a Deferred of it when the session must first
        be verified."""
        try:
            name, params = marshal.decode_call(body)
        except ValueError as exc:
            return marshal.failure(str(exc), BadCall.code)
        if name == MULTICALL:
            return self._multicall(params)
        return self._one(name, params)

    def _one(self, name: str, params: tuple) -> Reply:
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
        d = self._run_in_thread(self._sessions.verify, params[0])
        d.addCallbacks(
            lambda who: self._call(method, who, args), self._auth_failed, errbackArgs=(method,)
        )
        return d

    def _multicall(self, params: tuple) -> Reply:
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
        size = 0

        def run(at: int) -> Reply:
            """Calls from ``at`` on, in order; a call waiting for its session holds the rest."""
            while at < len(calls):
                if size > MAX_REPLY:
                    reply = marshal.failure(
                        f"[{MULTICALL}] call {at} not run: the replies before it passed "
                        f"{MAX_REPLY // 2**20} MB",
                        BadCall.code,
                    )
                else:
                    reply = self._inner(calls[at], at)
                at += 1
                if not isinstance(reply, list):
                    return reply.addCallback(resume, at)
                add(reply)
            return marshal.multicall(replies)

        def resume(reply: list[bytes], at: int) -> Reply:
            add(reply)
            return run(at)

        def add(reply: list[bytes]) -> None:
            nonlocal size
            replies.append(reply)
            size += sum(map(len, reply))

        return run(0)

    def _inner(self, call: object, at: int) -> Reply:
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
        return self._one(name, tuple(params))

    def _call(self, method: Method, caller: Caller, args: tuple) -> list[bytes]:
        self._log.debug(f"{method.name} invoked by {caller.name}")
        try:
            return marshal.success(method.call(self._cloud, caller, *args))
        except OneError as exc:
            self._log.info(f"{method.name} by {caller.name} failed: {exc.message}")
            return marshal.failure(exc.message, exc.code)
        except Exception:
            self._log.exception(f"{method.name} by {caller.name}: internal error")
            return marshal.failure(
                f"[{method.name}] Internal error, see oned.log", InternalError.code
            )

    def _auth_failed(self, failure: Any, method: Method) -> list[bytes]:
        if failure.check(AuthenticationError):
            return marshal.failure(
                f"[{method.name}] {failure.value.message}", AuthenticationError.code
            )
        self._log.error(f"{method.name}: authentication error: {failure.getTraceback()}")
        return marshal.failure(f"[{method.name}] Internal error, see oned.log", InternalError.code)
