"""From request bytes to reply bytes: decode, find the method, authenticate, call, encode.

Never raises and never leaks a traceback: OneErrors become ``[false, message, code]``; anything
else is logged with its traceback and answered as an internal error.
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


class Dispatcher:
    def __init__(
        self, cloud: Cloud, sessions: Sessions, run_in_thread: RunInThread, log: logging.Logger
    ):
        self._cloud = cloud
        self._sessions = sessions
        self._run_in_thread = run_in_thread
        self._log = log

    def handle(self, body: bytes) -> list[bytes] | defer.Deferred:
        """The reply (a list of byte strings), or a Deferred of it when the session must first
        be verified."""
        try:
            name, params = marshal.decode_call(body)
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
