"""The dashboard's calls to oned: XML-RPC as the signed-in user, oned's refusals as HTTP errors.

Pure and blocking: the server runs these on worker threads, each thread with one kept-alive
`OneClient` per user session (a client is not thread-safe). oned's codes map as
share/doc/dashboard.md says: 0x100 -> 401, 0x200 -> 403, 0x400 -> 404, 0x800 -> 409 (the
action does not fit the VM's state), 0x1000 -> 400, 0x2000 -> 400 (a template's syntax
error) or 502 (oned's internal error), others -> 409; oned that cannot be reached
(or answers garbage) is 502 with `oned_down`.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import econe.one
from oned.client import OneCallError, OneClient, OneClientError

_STATUS = {0x100: 401, 0x200: 403, 0x400: 404, 0x800: 409, 0x1000: 400}


class DashboardError(Exception):
    """An answer other than success: HTTP `status` and the JSON `{"error": message, ...}`."""

    def __init__(self, status: int, message: str, oned_down: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.oned_down = oned_down

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        return {**body, "oned_down": True} if self.oned_down else body


def refusal(exc: OneCallError) -> DashboardError:
    """oned's `[false, message, code]` as the HTTP error; the message without its
    `[one.vm.action] ` prefix, on one line, cut at 500 characters."""
    message = " ".join(exc.message.split("] ", 1)[-1].split())[:500]
    status = _STATUS.get(exc.code, 409)
    if exc.code == 0x2000:  # NOTE: OpenNebula's allocate answers a template's syntax error so
        status = 502 if message.startswith("Internal error") else 400
    return DashboardError(status, message or "refused by oned")


def unreachable(exc: OneClientError) -> DashboardError:
    return DashboardError(502, " ".join(exc.message.split())[:500], oned_down=True)


class Oned(econe.one.Oned):
    """oned at `endpoint`, called with a user's `user:password` per call: econe's kept-alive
    clients per thread and session and its fast `listing` (the answer's XML cut out of the
    reply and parsed once by ElementTree), with the dashboard's errors."""

    def call(self, session: str, method: str, *params: Any, **_: Any) -> Any:
        """`method(session, *params)`'s value; `DashboardError` for a refusal or no oned."""
        try:
            return self._client(session).call(method, *params)
        except OneCallError as exc:
            raise refusal(exc) from None
        except OneClientError as exc:
            raise unreachable(exc) from None

    def escaped(self, session: str, method: str, *params: Any) -> bytes | None:
        """econe's, with `DashboardError` when oned cannot be reached."""
        body = xmlrpc.client.dumps((session, *params), methodname=method, allow_none=True)
        try:
            reply = self._client(session)._post(body.encode("utf-8"))  # kept-alive transport
        except OneClientError as exc:
            raise unreachable(exc) from None
        return econe.one.successful_bytes(reply)

    def single(self, session: str) -> SingleClient:
        """The same oned for `session`'s calls made one after another from any thread (a
        live feed's), on one connection of their own rather than one per pool thread."""
        return SingleClient(self.endpoint, session, self.timeout)


class SingleClient(Oned):
    def __init__(self, endpoint: str, session: str, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self.own = OneClient(endpoint, session, timeout)

    def _client(self, session: str) -> OneClient:
        return self.own

    def close(self) -> None:
        self.own.close()

    def interrupt(self) -> None:
        """End the call in flight on another thread (`OneClient.interrupt`)."""
        self.own.interrupt()
