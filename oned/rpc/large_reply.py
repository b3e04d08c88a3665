"""Sending a large reply (a listing of cached fragments) as the transport drains.

The reply is never one buffer (53 MB for one.vmpool.infoextended at 20,000 VMs). Over plain TCP,
once the head is out and Twisted's buffer is empty, the fragments go to the socket as they are
(``sendmsg``, up to ``IOV_MAX`` of them a call): the kernel's copy is the only one. When the
socket takes no more, the next ``small_piece`` bytes are joined and written through Twisted,
which pauses this producer until it sent them; then the socket again. Over TLS (or any other
transport) every ``piece`` is joined and written so.

Where the reply stands is one byte count against the parts' running ends (computed once, in C):
a partial ``sendmsg`` finds the next part by bisection, not by walking the parts it sent (a
walk over 10,000 fragments was a fifth of a listing's CPU).
"""

from __future__ import annotations

import socket
from bisect import bisect_right
from itertools import accumulate
from typing import Any, Protocol

from twisted.internet.abstract import FileDescriptor

IOV_MAX = 1024  # buffers in one sendmsg (Linux's UIO_MAXIOV)


class Channel(Protocol):
    """What LargeReply needs of the connection (``oned.rpc.http.HttpChannel``)."""

    transport: Any

    def reply_head(self, status: int, headers: bytes, size: int) -> bytes: ...

    def reply_done(self) -> None: ...


class LargeReply:
    """A push producer registered with the channel's transport for one reply."""

    piece = 1 << 20  # bytes joined for one write through Twisted (TLS)
    small_piece = 1 << 18  # the same when the socket is full: then it is straight again

    def __init__(self, parts: list[bytes], channel: Channel, headers: bytes = b""):
        self._channel: Channel | None = channel
        self._ends = list(accumulate(map(len, parts)))  # bytes up to the end of each part
        self._head = channel.reply_head(200, headers, self._ends[-1] if parts else 0)
        self._socket = _tcp_socket(channel.transport)
        self._parts = parts
        self._at = 0  # the first part not wholly sent
        self._sent = 0  # bytes of the parts sent
        self._paused = False

    def start(self) -> None:
        assert self._channel is not None
        transport = self._channel.transport
        transport.registerProducer(self, True)
        transport.write(self._head)
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        sock = self._socket
        piece = self.piece if sock is None else self.small_piece
        while not self._paused and self._channel is not None:
            transport = self._channel.transport
            if sock is None or not _drained(transport) or not self._send(sock):
                self._write_piece(transport, piece)

    def pauseProducing(self) -> None:
        self._paused = True

    def stopProducing(self) -> None:
        """The connection is gone: forget the reply."""
        self._channel = None
        self._parts = []

    def _send(self, sock: socket.socket) -> bool:
        """Send what the socket takes straight from the parts; False when it took less than
        was offered (full, or failing: Twisted then finds out and stops this producer)."""
        parts, at, skip = self._parts, self._at, self._skip()
        iov: list[bytes | memoryview] = parts[at : at + IOV_MAX]
        if skip:
            iov[0] = memoryview(parts[at])[skip:]
        try:
            sent = sock.sendmsg(iov)
        except OSError:
            return False
        offered = self._ends[at + len(iov) - 1] - self._sent
        self._sent += sent
        self._at = bisect_right(self._ends, self._sent)
        if self._at == len(parts):
            self._finish()
        return sent == offered

    def _skip(self) -> int:
        """Bytes of the first part not wholly sent that were sent."""
        return self._sent - (self._ends[self._at - 1] if self._at else 0)

    def _write_piece(self, transport: Any, piece: int) -> None:
        parts, at, skip = self._parts, self._at, self._skip()
        chunk = [memoryview(parts[at])[skip:] if skip else parts[at]]  # one part at least
        end, size = at + 1, len(parts[at]) - skip
        while end < len(parts) and size < piece:
            chunk.append(parts[end])
            size += len(parts[end])
            end += 1
        self._at, self._sent = end, self._ends[end - 1]
        last = end == len(parts)
        if last:
            channel = self._channel
            self.stopProducing()
            transport.unregisterProducer()
        transport.write(b"".join(chunk))
        if last:
            assert channel is not None
            channel.reply_done()

    def _finish(self) -> None:
        channel = self._channel
        assert channel is not None
        self.stopProducing()
        channel.transport.unregisterProducer()
        channel.reply_done()


def _tcp_socket(transport: Any) -> socket.socket | None:
    """The socket under ``transport`` when the channel writes to Twisted's TCP connection
    itself (a ``FileDescriptor``, its buffers as ``_drained`` knows them); else None. Over TLS
    the channel writes to a ``TLSMemoryBIOProtocol``, which hands attribute lookups (``TLS``,
    ``socket``, the buffers) to the TCP connection under it: the type is what tells them
    apart, and sending there straight would put plain text in the TLS stream."""
    if not isinstance(transport, FileDescriptor) or getattr(transport, "TLS", True):
        return None
    sock = getattr(transport, "socket", None)
    return sock if isinstance(sock, socket.socket) else None


def _drained(transport: Any) -> bool:
    """Nothing waits in Twisted's buffers (FileDescriptor's ``dataBuffer`` from ``offset`` and
    ``_tempDataBuffer``): bytes sent straight to the socket now come after the head and every
    piece written before, in order."""
    return len(transport.dataBuffer) == transport.offset and not transport._tempDataLen
