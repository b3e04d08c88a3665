"""A PutObject/UploadPart body received into a file of `.incoming/` on a thread of its own,
decoded (aws-chunked), hashed (MD5 for the ETag; SHA-256 when the client declared one; the
checksum it sent) and written while it arrives: never the whole body in memory.

Pure (threads, no Twisted). The server's reactor only queues what the socket gave (`feed`);
past `HIGH` queued bytes it pauses the socket and the thread resumes it below `LOW`, so a
fast client waits for a slow disk and a slow client costs one idle thread, not the reactor.
Nothing is written before the signature was accepted (`allow`); a refused or broken body
leaves no file. `notify` is called (on the thread) once the outcome is known.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from econe.errors import Ec2Error
from econe.s3_chunked import AwsChunked, ChunkSignatures, b64, checksum_of
from econe.s3_wire import error

HIGH = 16 * 2**20
LOW = 4 * 2**20
_END, _ABORT = object(), object()


@dataclass(frozen=True)
class Expected:
    """What the request's headers promise about its body."""

    limit: int  # bytes of payload at most (EntityTooLarge)
    chunked: bool = False  # aws-chunked framing
    sha256: str | None = None  # declared hex digest
    md5: str | None = None  # Content-MD5, base64
    checksum: str | None = None  # algorithm of x-amz-checksum-* (header or trailer)
    checksum_value: str | None = None  # the header's value (None: in the trailer)
    decoded_length: int | None = None  # x-amz-decoded-content-length


@dataclass(frozen=True)
class Received:
    size: int
    md5: str  # hex: the ETag
    path: str
    offset: int = 0  # where the payload starts in `path`
    shared: bool = False  # `path` holds other parts too (written in place, never removed)


class Upload:
    def __init__(
        self,
        path: str,
        expected: Expected,
        pause: Callable[[], None],
        resume: Callable[[], None],
        notify: Callable[[], None],
    ) -> None:
        self.path, self.expected = path, expected
        self._pause, self._resume, self._notify = pause, resume, notify
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued = 0
        self._paused = False
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._signatures: ChunkSignatures | None = None
        self._refused: Ec2Error | None = None
        self._ended = False
        self._offset = -1  # -1: a file of its own, created by the thread
        self.result: Received | None = None
        self.error: Ec2Error | None = None
        self.thread = threading.Thread(target=self._run, name="econe-s3-upload", daemon=True)
        self.thread.start()

    # --- the reactor's side ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._queued += len(data)
            pause = self._queued > HIGH and not self._paused
            self._paused = self._paused or pause
        self._queue.put(data)
        if pause:
            self._pause()

    def allow(
        self, signatures: ChunkSignatures | None = None, at: tuple[str, int] | None = None
    ) -> None:
        """The request's signature was accepted: write (checking chunk `signatures`), into a
        file of its own, or `at` (file, offset) of a file shared with other parts."""
        self._signatures = signatures
        if at is not None:
            self.path, self._offset = at
        self._gate.set()

    def refuse(self, why: Ec2Error) -> None:
        """The request was refused: read and drop the rest of its body."""
        self._refused = why
        self._gate.set()

    def end(self) -> None:
        self._queue.put(_END)

    def abort(self) -> None:
        """The client went away: drop everything."""
        self._refused = self._refused or error("IncompleteBody", "the client went away")
        self._gate.set()
        self._queue.put(_ABORT)

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._gate.wait()
            if self._refused is not None:
                raise self._refused
            self.result = self._receive()
        except Ec2Error as exc:
            self.error = exc
        except OSError as exc:
            self.error = Ec2Error("InternalError", f"cannot store the body: {exc.strerror}", 500)
        if self.error is not None:
            if self._offset < 0:
                _remove(self.path)
            self._drain()
        self._notify()

    def _take(self) -> Any:
        item = self._queue.get()
        if item is _END or item is _ABORT:
            self._ended = True
            return item
        with self._lock:
            self._queued -= len(item)
            resume = self._paused and self._queued < LOW
            self._paused = self._paused and not resume
        if resume:
            self._resume()
        return item

    def _drain(self) -> None:
        """Read on to the end (the reactor keeps queueing what the client sends)."""
        while not self._ended:
            self._take()

    def _receive(self) -> Received:
        expected = self.expected
        decoder = AwsChunked(self._signatures) if expected.chunked else None
        hashes = Hashes(expected)
        shared = self._offset >= 0
        flags = os.O_WRONLY | os.O_CREAT | (0 if shared else os.O_EXCL)
        with open(os.open(self.path, flags, 0o640), "wb") as f:
            if shared:
                f.seek(self._offset)
            while (item := self._take()) is not _END:
                if item is _ABORT:
                    raise self._refused or error("IncompleteBody", "the client went away")
                for piece in decoder.feed(item) if decoder else (item,):
                    hashes.update(piece)
                    f.write(piece)
        trailers = decoder.finish() if decoder else {}
        md5 = hashes.check(trailers)
        return Received(hashes.size, md5, self.path, max(self._offset, 0), shared)


class Hashes:
    """The digests of the payload, checked against what the headers and trailers said."""

    def __init__(self, expected: Expected) -> None:
        self.expected = expected
        self.size = 0
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256() if expected.sha256 else None
        self.checksum = checksum_of(expected.checksum) if expected.checksum else None

    def update(self, piece: bytes | memoryview) -> None:
        self.size += len(piece)
        if self.size > self.expected.limit:
            raise error("EntityTooLarge", f"the object is over {self.expected.limit} bytes")
        self.md5.update(piece)
        if self.sha256 is not None:
            self.sha256.update(piece)
        if self.checksum is not None:
            self.checksum.update(piece)  # type: ignore[attr-defined]

    def check(self, trailers: dict[str, str]) -> str:
        """The MD5 (hex) once every promise is kept."""
        exp = self.expected
        if exp.decoded_length is not None and exp.decoded_length != self.size:
            raise error("IncompleteBody", "the body is not x-amz-decoded-content-length long")
        if self.sha256 is not None and self.sha256.hexdigest() != exp.sha256:
            raise error("XAmzContentSHA256Mismatch", "the body is not the declared SHA-256")
        if exp.md5 is not None and not _same_b64(exp.md5, self.md5.digest()):
            raise error("BadDigest", "the Content-MD5 you specified did not match what we received")
        if self.checksum is not None:
            name = f"x-amz-checksum-{exp.checksum}"
            sent = exp.checksum_value or trailers.get(name)
            if sent is None:
                raise error("InvalidRequest", f"{name} was announced but not sent")
            if not hmac.compare_digest(sent, b64(self.checksum)):
                raise error("BadDigest", f"the {name} you specified did not match")
        return self.md5.hexdigest()


def _same_b64(text: str, digest: bytes) -> bool:
    try:
        return base64.b64decode(text, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
