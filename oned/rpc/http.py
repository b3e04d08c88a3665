"""A lean HTTP/1.1 server protocol for XML-RPC: requests in, whole replies out, one at a time.

The head is found with one search for the blank line (CRLF CRLF, or LF LF from a client that
ends its lines with LF alone) and split once; the body is read by
Content-Length or ``Transfer-Encoding: chunked`` (``oned.rpc.chunked``); ``Expect:
100-continue`` is answered. Requests are answered in order: one read while the previous reply
is held waits in the buffer (past ``EAGER_READ`` bytes the socket is no longer read). A body
over ``max_size`` is counted, not kept. A malformed head (bad request line, a line over
``MAX_LINE``, more than ``MAX_HEADERS`` headers, a head over ``MAX_HEAD``, a bad length) is
answered 400 and the connection closed.

Timers: an idle connection (no request being read or answered) closes ``idle_timeout`` seconds
after its last reply; a request not whole ``request_timeout`` seconds after its first byte read
closes the connection. What a request means is the ``respond`` callable's business; it answers
with ``reply`` (or writes ``reply_head`` and the body itself, then calls ``reply_done``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from twisted.internet.protocol import Protocol

from oned.rpc.chunked import MAX_LINE, BadRequest, ChunkedBody

MAX_HEADERS = 500  # Twisted's bound on the number of headers
MAX_HEAD = 64 * 1024  # the whole head
EAGER_READ = 64 * 1024  # bytes of pipelined requests read while a reply is held

VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}

_date: list[Any] = [0, b""]


def http_date() -> bytes:
    """The Date header's value, formatted once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date[1]


class Head:
    """What a request's head says that the server acts on."""

    __slots__ = ("chunked", "expect", "http10", "keep_alive", "length", "method", "path")

    def __init__(self, method: bytes, path: bytes, http10: bool) -> None:
        self.method, self.path, self.http10 = method, path, http10
        self.keep_alive = not http10
        self.length = 0
        self.chunked = False
        self.expect = False


def parse_head(head: bytes, bare_lf: bool = False) -> Head:
    """The request line and the headers of ``head`` (without the blank line); ``bare_lf``:
    its lines end with LF alone (or mixed), which RFC 9112 lets a server accept and Twisted
    did: hand-written clients send them."""
    lines = head.split(b"\r\n") if not bare_lf else [x.rstrip(b"\r") for x in head.split(b"\n")]
    words = lines[0].split(b" ")
    if len(words) != 3 or words[2] not in VERSIONS or not words[0].isalpha():
        raise BadRequest("bad request line")
    if len(lines) > MAX_HEADERS + 1:
        raise BadRequest("too many headers")
    request = Head(words[0], words[1], words[2] == b"HTTP/1.0")
    if len(head) > MAX_LINE and max(map(len, lines)) > MAX_LINE:
        raise BadRequest("line too long")
    length = None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in b" \t" or name[:1] in b" \t":
            raise BadRequest("bad header line")
        name = name.lower()
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit() or (length is not None and int(value) != length):
                raise BadRequest("bad Content-Length")
            length = int(value)
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise BadRequest("unsupported Transfer-Encoding")
            request.chunked = True
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                request.keep_alive = False
            elif b"keep-alive" in tokens:
                request.keep_alive = True
        elif name == b"expect" and value.strip().lower() == b"100-continue":
            request.expect = True
    request.length = length or 0
    return request


