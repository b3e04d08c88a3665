"""Reading a request body sent with ``Transfer-Encoding: chunked`` (RFC 9112, section 7.1).

``ChunkedBody.feed`` takes the bytes read so far and gives back the body's data found in them,
what it could not read yet (an incomplete size line or chunk end, to be fed again with more),
and whether the last chunk and the trailers are in. Chunk extensions and trailers are read and
ignored; a size line that is not hexadecimal, a missing CRLF after a chunk's data or a line
over ``MAX_LINE`` is a ``BadRequest``.
"""

from __future__ import annotations

import string

MAX_LINE = 16 * 1024  # Twisted's bound on one line of the head
MAX_TRAILERS = 500

_HEX = frozenset(string.hexdigits.encode())


class BadRequest(Exception):
    """The head or the body's framing cannot be read: answered 400, then closed."""


class ChunkedBody:
    """The state of one chunked body between reads."""

    def __init__(self) -> None:
        self._left = -1  # bytes of the current chunk's data still to come; -1: a size line next
        self._trailers = -1  # trailer lines read after the last chunk; -1: not there yet

    def feed(self, data: bytes) -> tuple[list[bytes], bytes, bool]:
        """(the body's data in ``data``, the rest to feed again with more, the body is whole)."""
        pieces: list[bytes] = []
        while True:
            if self._trailers >= 0:
                line, data = _line(data)
                if line is None:
                    return pieces, data, False
                if not line:
                    return pieces, data, True
                self._trailers += 1
                if self._trailers > MAX_TRAILERS:
                    raise BadRequest("too many trailers")
            elif self._left > 0:
                piece, data = data[: self._left], data[self._left :]
                pieces.append(piece)
                self._left -= len(piece)
                if self._left:
                    return pieces, data, False
            elif self._left == 0:
                if len(data) < 2:
                    return pieces, data, False
                if data[:2] != b"\r\n":
                    raise BadRequest("no CRLF after a chunk")
                data, self._left = data[2:], -1
            else:
                line, data = _line(data)
                if line is None:
                    return pieces, data, False
                self._start_chunk(line)

    def _start_chunk(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip()
        if not size or len(size) > 16 or not _HEX.issuperset(size):
            raise BadRequest("bad chunk size")
        self._left = int(size, 16)
        if not self._left:
            self._trailers = 0


def _line(data: bytes) -> tuple[bytes | None, bytes]:
    """(the line at the head of ``data`` without its CRLF, the rest); (None, data) when the
    line is not whole yet."""
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) > MAX_LINE:
            raise BadRequest("chunk line too long")
        return None, data
    if end > MAX_LINE:
        raise BadRequest("chunk line too long")
    return data[:end], data[end + 2 :]
