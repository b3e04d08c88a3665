"""A large reply (a pool listing) leaves a piece at a time as the transport drains, whole and in
order, and stops when the connection goes (oned.rpc.large_reply.LargeReply)."""

from __future__ import annotations

import contextlib
import socket
import time

from twisted.internet import task
from twisted.internet.abstract import FileDescriptor
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from oned.rpc.large_reply import LargeReply

HEAD = b"HTTP/1.1 200 OK\r\n\r\n"


class FakeTransport:
    """A transport that pauses its producer after every write, as a real one does once its
    buffer holds more than 64 KB."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.producer: LargeReply | None = None

    def registerProducer(self, producer: LargeReply, streaming: bool) -> None:
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.producer is not None:
            self.producer.pauseProducing()


class Channel:
    """Stands in for oned.rpc.http.HttpChannel: the head it makes and the end of the reply."""

    def __init__(self, transport: object) -> None:
        self.transport = transport
        self.finished = 0

    def reply_head(self, status: int, headers: bytes, size: int) -> bytes:
        assert status == 200 and size > 0
        return HEAD

    def reply_done(self) -> None:
        assert self.transport.producer is None
        self.finished += 1


PARTS = [b"<head>", *(b"%05d" % n * 40 for n in range(1000)), b"<tail>"]  # 200 KB


def test_a_large_reply_is_written_a_piece_at_a_time_whole_and_in_order(monkeypatch):
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    transport = FakeTransport()
    channel = Channel(transport)
    LargeReply(list(PARTS), channel).start()
    assert len(transport.written) == 2 and not channel.finished  # the head, a first piece
    while transport.producer is not None:
        transport.producer.resumeProducing()
    assert b"".join(transport.written) == HEAD + b"".join(PARTS)
    assert len(transport.written) == 14 and channel.finished == 1
    assert max(map(len, transport.written)) < 16 * 1024 + 200


def test_parts_bigger_than_a_piece_go_one_a_write(monkeypatch):
    """A VM whose XML is bigger than a piece (128 KB of `&` in a template is 640 KB escaped):
    each write carries at least one part. Before, such a part at the start of a piece made an
    empty write and no progress: a loop of the reactor without end over TLS (no socket to send
    to straight), a busy one over TCP until the client read."""
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    parts = [b"<head>", *(bytes([65 + n]) * 40_000 for n in range(5)), b"<tail>"]
    transport = FakeTransport()
    channel = Channel(transport)
    LargeReply(list(parts), channel).start()
    for _ in range(20):  # a bound: without progress this would never end
        if transport.producer is None:
            break
        transport.producer.resumeProducing()
    assert b"".join(transport.written) == HEAD + b"".join(parts)
    assert channel.finished == 1 and b"" not in transport.written


def test_a_reply_whose_connection_went_stops_without_finishing(monkeypatch):
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    transport = FakeTransport()
    channel = Channel(transport)
    reply = LargeReply(list(PARTS), channel)
    reply.start()
    reply.stopProducing()
    reply.resumeProducing()
    assert len(transport.written) == 2 and channel.finished == 0


class TcpTransport(FakeTransport, FileDescriptor):
    """Twisted's TCP transport as LargeReply sees it (FileDescriptor: a socket and the buffers
    in front of it): what is written waits in ``_tempDataBuffer`` and pauses the producer past
    64 KB, as Twisted does."""

    TLS = False

    def __init__(self, sock: socket.socket) -> None:
        FakeTransport.__init__(self)
        FileDescriptor.__init__(self, reactor=task.Clock())  # type: ignore[arg-type]
        self.socket = sock
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.pending = bytearray()  # what was written through Twisted, not sent yet

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.pending += data
        self._tempDataLen = len(self.pending)
        if self._tempDataLen > 64 * 1024 and self.producer is not None:
            self.producer.pauseProducing()

    def drain(self) -> None:
        """Twisted's doWrite: send what the socket takes; once empty, resume the producer."""
        if self.pending:
            with contextlib.suppress(BlockingIOError):
                del self.pending[: self.socket.send(self.pending)]
            self._tempDataLen = len(self.pending)
            if not self.pending and self.producer is not None:
                self.producer.resumeProducing()


def test_over_tcp_fragments_go_to_the_socket_straight_and_in_order() -> None:
    """The head's write goes through Twisted; then the parts go straight to the socket while
    it takes them, a joined piece through Twisted when it is full, and so on."""
    parts = [b"<head>", *(b"%06d" % n * 50 for n in range(20000)), b"<tail>"]  # 6 MB
    sender, receiver = socket.socketpair()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sender.setblocking(False)
    receiver.setblocking(False)
    transport = TcpTransport(sender)
    channel = Channel(transport)
    LargeReply(list(parts), channel).start()
    received = bytearray()
    whole = HEAD + b"".join(parts)
    deadline = time.monotonic() + 60
    while len(received) < len(whole):
        assert time.monotonic() < deadline, "the reply did not arrive within 60 s"
        transport.drain()
        with contextlib.suppress(BlockingIOError):
            received += receiver.recv(1 << 20)
    assert bytes(received) == whole and channel.finished == 1
    through_twisted = sum(map(len, transport.written))
    assert len(transport.written) >= 3 and through_twisted < len(whole)  # straight too
    sender.close()
    receiver.close()


def test_over_tls_nothing_goes_to_the_socket_straight() -> None:
    """TLSMemoryBIOProtocol hands ``TLS``, ``socket`` and the buffers to the TCP connection
    under it (ProtocolWrapper.__getattr__): the reply was sent in plain text into the TLS
    stream (the client: "wrong version number"). Every piece goes through the wrapper now."""
    sender, receiver = socket.socketpair()
    tcp = TcpTransport(sender)
    tls = ProtocolWrapper(WrappingFactory(Factory()), Protocol())
    tls.makeConnection(tcp)
    assert tls.TLS is False and tls.socket is sender  # what the old check looked at
    channel = Channel(tls)
    LargeReply(list(PARTS), channel).start()
    while tcp.producer is not None:
        tcp.producer.resumeProducing()
    assert b"".join(tcp.written) == HEAD + b"".join(PARTS) and channel.finished == 1
    sender.close()
    receiver.close()
