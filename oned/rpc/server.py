"""The HTTP side of the XML-RPC front: POST /RPC2, body size limit, keep-alive, optional TLS."""

from __future__ import annotations

import logging

from twisted.web import http, resource, server

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
        reply = self._dispatcher.handle(request.content.read())
        if isinstance(reply, list):
            self._finish(reply, request)
        else:
            reply.addCallback(self._finish, request)
            reply.addErrback(self._crashed, request)
            request.notifyFinish().addErrback(lambda _: None)
        return server.NOT_DONE_YET

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(http.NOT_ALLOWED)
        request.setHeader(b"allow", b"POST")
        return b"XML-RPC: POST to /RPC2\n"

    @staticmethod
    def _finish(parts: list[bytes], request: server.Request) -> None:
        """Send the reply parts as they are: the transport joins them once (no extra copy)."""
        if request.finished or request._disconnected:
            return
        request.setHeader(b"content-length", b"%d" % sum(map(len, parts)))
        request.write(parts[0])
        request.channel.writeSequence(parts[1:])
        request.finish()

    def _crashed(self, failure: object, request: server.Request) -> None:
        self._log.error(f"Unexpected error answering a request: {failure}")
        self._finish(marshal.failure("Internal error, see oned.log", 0x2000), request)


def make_site(dispatcher: Dispatcher, max_size: int, log: logging.Logger) -> server.Site:
    site = server.Site(RpcResource(dispatcher, log))
    site.displayTracebacks = False
    site.requestFactory = type("SizedRpcRequest", (RpcRequest,), {"max_size": max_size})
    site.noisy = False
    site.log = lambda request: None  # oned.log is our log; no per-request access log
    return site
