"""A large reply (a pool listing) leaves a piece at a time as the transport drains, whole and in
order, and stops when the connection goes (oned.rpc.server.LargeReply)."""

from __future__ import annotations

import contextlib
import socket
import time

from oned.rpc.server import LargeReply


class Request:
    """Stands in for twisted.web's Request: the transport pauses its producer after every
    write, as a real one does once its buffer holds more than 64 KB."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.producer: LargeReply | None = None
        self.finished = 0

    def registerProducer(self, producer: LargeReply, streaming: bool) -> None:
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        assert not self.finished
        self.written.append(data)
        if self.producer is not None:
            self.producer.pauseProducing()

    def finish(self) -> None:
        self.finished += 1


PARTS = [b"<head>", *(b"%05d" % n * 40 for n in range(1000)), b"<tail>"]  # 200 KB


def test_a_large_reply_is_written_a_piece_at_a_time_whole_and_in_order(monkeypatch):
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    request = Request()
    reply = LargeReply(list(PARTS), request)  # type: ignore[arg-type]
    reply.start()
    assert len(request.written) == 1 and not request.finished
    while request.producer is not None:
        request.producer.resumeProducing()
    assert b"".join(request.written) == b"".join(PARTS)
    assert len(request.written) == 13 and request.finished == 1
    assert max(map(len, request.written)) < 16 * 1024 + 200


def test_a_reply_whose_connection_went_stops_without_finishing(monkeypatch):
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    request = Request()
    reply = LargeReply(list(PARTS), request)  # type: ignore[arg-type]
    reply.start()
    reply.stopProducing()
    reply.resumeProducing()
    assert len(request.written) == 1 and request.finished == 0


class Transport:
    """Twisted's TCP transport as LargeReply sees it: a socket and the buffer in front of it."""

    TLS = False

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.pending = bytearray()  # what was written through Twisted, not sent yet


class TcpRequest(Request):
    """A request over a real (non-blocking) socket: what is written through Twisted waits in
    the transport's buffer and pauses the producer past 64 KB, as Twisted does."""

    sentLength = 0

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.transport = Transport(sock)
        self.startedWriting = 0

    def write(self, data: bytes) -> None:
        assert not self.finished
        self.startedWriting = 1
        self.written.append(data)
        self.transport.pending += data
        self.transport._tempDataLen = len(self.transport.pending)
        if self.transport._tempDataLen > 64 * 1024 and self.producer is not None:
            self.producer.pauseProducing()

    def drain(self) -> None:
        """Twisted's doWrite: send what the socket takes; once empty, resume the producer."""
        transport = self.transport
        if transport.pending:
            with contextlib.suppress(BlockingIOError):
                del transport.pending[: transport.socket.send(transport.pending)]
            transport._tempDataLen = len(transport.pending)
            if not transport.pending and self.producer is not None:
                self.producer.resumeProducing()


def test_over_tcp_fragments_go_to_the_socket_straight_and_in_order() -> None:
    """The headers' write goes through Twisted; then the parts go straight to the socket
    while it takes them, a joined piece through Twisted when it is full, and so on."""
    parts = [b"<head>", *(b"%06d" % n * 50 for n in range(20000)), b"<tail>"]  # 6 MB
    sender, receiver = socket.socketpair()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sender.setblocking(False)
    receiver.setblocking(False)
    request = TcpRequest(sender)
    LargeReply(list(parts), request).start()  # type: ignore[arg-type]
    received = bytearray()
    deadline = time.monotonic() + 60
    while len(received) < sum(map(len, parts)):
        assert time.monotonic() < deadline, "the reply did not arrive within 60 s"
        request.drain()
        with contextlib.suppress(BlockingIOError):
            received += receiver.recv(1 << 20)
    assert bytes(received) == b"".join(parts) and request.finished == 1
    assert request.sentLength > 0 and len(request.written) >= 2  # straight and through Twisted
    sender.close()
    receiver.close()
