"""XML-RPC client for oned, shared by the CLIs, the scheduler and econe.

Pure in the sense of DESIGN.md §3: no Twisted, no SQLAlchemy; it only does blocking HTTP with the
standard library. One ``OneClient`` keeps one persistent HTTP/1.1 connection and is not
thread-safe: give each thread its own.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import xmlrpc.client
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

from oned.locations import default_auth_file, default_endpoint

MULTICALL = "system.multicall"

# Failures that mean a kept-alive connection was closed by the server while idle; the request
# is sent once more on a fresh connection (as the stdlib's xmlrpc.client.Transport does).
_DROPPED = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    http.client.BadStatusLine,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


class OneClientError(Exception):
    """The call could not be made or its answer could not be read; ``message`` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class OneCallError(OneClientError):
    """oned answered ``[false, message, code]``; ``code`` is 0 for 1.4-style two-item replies."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


def read_session(path: str | None = None) -> str:
    """The first line of the ONE_AUTH file (``user:password``), sent verbatim as the session.

    Raises ``OneClientError("ONE_AUTH file <path> not found: <reason>")`` when the file does not
    exist, one saying what else is wrong when it cannot be read (a directory, no permission, not
    UTF-8), and a clear error when its first line is not of the form ``user:password``.
    """
    path = path or default_auth_file()
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline().strip()
    except FileNotFoundError as e:
        raise OneClientError(f"ONE_AUTH file {path} not found: {e.strerror or e}") from e
    except IsADirectoryError as e:
        raise OneClientError(f"ONE_AUTH file {path} is a directory, not a file") from e
    except OSError as e:
        raise OneClientError(f"cannot read ONE_AUTH file {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise OneClientError(f"ONE_AUTH file {path} is not UTF-8 text: {e.reason}") from e
    if ":" not in line:
        raise OneClientError(f"ONE_AUTH file {path}: first line must be <username>:<password>")
    return line


class OneClient:
    """Calls ``one.*`` methods on oned with the session prepended.

    ``endpoint`` defaults to ``$ONE_XMLRPC`` or ``http://localhost:2633/RPC2``; ``session`` to the
    first line of the ``$ONE_AUTH`` file (``~/.one/one_auth``). ``https`` endpoints are verified
    with ``ssl_context`` (default: the system's trust store).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        session: str | None = None,
        timeout: float = 30,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.endpoint = endpoint or default_endpoint()
        self.session = session if session is not None else read_session()
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._scheme, self._host, self._port, self._path = _split_endpoint(self.endpoint)
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # the current connection has carried a complete exchange

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method(session, *params)`` and return the value of ``[true, value, ...]``.

        Raises ``OneCallError`` when oned answers ``[false, message, code]`` (or an XML-RPC
        fault) and ``OneClientError`` when oned cannot be reached or answers garbage.
        """
        body = xmlrpc.client.dumps((self.session, *params), methodname=method, allow_none=True)
        reply = self._post(body.encode("utf-8"))
        return _unwrap(method, reply)

    def multicall(self, calls: Sequence[tuple[str, tuple]]) -> list[Any]:
        """Make ``calls`` (method, params without the session) in one ``system.multicall``.

        Returns, per call and in order, its value or the ``OneCallError`` it failed with.
        Raises ``OneCallError`` when oned refuses the multicall as a whole (code 0x1000 from an
        oned that does not know the method) and ``OneClientError`` as ``call`` does.
        """
        structs = [{"methodName": m, "params": [self.session, *p]} for m, p in calls]
        body = xmlrpc.client.dumps((structs,), methodname=MULTICALL, allow_none=True)
        replies = _unwrap(MULTICALL, self._post(body.encode("utf-8")), whole=True)
        if not isinstance(replies, list) or len(replies) != len(calls):
            raise OneClientError(f"malformed reply to {MULTICALL}: {len(calls)} calls made")
        return [_one_of(method, reply) for (method, _), reply in zip(calls, replies, strict=True)]

    def close(self) -> None:
        """Close the persistent connection; the next call opens a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._used = False

    def interrupt(self) -> None:
        """From another thread: end the call this client is blocked in (it fails with
        `OneClientError`), e.g. a long-held `one.system.changes` when its process stops."""
        conn = self._conn
        sock = conn.sock if conn is not None else None
        self._used = False  # the drop is then final, not a kept-alive connection to redo
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> OneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(self, body: bytes) -> bytes:
        """Send one request on the kept-alive connection, reconnecting once if it was dropped."""
        try:
            return self._exchange(body)
        except _DROPPED as e:
            reused = self._used
            self.close()
            if not reused:
                raise self._unreachable(str(e) or "connection closed by peer") from e
        try:
            return self._exchange(body)
        except _DROPPED as e:
            self.close()
            raise self._unreachable(str(e) or "connection closed by peer") from e

    def _exchange(self, body: bytes) -> bytes:
        conn = self._connection()
        headers = {"Content-Type": "text/xml", "User-Agent": "onecloud"}
        try:
            conn.request("POST", self._path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
        except _DROPPED:
            raise
        except TimeoutError as e:
            self.close()
            raise OneClientError(
                f"oned at {self.endpoint} did not answer within {self.timeout:g} s"
            ) from e
        except OSError as e:
            self.close()
            raise self._unreachable(e.strerror or str(e)) from e
        if resp.status != 200:
            self.close()
            raise OneClientError(
                f"oned at {self.endpoint} answered HTTP {resp.status} {resp.reason}"
            )
        self._used = True
        return data

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._used = False
            if self._scheme == "https":
                context = self._ssl_context or ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout
                )
        return self._conn

    def _unreachable(self, reason: str) -> OneClientError:
        return OneClientError(f"cannot reach oned at {self.endpoint}: {reason}")


def _split_endpoint(endpoint: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an http(s) URL; a bad URL is a ``OneClientError``."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OneClientError(f"bad XML-RPC endpoint {endpoint!r}: expected http(s)://host:port/")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise OneClientError(f"bad XML-RPC endpoint {endpoint!r}: {e}") from e
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def _unwrap(method: str, data: bytes, whole: bool = False) -> Any:
    """The value of a ``[success, value, errcode]`` reply, or the matching exception.

    ``whole``: a multicall's reply, an array of one-item arrays, is returned as it is (an
    error reply, ``[false, ...]``, still raises).
    """
    try:
        (reply,), _ = xmlrpc.client.loads(data, use_builtin_types=True)
    except xmlrpc.client.Fault as fault:
        raise OneCallError(str(fault.faultString), int(fault.faultCode)) from None
    except (ExpatError, ValueError, TypeError, xmlrpc.client.ResponseError) as e:
        raise OneClientError(f"malformed reply to {method}: {e}") from e
    if whole and isinstance(reply, list) and (not reply or isinstance(reply[0], list | dict)):
        return reply
    return _value_of(method, reply)


def _one_of(method: str, entry: Any) -> Any:
    """One entry of a multicall's reply: ``[reply]`` or a fault struct; the value or the
    ``OneCallError``."""
    if isinstance(entry, dict):
        return OneCallError(str(entry.get("faultString", "")), int(entry.get("faultCode", 0)))
    if not isinstance(entry, list) or len(entry) != 1:
        return OneClientError(f"malformed reply to {method} in a multicall: {entry!r}")
    try:
        return _value_of(method, entry[0])
    except OneClientError as e:
        return e


def _value_of(method: str, reply: Any) -> Any:
    if not isinstance(reply, list | tuple) or not reply:
        raise OneClientError(f"malformed reply to {method}: {reply!r}")
    if reply[0]:
        return reply[1] if len(reply) > 1 else None
    message = str(reply[1]) if len(reply) > 1 and reply[1] != "" else f"{method} failed"
    code = reply[2] if len(reply) > 2 and isinstance(reply[2], int) else 0
    raise OneCallError(message, code)


__all__ = ["OneCallError", "OneClient", "OneClientError", "read_session"]