class HttpChannel(Protocol):
    """One connection: reads requests, hands each whole one to ``respond``, writes replies.
    ``respond(channel, head, body, size)`` gets body None when the body was over
    ``max_size`` (``size`` bytes)."""

    respond: Callable[[HttpChannel, Head, bytes | None, int], None]
    max_size = 8 * 1024 * 1024
    idle_timeout: float = 60
    request_timeout: float = 15
    clock: Any = None
    log: logging.Logger = logging.getLogger("oned.rpc.http")
    client = ""

    def __init__(self) -> None:
        self._buffer = b""
        self._head: Head | None = None  # the request whose body is being read
        self._body: list[bytes] = []
        self._size = 0  # the body's bytes read (kept or not); -1: refused unread
        self._chunks: ChunkedBody | None = None
        self.busy: Head | None = None  # the request being answered
        self.on_lost: Callable[[], object] | None = None  # called if the connection goes
        self.gone = False
        self._deadline: Any = None
        self._idle: Any = None
        self._idle_since = 0.0
        self._paused = False

    def connectionMade(self) -> None:
        self._idle_since = self.clock.seconds()
        self._idle = self.clock.callLater(self.idle_timeout, self._idle_check)

    def dataReceived(self, data: bytes) -> None:
        if self.gone:  # closing: what still comes is not read
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if self.busy is not None:
            self._buffer = data
            if len(data) > EAGER_READ and not self._paused:
                self._paused = True
                self.transport.pauseProducing()
            return
        try:
            self._read(data)
        except BadRequest as exc:
            self._bad_request(str(exc))

    def _read(self, data: bytes) -> None:
        """Take whole requests out of ``data`` while none is being answered; keep the rest."""
        while data and self.busy is None and not self.gone:
            if self._head is None:
                end, blank = data.find(b"\r\n\r\n"), 4
                bare = data.find(b"\n\n", 0, end if end >= 0 else MAX_HEAD + 2)
                if bare >= 0:  # a head whose lines end with LF alone
                    end, blank = bare, 2
                if end < 0 or end > MAX_HEAD:
                    if len(data) > MAX_HEAD:
                        raise BadRequest("head too long")
                    break
                self._start(parse_head(data[:end], bare_lf=blank == 2))
                data = data[end + blank :]
            data, whole = self._read_body(data)
            if not whole:
                break
        self._buffer = data
        if (data or self._head) and not (self.busy or self.gone or self._deadline):
            self._deadline = self.clock.callLater(self.request_timeout, self._too_slow)

    def _start(self, head: Head) -> None:
        self._head = head
        self._body = []
        self._size = 0
        if head.chunked:
            self._chunks = ChunkedBody()
        elif head.length > self.max_size and head.expect:
            head.keep_alive = False  # the body is not wanted: answer at once and close
            self._size = -1
            return
        if head.expect:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _read_body(self, data: bytes) -> tuple[bytes, bool]:
        """Add what belongs to the body; once it is whole, answer it. Returns what is left
        and whether the body was whole."""
        head = self._head
        assert head is not None
        if self._chunks is not None:
            pieces, data, whole = self._chunks.feed(data)
            for piece in pieces:
                self._keep(piece)
        elif self._size < 0:
            whole = True
        else:
            need = head.length - self._size
            if need:
                piece, data = data[:need], data[need:]
                self._keep(piece)
            whole = self._size >= head.length
        if whole:
            self._complete(head)
        return data, whole

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size <= self.max_size:
            self._body.append(piece)
        elif self._body:
            self._body = []

    def _complete(self, head: Head) -> None:
        self._head = self._chunks = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        body, size = self._body, self._size
        self._body = []
        self.busy = head
        if size < 0:
            self.respond(self, head, None, head.length)
        elif size > self.max_size:
            self.respond(self, head, None, size)
        else:
            self.respond(self, head, body[0] if len(body) == 1 else b"".join(body), size)

    def reply(self, parts: list[bytes], status: int = 200, headers: bytes = b"") -> None:
        """Send a whole reply to the request being answered, then read the next one."""
        if self.gone:
            return
        head = self.reply_head(status, headers, sum(map(len, parts)))
        if self.busy is not None and self.busy.method == b"HEAD":
            parts = []
        self.transport.writeSequence([head, *parts])
        self.reply_done()

    def reply_head(self, status: int, headers: bytes, size: int) -> bytes:
        """The status line and headers of a reply of ``size`` bytes to ``busy``."""
        head = self.busy
        assert head is not None
        if not head.keep_alive:
            headers += b"Connection: close\r\n"
        elif head.http10:
            headers += b"Connection: keep-alive\r\n"
        return b"HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            status,
            REASONS[status],
            http_date(),
            size,
            headers,
        )

    def reply_done(self) -> None:
        """The reply to ``busy`` is written: close, or go on with what was read meanwhile."""
        head, self.busy, self.on_lost = self.busy, None, None
        if self.gone:
            return
        if head is None or not head.keep_alive:
            self.gone = True
            self.transport.loseConnection()
            return
        self._idle_since = self.clock.seconds()
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        if self._buffer:
            data, self._buffer = self._buffer, b""
            self.dataReceived(data)

    def _bad_request(self, why: str) -> None:
        self.log.debug(f"Bad HTTP request from {self.client} ({why}); closed the connection")
        self.busy = Head(b"", b"", False)
        self.busy.keep_alive = False
        self._head = self._chunks = None
        self._buffer = b""
        self.reply([b"Bad request\n"], 400, b"Content-Type: text/plain\r\n")

    def _idle_check(self) -> None:
        """Close the connection when it was idle ``idle_timeout`` seconds; else look again
        when it could have been."""
        self._idle = None
        if self.gone:
            return
        wait = self.idle_timeout
        if self.busy is None and self._head is None and not self._buffer:
            wait = self._idle_since + self.idle_timeout - self.clock.seconds()
            if wait <= 0:
                self.gone = True
                self.transport.loseConnection()
                return
        self._idle = self.clock.callLater(wait, self._idle_check)

    def _too_slow(self) -> None:
        self._deadline = None
        self.log.info(
            f"Closed a connection from {self.client}: no whole request within "
            f"{self.request_timeout:g} s (TIMEOUT)"
        )
        self.gone = True
        self.transport.abortConnection()

    def connectionLost(self, reason: object = None) -> None:
        self.gone = True
        for timer in (self._deadline, self._idle):
            if timer is not None and timer.active():
                timer.cancel()
        self._deadline = self._idle = None
        self._buffer = b""
        self._body = []
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()
