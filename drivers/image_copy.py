"""The byte moving of one_image: copies that hash as they go, report progress and can be stopped.

A local file is copied extent by extent (``SEEK_DATA``/``SEEK_HOLE``: holes stay holes) inside
the kernel (``copy_file_range``, else ``sendfile``) while a second thread reads it again and
feeds sha256 (hashlib releases the GIL): the copy and its fsync cost about what ``cp`` plus an
fsync costs, the checksum rides along on the other core (sha256 at ~1.6 GB/s is the floor). A
URL is fetched (urllib, redirects to http(s) followed, certificates verified against the
system's or a given CA file) by a thread of its own a few pieces ahead, each piece hashed and
written, all-zero pieces seeked over. Every loop looks at a ``threading.Event`` between pieces
(at least every ``WAIT`` seconds for a URL), so a DRIVER_CANCEL stops a copy at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from drivers.protocol import DriverFailure

CHUNK = 1 << 20  # bytes hashed (or fetched) at a time: 1 MiB stays in the CPU cache
COPY_CHUNK = 64 << 20  # bytes one copy_file_range moves between two checks for a cancel
ZERO_BYTES = bytes(CHUNK)
ZEROS = memoryview(ZERO_BYTES)  # slices of it copy nothing
PROGRESS_EVERY = 0.5  # seconds between two PROGRESS lines, at most
AHEAD, WAIT = 8, 0.2  # pieces of a URL fetched in advance; seconds between looks at a cancel
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})

Report = Callable[[int, int], None]  # (bytes done, bytes total)


class CopyError(DriverFailure):
    """A copy that failed; the message names the file or URL and why, in one line."""


class Cancelled(DriverFailure):
    """The copy was stopped (DRIVER_CANCEL, or the other half of the copy failed)."""


class Extent(NamedTuple):
    offset: int
    length: int
    data: bool  # False: a hole, read as zeros


class Progress:
    """Calls ``report(done, total)`` at most every PROGRESS_EVERY seconds, when ``done`` moved."""

    def __init__(
        self, report: Report, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.report, self.total, self.clock = report, total, clock
        self._last_time, self._last_done = clock(), 0

    def tick(self, done: int) -> None:
        now = self.clock()
        if done != self._last_done and now - self._last_time >= PROGRESS_EVERY:
            self._last_time, self._last_done = now, done
            self.report(done, self.total)


def write_failure(err: OSError, dst: str) -> CopyError:
    """``No space left on device writing <dst>`` and the like, for an error of the write side."""
    return CopyError(f"{err.strerror or err} writing {dst}")


# ---------------------------------------------------------------------------------------------
# Local files


def extents(fd: int, size: int) -> list[Extent]:
    """The data and hole extents of an open file (one data extent where SEEK_DATA is unknown)."""
    found: list[Extent] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as err:
            if err.errno == errno.ENXIO:  # only a hole is left
                start = size
            else:
                return [*found, Extent(offset, size - offset, True)]
        start = min(start, size)
        if start > offset:
            found.append(Extent(offset, start - offset, False))
        if start >= size:
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        found.append(Extent(start, end - start, True))
        offset = end
    return found


def hash_file(fd: int, spans: list[Extent], stop: threading.Event, done: list[int]) -> str:
    """sha256 of the extents (holes hashed as zeros, never read); ``done[0]`` counts bytes."""
    digest, buffer = hashlib.sha256(), bytearray(CHUNK)
    view = memoryview(buffer)
    for span in spans:
        offset, end = span.offset, span.offset + span.length
        while offset < end:
            if stop.is_set():
                raise Cancelled
            want = min(CHUNK, end - offset)
            if span.data:
                got = os.preadv(fd, [view[:want]], offset)
                if got <= 0:
                    raise CopyError(f"the file shrank while it was read, at byte {offset}")
                digest.update(view[:got])
            else:
                got = want
                digest.update(ZEROS[:got])
            offset += got
            done[0] += got
    return digest.hexdigest()


class KernelCopy:
    """Copies byte ranges between two open files in the kernel; ``copy_file_range`` first, then
    ``sendfile`` where the file systems refuse it (another file system, an old kernel)."""

    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.fd_in, self.fd_out, self.use_range = fd_in, fd_out, True

    def copy(self, offset: int, count: int) -> int:
        if self.use_range:
            try:
                return os.copy_file_range(self.fd_in, self.fd_out, count, offset, offset)
            except OSError as err:
                if err.errno not in NO_KERNEL_COPY:
                    raise
                self.use_range = False
        os.lseek(self.fd_out, offset, os.SEEK_SET)
        return os.sendfile(self.fd_out, self.fd_in, offset, count)


def copy_extents(
    fd_in: int, fd_out: int, spans: list[Extent], stop: threading.Event, done: list[int]
) -> None:
    """Copy the data extents to the same offsets (holes stay holes); ``done[0]`` counts bytes."""
    kernel = KernelCopy(fd_in, fd_out)
    for span in spans:
        if not span.data:
            done[0] += span.length
            continue
        offset, end = span.offset, span.offset + span.length
        while offset < end:
            if stop.is_set():
                raise Cancelled
            got = kernel.copy(offset, min(COPY_CHUNK, end - offset))
            if got <= 0:
                raise CopyError(f"the file shrank while it was copied, at byte {offset}")
            offset += got
            done[0] += got


class Halves:
    """Runs the copy and the hash of one file on two threads; the first failure stops both."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.errors: list[BaseException] = []
        self.results: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def start(self, name: str, job: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.results[name] = job()
            except BaseException as err:
                self.errors.append(err)
                self.stop.set()

        thread = threading.Thread(target=run, name=f"image-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def wait(self, progress: Progress, done: Callable[[], int]) -> None:
        """Tick progress until both end; raise the first real error (else Cancelled if stopped)."""
        for thread in self.threads:
            while thread.is_alive():
                thread.join(PROGRESS_EVERY / 2)
                progress.tick(done())
        real = [err for err in self.errors if not isinstance(err, Cancelled)]
        if real:
            raise real[0]
        if self.errors or self.stop.is_set():
            raise Cancelled("cancelled")


def copy_local(fd_in: int, fd_out: int, size: int, stop: threading.Event, report: Report) -> str:
    """Copy an open regular file of ``size`` bytes into ``fd_out`` (truncated to ``size``);
    returns the source's sha256 hex. Progress counts the bytes both halves are past."""
    spans = extents(fd_in, size)
    copied, hashed = [0], [0]

    def copy() -> None:  # the fsync overlaps the end of the hash, the slower half
        copy_extents(fd_in, fd_out, spans, stop, copied)
        os.ftruncate(fd_out, size)
        os.fsync(fd_out)

    halves = Halves(stop)
    halves.start("copy", copy)
    halves.start("hash", lambda: hash_file(fd_in, spans, stop, hashed))
    halves.wait(Progress(report, size), lambda: min(copied[0], hashed[0]))
    return str(halves.results["hash"])


def checksum(fd: int, size: int, stop: threading.Event, report: Report) -> str:
    """sha256 hex of an open file of ``size`` bytes, with progress."""
    hashed = [0]
    halves = Halves(stop)
    halves.start("hash", lambda: hash_file(fd, extents(fd, size), stop, hashed))
    halves.wait(Progress(report, size), lambda: hashed[0])
    return str(halves.results["hash"])


# ---------------------------------------------------------------------------------------------
# URLs


class Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only: a web server cannot send the driver to ftp://."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not newurl.lower().startswith(("http://", "https://")):
            refused = f"{msg}, to {newurl} (refused: not http or https)"
            raise urllib.error.HTTPError(req.full_url, code, refused, headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Fetcher:
    """How URLs are fetched: ``timeout`` seconds a connection or a read may wait, redirects
    followed, certificates (and host names) verified against the system's CAs or ``cafile``."""

    def __init__(self, timeout: float, cafile: str | None = None) -> None:
        self.timeout = timeout
        context = ssl.create_default_context(cafile=cafile)  # OSError or SSLError when unusable
        https = urllib.request.HTTPSHandler(context=context)
        self.opener = urllib.request.build_opener(https, Redirects)

    def open(self, url: str) -> tuple[Any, int]:
        """The response for ``url`` and its length (0 when not given); CopyError naming it."""
        request = urllib.request.Request(url, headers={"User-Agent": "one_image"})
        try:
            response = self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            raise CopyError(f"{url}: HTTP {err.code} {err.reason}") from None
        except urllib.error.URLError as err:
            reason = err.reason
            why = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
            raise CopyError(f"{url}: {why}") from None
        except (TimeoutError, OSError, ValueError) as err:
            raise CopyError(f"{url}: {err}") from None
        length = response.headers.get("Content-Length", "")
        return response, int(length) if length.isdigit() else 0


def read_pieces(response: Any, url: str, timeout: float) -> Generator[bytes, None, None]:
    """The body in pieces of at most CHUNK bytes, the response closed after; CopyError naming
    the URL when it breaks."""
    with response:
        while True:
            try:
                piece = response.read1(CHUNK)
            except TimeoutError:
                raise CopyError(f"{url}: no data for {timeout:g} s") from None
            except OSError as err:
                raise CopyError(f"{url}: {err}") from None
            except Exception as err:  # http.client.IncompleteRead and its like
                raise CopyError(f"{url}: {type(err).__name__}: {err}") from None
            if not piece:
                return
            yield piece


def fetched_ahead(
    pieces: Generator[bytes, None, None], stop: threading.Event
) -> Generator[bytes, None, None]:
    """The same pieces, fetched by a thread of their own up to AHEAD pieces in advance: the
    fetch overlaps hashing and writing, and a cancel is seen while the server sends nothing.
    The thread owns the response (closing it would wait for its blocked read); once the caller
    is gone it ends at its next piece or its read timeout."""
    ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(AHEAD)
    gone = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        while not gone.is_set():
            with contextlib.suppress(queue.Full):
                ahead.put(item, timeout=WAIT)
                return True
        return False

    def fetch() -> None:
        try:
            with contextlib.closing(pieces):  # closes the response even when the caller left
                if all(put(piece) for piece in pieces):
                    put(None)
        except BaseException as err:
            put(err)

    threading.Thread(target=fetch, name="image-fetch", daemon=True).start()
    try:
        while True:
            try:
                item = ahead.get(timeout=WAIT)
            except queue.Empty:
                if stop.is_set():
                    raise Cancelled("cancelled") from None
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_piece(fd_out: int, piece: bytes, dst: str) -> None:
    """Write a piece at the file's offset; all zeros become a hole (a seek)."""
    try:
        if piece == ZERO_BYTES[: len(piece)]:  # bytes == bytes: a memcmp
            os.lseek(fd_out, len(piece), os.SEEK_CUR)
        else:
            write_all(fd_out, piece)
    except OSError as err:
        raise write_failure(err, dst) from None


def copy_url(
    url: str, fd_out: int, dst: str, fetcher: Fetcher, stop: threading.Event, report: Report
) -> tuple[int, str]:
    """Fetch ``url`` into ``fd_out``; returns (bytes, sha256 hex). A body shorter than its
    Content-Length is a failure."""
    response, total = fetcher.open(url)
    digest, done, progress = hashlib.sha256(), 0, Progress(report, total)
    pieces = fetched_ahead(read_pieces(response, url, fetcher.timeout), stop)
    with contextlib.closing(pieces):
        for piece in pieces:
            if stop.is_set():
                raise Cancelled("cancelled")
            digest.update(piece)
            write_piece(fd_out, piece, dst)
            done += len(piece)
            progress.tick(done)
    if total and done != total:
        raise CopyError(f"{url}: the reply ended after {done} of {total} bytes")
    os.ftruncate(fd_out, done)
    return done, digest.hexdigest()
