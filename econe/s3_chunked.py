"""S3's `aws-chunked` bodies: the incremental decoder, the per-chunk SigV4 signature chain of
STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and the checksums a client sends (as a trailer after the
last chunk, or as an `x-amz-checksum-*` header).

Pure. A chunk is `<hex size>[;chunk-signature=<64 hex>]\\r\\n<data>\\r\\n`; the last has size 0
and is followed by trailer lines (`x-amz-checksum-crc32:<base64>`) and an empty line. botocore
sends STREAMING-UNSIGNED-PAYLOAD-TRAILER (no chunk signatures, a CRC32 trailer) over HTTPS;
the AWS SDKs for Java and Go sign each chunk: its signature chains from the request's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import zlib
from collections.abc import Callable

from econe.s3_wire import error

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MAX_LINE = 4096  # a chunk header or trailer line
MAX_TRAILER = 16 * 1024
_HEADER = re.compile(rb"([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?\Z")
_HEADER_CODE = "IncompleteBody"


class Crc32:
    """zlib's CRC-32, its digest big-endian as S3 gives it."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


CHECKSUMS: dict[str, Callable[[], object]] = {
    "crc32": Crc32,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}


def checksum_of(name: str) -> object:
    """A hasher for `x-amz-checksum-<name>`; CRC32C and CRC64NVME need awscrt, which econe
    does not ship: refused by name rather than stored unchecked."""
    factory = CHECKSUMS.get(name.lower())
    if factory is None:
        raise error("InvalidRequest", f"checksum algorithm {name[:20]!r} is not supported here")
    return factory()


def b64(hasher: object) -> str:
    return base64.b64encode(hasher.digest()).decode("ascii")  # type: ignore[attr-defined]


class ChunkSignatures:
    """The chain of STREAMING-AWS4-HMAC-SHA256-PAYLOAD: each chunk's signature signs the
    previous one and the chunk's SHA-256 (the first chains from the request's signature)."""

    def __init__(self, key: bytes, timestamp: str, scope: str, seed: str) -> None:
        self.key, self.timestamp, self.scope, self.previous = key, timestamp, scope, seed

    def check(self, signature: str, chunk_sha256: str) -> None:
        text = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", self.timestamp, self.scope, self.previous,
             EMPTY_SHA256, chunk_sha256]
        )  # fmt: skip
        expected = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise error("SignatureDoesNotMatch", "a chunk's signature does not match")
        self.previous = signature


class AwsChunked:
    """Incremental decoder: `feed` answers the payload bytes in the data given so far;
    `finish` checks the body ended where it should and answers the trailers."""

    def __init__(self, signatures: ChunkSignatures | None = None) -> None:
        self.signatures = signatures
        self._line = b""
        self._left = -1  # data bytes left in the current chunk; -1: reading a header line
        self._crlf = 0  # bytes of the CRLF after the data still expected
        self._chunk_hash: object = None
        self._chunk_signature = ""
        self._last = False  # the 0-size chunk was read: trailers follow
        self.done = False
        self.trailers: dict[str, str] = {}
        self._trailer_bytes = 0

    def feed(self, data: bytes) -> list[memoryview]:
        out: list[memoryview] = []
        view = memoryview(data)
        while view:
            if self.done:
                raise error(_HEADER_CODE, "data after the end of the aws-chunked body")
            if self._left > 0:
                piece, view = view[: self._left], view[self._left :]
                self._left -= len(piece)
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)  # type: ignore[attr-defined]
                out.append(piece)
                if self._left == 0:
                    self._end_chunk()
            elif self._crlf:
                take = min(self._crlf, len(view))
                if bytes(view[:take]) != b"\r\n"[2 - self._crlf : 2 - self._crlf + take]:
                    raise error(_HEADER_CODE, "a chunk does not end with CRLF")
                self._crlf -= take
                view = view[take:]
            else:
                view = self._read_line(view)
        return out

    def _read_line(self, view: memoryview) -> memoryview:
        head = bytes(view[: max(MAX_LINE + 2 - len(self._line), 1)])
        newline = head.find(b"\n")
        if newline < 0:
            self._line += head
            if len(self._line) > MAX_LINE + 1:
                raise error(_HEADER_CODE, "an aws-chunked line is too long")
            return view[len(head) :]
        line = self._line + head[: newline + 1]
        self._line = b""
        if not line.endswith(b"\r\n"):
            raise error(_HEADER_CODE, "an aws-chunked line does not end with CRLF")
        self._line_done(line[:-2])
        return view[newline + 1 :]

    def _line_done(self, line: bytes) -> None:
        if self._last:
            self._trailer(line)
            return
        match = _HEADER.match(line)
        if match is None:
            raise error(_HEADER_CODE, "a malformed aws-chunked chunk header")
        size = int(match.group(1), 16)
        signature = (match.group(2) or b"").decode()
        if self.signatures is not None and not signature:
            raise error("SignatureDoesNotMatch", "a chunk carries no chunk-signature")
        self._chunk_signature = signature
        self._chunk_hash = hashlib.sha256() if self.signatures is not None else None
        if size == 0:
            self._last = True
            self._check_chunk()
        else:
            self._left = size

    def _end_chunk(self) -> None:
        self._left = -1
        self._crlf = 2
        self._check_chunk()

    def _check_chunk(self) -> None:
        if self.signatures is not None:
            digest = self._chunk_hash.hexdigest()  # type: ignore[attr-defined]
            self.signatures.check(self._chunk_signature, digest)

    def _trailer(self, line: bytes) -> None:
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_TRAILER:
            raise error(_HEADER_CODE, "the aws-chunked trailer is too long")
        if not line:
            self.done = True
            return
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise error(_HEADER_CODE, "a malformed aws-chunked trailer line")
        self.trailers[name.strip().lower()] = value.strip()

    def finish(self) -> dict[str, str]:
        """The trailers; `IncompleteBody` when the body stopped before its end."""
        if self._last and not self.done and not self._line and self.signatures is not None:
            self.done = True  # a signed body may end right after its final chunk's CRLF
        if not self.done:
            raise error(_HEADER_CODE, "the aws-chunked body ended before its last chunk")
        return self.trailers
