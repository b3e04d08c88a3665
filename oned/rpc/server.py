"""The XML-RPC front: POST /RPC2 over HTTP/1.1 (``oned.rpc.http``), optional TLS, and its limits.

Under abuse: at most MAX_CONN connections, MAX_CONN_PER_CLIENT from one address (more are
closed at once); an idle connection is closed after KEEPALIVE_TIMEOUT seconds, and one that
has not sent a whole request TIMEOUT seconds after its first byte (a client trickling a byte at
a time would otherwise hold it forever); a body over MAX_REQUEST_SIZE is counted, not kept, and
answered with an XML-RPC fault.

Other paths are answered 404; any method but POST 405 with ``Allow: POST`` (Twisted answered
501 to methods it did not know, such as PUT: 405 tells a client what to use instead).
"""

from __future__ import annotations

import logging
import resource as rlimits
from typing import Any

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from oned.config import Config
from oned.errors import BadCall
from oned.rpc import marshal
from oned.rpc.dispatch import Dispatcher
from oned.rpc.http import Head, HttpChannel
from oned.rpc.large_reply import LargeReply

__all__ = ["LargeReply", "RpcChannel", "RpcSite", "make_site", "raise_open_files"]

PATH = b"/RPC2"
XML = b"Content-Type: text/xml\r\n"
TEXT = b"Content-Type: text/plain\r\n"


class RpcChannel(HttpChannel):
    """A connection to the XML-RPC front: gives its place in the count back when it goes."""

    factory: RpcSite

    def connectionLost(self, reason: object = None) -> None:
        super().connectionLost(reason)
        self.factory.released(self.client)


class RpcSite(Factory):
    """Answers POST /RPC2 with the dispatcher; counts open connections, in all and per client
    address, and refuses those over."""

    protocol = RpcChannel
    noisy = False

    def __init__(
        self, dispatcher: Dispatcher, config: Config, log: logging.Logger, reactor: Any = None
    ):
        if reactor is None:
            from twisted.internet import reactor  # the process's own, as Site did
        self._dispatcher = dispatcher
        self._config = config
        self._log = log
        self._clock = reactor
        self.open = 0
        self.per_client: dict[str, int] = {}

    def buildProtocol(self, addr: IAddress) -> RpcChannel | None:
        client = str(getattr(addr, "host", ""))
        mine = self.per_client.get(client, 0)
        if self.open >= self._config.max_conn or mine >= self._config.max_conn_per_client:
            self._log.debug(
                f"Refused a connection from {client}: {self.open} open, {mine} from it "
                "(MAX_CONN, MAX_CONN_PER_CLIENT)"
            )
            return None
        channel = RpcChannel()
        channel.factory = self
        channel.client = client
        channel.respond = self.respond
        channel.clock = self._clock
        channel.log = self._log
        channel.max_size = self._config.max_request_size
        channel.idle_timeout = self._config.keepalive_timeout
        channel.request_timeout = self._config.timeout
        self.open += 1
        self.per_client[client] = mine + 1
        return channel

    def released(self, client: str) -> None:
        self.open -= 1
        left = self.per_client.pop(client) - 1
        if left:
            self.per_client[client] = left

    def respond(self, channel: HttpChannel, head: Head, body: bytes | None, size: int) -> None:
        """Answer one whole request: the dispatcher's reply, now or when its Deferred fires."""
        if head.method != b"POST":
            channel.reply([b"XML-RPC: POST to /RPC2\n"], 405, b"Allow: POST\r\n" + TEXT)
        elif head.path != PATH and head.path.partition(b"?")[0] != PATH:
            channel.reply([b"XML-RPC is served at /RPC2\n"], 404, TEXT)
        elif body is None:
            self._log.error(f"Refused a request of {size} bytes (MAX_REQUEST_SIZE)")
            limit = self._config.max_request_size
            message = f"request of {size} bytes exceeds MAX_REQUEST_SIZE ({limit})"
            self.send(marshal.failure(message, BadCall.code), channel)
        else:
            try:
                reply = self._dispatcher.handle(body, channel.client)
            except Exception:
                self._crashed(Failure(), channel)
                return
            if isinstance(reply, list):
                self.send(reply, channel)
            else:
                # a client that goes away cancels a held reply (one.system.changes forgets it)
                channel.on_lost = reply.cancel
                reply.addCallbacks(
                    self.send, self._crashed, callbackArgs=(channel,), errbackArgs=(channel,)
                )

    @staticmethod
    def send(parts: list[bytes], channel: HttpChannel) -> None:
        """Send the reply parts: a small reply in one write, a large one (a listing of cached
        fragments) a piece at a time as the transport drains (``LargeReply``)."""
        if channel.gone:
            return
        if sum(map(len, parts)) <= LargeReply.piece:
            channel.reply(parts, 200, XML)
        else:
            LargeReply(parts, channel, XML).start()

    def _crashed(self, failure: Failure, channel: HttpChannel) -> None:
        self._log.error(f"Unexpected error answering a request: {failure}")
        self.send(marshal.failure("Internal error, see oned.log", 0x2000), channel)


def make_site(
    dispatcher: Dispatcher, config: Config, log: logging.Logger, reactor: Any = None
) -> RpcSite:
    """The factory to give ``listenTCP`` or ``listenSSL``."""
    return RpcSite(dispatcher, config, log, reactor)


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
