"""The HTTP side of the XML-RPC front: POST /RPC2, body size limit, keep-alive, optional TLS.

Under abuse: at most MAX_CONN connections, MAX_CONN_PER_CLIENT from one address (more are
closed at once); an idle connection is closed after KEEPALIVE_TIMEOUT seconds, and one that
has not sent a whole request TIMEOUT seconds after its first byte (a client trickling a byte at
a time would otherwise hold it forever: the idle timer restarts with every byte).
"""

from __future__ import annotations

import logging
import resource as rlimits
import socket
from typing import Any

from twisted.internet.interfaces import IAddress
from twisted.web import http, resource, server

from oned.config import Config
from oned.errors import BadCall
from oned.rpc import marshal
from oned.rpc.dispatch import Dispatcher

PATH = b"/RPC2"


class _Discard:
    """Stands in for a request body that is too big: counts, keeps nothing."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)

    def seek(self, *_: object) -> None:
        pass

    def read(self, *_: object) -> bytes:
        return b""

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        pass


class RpcRequest(server.Request):
    """Refuses bodies over ``max_size`` without buffering them."""

    max_size = 8 * 1024 * 1024

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_size:
            self.content = _Discard()
            self.content.size = length
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        content = self.content
        if not isinstance(content, _Discard) and content.tell() + len(data) > self.max_size:
            self.content = _Discard()
            self.content.size = content.tell()
            content.close()
        self.content.write(data)

    @property
    def oversized(self) -> int | None:
        return self.content.size if isinstance(self.content, _Discard) else None


class LargeReply:
    """A push producer that sends a large reply (a listing of cached fragments) as the
    transport drains: the reply is never one buffer (53 MB for one.vmpool.infoextended at
    20,000 VMs).

    Over plain TCP, once the headers are out and Twisted's buffer is empty, the fragments go
    to the socket as they are (``sendmsg``, up to ``IOV_MAX`` of them a call): the kernel's copy
    is the only one. When the socket takes no more, the next ``piece`` bytes are joined and
    written through Twisted, which pauses this producer until it sent them; then the socket
    again. Over TLS (or any other transport) every ``piece`` is joined and written so."""

    piece = 1 << 20  # bytes joined for one write through Twisted (TLS, headers)
    small_piece = 1 << 18  # the same when the socket is full: then it is straight again

    def __init__(self, parts: list[bytes], request: server.Request):
        self._socket = _tcp_socket(request)
        self._parts = parts
        self._at = 0  # the first part not wholly sent
        self._skip = 0  # bytes of it already sent
        self._request: server.Request | None = request
        self._paused = False

    def start(self) -> None:
        assert self._request is not None
        self._request.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        sock = self._socket
        piece = self.piece if sock is None else self.small_piece
        while not self._paused and self._request is not None:
            request = self._request
            if sock is None or not _drained(request) or not self._send(sock, request):
                self._write_piece(request, piece)

    def pauseProducing(self) -> None:
        self._paused = True

    def stopProducing(self) -> None:
        """The connection is gone: forget the reply."""
        self._request = None
        self._parts = []

    def _send(self, sock: socket.socket, request: server.Request) -> bool:
        """Send what the socket takes straight from the parts; False when it took less than
        was offered (full, or failing: Twisted then finds out and stops this producer)."""
        parts, at = self._parts, self._at
        iov: list[bytes | memoryview] = parts[at : at + IOV_MAX]
        if self._skip:
            iov[0] = memoryview(parts[at])[self._skip :]
        try:
            sent = sock.sendmsg(iov)
        except OSError:
            return False
        request.sentLength += sent
        offered = sum(map(len, iov))
        self._advance(sent)
        if self._at == len(parts):
            self._finish(request)
        return sent == offered

    def _advance(self, sent: int) -> None:
        parts, at, sent = self._parts, self._at, sent + self._skip
        while at < len(parts) and sent >= len(parts[at]):
            sent -= len(parts[at])
            at += 1
        self._at, self._skip = at, sent

    def _write_piece(self, request: server.Request, piece: int) -> None:
        parts, at = self._parts, self._at
        chunk = [memoryview(parts[at])[self._skip :]] if self._skip else []
        end, size = at + bool(self._skip), len(parts[at]) - self._skip
        while end < len(parts) and size < piece:
            chunk.append(parts[end])
            size += len(parts[end])
            end += 1
        self._at, self._skip = end, 0
        last = end == len(parts)
        if last:
            self.stopProducing()
            request.unregisterProducer()
        request.write(b"".join(chunk))
        if last:
            request.finish()

    def _finish(self, request: server.Request) -> None:
        self.stopProducing()
        request.unregisterProducer()
        request.finish()


IOV_MAX = 1024  # buffers in one sendmsg (Linux's UIO_MAXIOV)


def _tcp_socket(request: server.Request) -> socket.socket | None:
    """The socket under ``request`` when it is plain TCP (not TLS) with Twisted's buffer as
    this code knows it; else None."""
    transport = getattr(request, "transport", None)
    if getattr(transport, "TLS", True) or not hasattr(transport, "_tempDataLen"):
        return None
    sock = getattr(transport, "socket", None)
    return sock if isinstance(sock, socket.socket) else None


def _drained(request: server.Request) -> bool:
    """The headers are out and nothing waits in Twisted's buffer: bytes sent straight to the
    socket now come after them, in order."""
    transport = request.transport
    pending = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    return bool(request.startedWriting) and not pending


class RpcResource(resource.Resource):
    isLeaf = True

    def __init__(self, dispatcher: Dispatcher, log: logging.Logger):
        super().__init__()
        self._dispatcher = dispatcher
        self._log = log

    def render_POST(self, request: RpcRequest) -> bytes | int:
        if request.path != PATH:
            request.setResponseCode(http.NOT_FOUND)
            return b"XML-RPC is served at /RPC2\n"
        request.setHeader(b"content-type", b"text/xml")
        too_big = request.oversized
        if too_big is not None:
            self._log.error(f"Refused a request of {too_big} bytes (MAX_REQUEST_SIZE)")
            message = f"request of {too_big} bytes exceeds MAX_REQUEST_SIZE ({request.max_size})"
            self._finish(marshal.failure(message, BadCall.code), request)
            return server.NOT_DONE_YET
        client = getattr(request.getClientAddress(), "host", "")
        reply = self._dispatcher.handle(request.content.read(), client)
        if isinstance(reply, list):
            self._finish(reply, request)
        else:
            reply.addCallback(self._finish, request)
            reply.addErrback(self._crashed, request)
            # a client that goes away cancels a held reply (one.system.changes forgets it)
            request.notifyFinish().addErrback(lambda _: reply.cancel())
        return server.NOT_DONE_YET

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(http.NOT_ALLOWED)
        request.setHeader(b"allow", b"POST")
        return b"XML-RPC: POST to /RPC2\n"

    @staticmethod
    def _finish(parts: list[bytes], request: server.Request) -> None:
        """Send the reply parts: a small reply in one write, a large one (a listing of cached
        fragments) a piece at a time as the transport drains (``LargeReply``)."""
        if request.finished or request._disconnected:
            return
        size = sum(map(len, parts))
        request.setHeader(b"content-length", b"%d" % size)
        if size <= LargeReply.piece:
            request.write(b"".join(parts))
            request.finish()
        else:
            LargeReply(parts, request).start()

    def _crashed(self, failure: object, request: server.Request) -> None:
        self._log.error(f"Unexpected error answering a request: {failure}")
        self._finish(marshal.failure("Internal error, see oned.log", 0x2000), request)


class RpcChannel(http.HTTPChannel):
    """HTTP/1.1 (no HTTP/2) with a deadline for each whole request and a place in the count."""

    request_timeout: float = 15
    client = ""
    _deadline: Any = None

    def dataReceived(self, data: bytes) -> None:
        # The first byte of a request starts its deadline (HTTPChannel's _handlingRequest: a
        # request is being answered, and what comes now is a pipelined one, timed once read).
        if self._deadline is None and not self._handlingRequest:
            self._deadline = self.callLater(self.request_timeout, self._too_slow)
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self._stop_deadline()
        super().allContentReceived()

    def connectionLost(self, reason: object) -> None:
        self._stop_deadline()
        super().connectionLost(reason)
        self.site.released(self.client)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self.site.log_event(
            f"Closed a connection from {self.client}: no whole request within "
            f"{self.request_timeout:g} s (TIMEOUT)"
        )
        self.transport.abortConnection()


class RpcSite(server.Site):
    """Counts open connections, in all and per client address, and refuses those over."""

    protocol = RpcChannel

    def __init__(self, root: resource.Resource, config: Config, log: logging.Logger, **kw: Any):
        super().__init__(root, timeout=config.keepalive_timeout, **kw)
        self._config = config
        self._oned_log = log
        self.open = 0
        self.per_client: dict[str, int] = {}

    def buildProtocol(self, addr: IAddress) -> RpcChannel | None:
        client = str(getattr(addr, "host", ""))
        mine = self.per_client.get(client, 0)
        if self.open >= self._config.max_conn or mine >= self._config.max_conn_per_client:
            self._oned_log.debug(
                f"Refused a connection from {client}: {self.open} open, {mine} from it "
                "(MAX_CONN, MAX_CONN_PER_CLIENT)"
            )
            return None
        channel = super().buildProtocol(addr)
        channel.client = client
        channel.request_timeout = self._config.timeout
        self.open += 1
        self.per_client[client] = mine + 1
        return channel

    def released(self, client: str) -> None:
        self.open -= 1
        left = self.per_client.pop(client) - 1
        if left:
            self.per_client[client] = left

    def log_event(self, message: str) -> None:
        self._oned_log.info(message)


def make_site(
    dispatcher: Dispatcher, config: Config, log: logging.Logger, reactor: Any = None
) -> RpcSite:
    # parsePOSTFormSubmission: no form parsing (Twisted builds an email message per POST to
    # read its Content-Type, 40-60 us and cyclic garbage: issue 18)
    site = RpcSite(
        RpcResource(dispatcher, log), config, log, reactor=reactor, parsePOSTFormSubmission=False
    )
    site.displayTracebacks = False
    site.requestFactory = type(
        "SizedRpcRequest", (RpcRequest,), {"max_size": config.max_request_size}
    )
    site.noisy = False
    site.log = lambda request: None  # oned.log is our log; no per-request access log
    return site


OPEN_FILES_BOUND = 65536


def raise_open_files(config: Config, log: logging.Logger) -> int:
    """Raise the soft limit on open files to the hard one (at most OPEN_FILES_BOUND): the
    default 1,024 is less than MAX_CONN plus what oned itself keeps open. Returns the limit."""
    soft, hard = rlimits.getrlimit(rlimits.RLIMIT_NOFILE)
    ceiling = OPEN_FILES_BOUND if hard == rlimits.RLIM_INFINITY else min(hard, OPEN_FILES_BOUND)
    if soft != rlimits.RLIM_INFINITY and soft < ceiling:
        rlimits.setrlimit(rlimits.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    if soft != rlimits.RLIM_INFINITY and soft < config.max_conn + 256:
        log.warning(
            f"MAX_CONN {config.max_conn} is too close to the open files limit ({soft}): raise "
            "the hard limit (ulimit -Hn) or lower MAX_CONN"
        )
    return soft
