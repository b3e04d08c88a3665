"""IMAGE driver: ``one_image`` fills the image repository (2.0's IMAGE_REPOSITORY_PATH; what
OpenNebula later called a datastore driver), outside oned's reactor.

Requests (every argument one word of ``drivers.protocol.encode_words``) and their replies::

    CP <iid> <src> <dst>                  CP SUCCESS <iid> <size_bytes> sha256:<hex>
    MKFS <iid> <dst> <size_mb> <fstype>   MKFS SUCCESS <iid> <size_bytes> sha256:<hex>
    STAT <iid> <path>                     STAT SUCCESS <iid> <size_bytes> sha256:<hex>
    RM <iid> <path>                       RM SUCCESS <iid> -

and FAILURE with one line naming the file or URL and why. While CP, MKFS or STAT run, the
driver writes ``PROGRESS <iid> <bytes_done> <bytes_total>`` at most every 0.5 s when the count
moved (total 0 when an HTTP reply gives no length). ``DRIVER_CANCEL <iid>`` stops a running
action within one piece (drivers/image_copy.py); its reply is dropped and nothing it made stays.

CP's ``src`` is a front-end file (a regular one: a FIFO, device or directory is refused) or an
http(s) URL; ``dst``, MKFS's ``dst`` and every ``path`` must lie inside the repository (a
confused oned cannot make this driver write or delete elsewhere). MKFS makes ``raw`` (a sparse
file of zeros) or one of drivers/tm_script.py's FORMATS as TM's MKIMAGE does; its checksum
hashes every byte, zeros of holes included (linear in the size: about 1.6 GB/s).

Contract: a file under its final name is whole. Everything is written to ``<dst>.part``,
fsynced and renamed; on any failure or cancel the ``.part`` is removed; a CP or MKFS sent again
(oned re-issues what was in flight after a crash) makes its file anew over a ``.part`` a killed
driver left, and over ``dst``. RM removes ``path`` and ``path.part`` and succeeds when they are
gone; it waits for an action still running on that path.

Arguments (oned passes them as ONE argv element, shell-quoted):
``--repository DIR`` (default ``$ONE_LOCATION/var/images``, else ``/var/lib/one/images``;
created 0750 less the umask when missing), ``--cafile FILE`` (CA certificates for https URLs
instead of the system's: a private mirror, a test's self-signed server; also read from
``ONE_IMAGE_CA_FILE``), ``--timeout S`` (seconds an HTTP connection or read may wait, 60),
``--concurrency N`` (copies at once, 4; RM never waits behind them). Files are created 0640
less the umask.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat as stat_mode
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO, cast

from drivers.image_copy import (
    WRITE_ERRNOS,
    Cancelled,
    Fetcher,
    Report,
    checksum,
    copy_local,
    copy_url,
    write_failure,
)
from drivers.protocol import DriverFailure, Request
from drivers.runner import front_end_var, run_local
from drivers.serve import Action, Logger, driver_parser, parse_driver_args, serve, unbuffered_stdout
from drivers.tm_script import FORMATS, URL, size_mb

FILE_MODE, DIR_MODE = 0o640, 0o750
MKFS_TIMEOUT = 600.0  # seconds mkfs or qemu-img may take
HEAVY = frozenset({"CP", "MKFS", "STAT"})  # the actions of the copy lane


class Lines:
    """The driver's stdout, shared by the serve loop and the PROGRESS lines: one write at a
    time, so a line is never split by another."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream, self._lock = stream, threading.Lock()

    def write(self, data: bytes) -> int | None:
        with self._lock:
            return self._stream.write(data)

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def line(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # oned went away: the serve loop ends
            self.write(f"{text}\n".encode())


@dataclass
class Context:
    """The repository (resolved), how URLs are fetched, stdout, and a lock per path in use."""

    repository: str
    fetcher: Fetcher
    lines: Lines
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)
    parts: set[str] = field(default_factory=set)  # the .part files being written

    def ensure(self) -> None:
        """The repository exists (created when missing, e.g. removed while the driver ran)."""
        if os.path.isdir(self.repository):
            return
        try:
            os.makedirs(self.repository, DIR_MODE, exist_ok=True)
        except OSError as err:
            why = err.strerror or err
            what = f"cannot create the image repository {self.repository}"
            raise DriverFailure(f"{what}: {why}") from None

    def inside(self, path: str) -> str:
        """``path`` with its folder resolved; DriverFailure unless it lies in the repository."""
        if not os.path.isabs(path):
            raise DriverFailure(f"{path} is not an absolute path")
        parent, name = os.path.split(os.path.normpath(path))
        real = os.path.join(os.path.realpath(parent), name)
        if name in ("", ".", "..") or not real.startswith(self.repository.rstrip("/") + "/"):
            raise DriverFailure(f"{path} is not inside the image repository {self.repository}")
        self.ensure()
        return real

    @contextlib.contextmanager
    def holding(self, path: str) -> Iterator[None]:
        """One action at a time on ``path`` (an RM waits for the cancelled copy's cleanup)."""
        with self.guard:
            lock = self.locks.setdefault(path, threading.Lock())
        with lock:
            yield

    def drop_parts(self) -> None:
        """Remove the .part files of actions still running (the driver is ending)."""
        for part in list(self.parts):
            with contextlib.suppress(OSError):
                os.unlink(part)

    def reporter(self, iid: str) -> partial[None]:
        return partial(self.progress, iid)

    def progress(self, iid: str, done: int, total: int) -> None:
        self.lines.line(f"PROGRESS {iid} {done} {total}")


def arguments(request: Request, names: str) -> list[str]:
    """The request's arguments after the id, as many as ``names`` lists."""
    wanted = names.split()
    if len(request.args) != len(wanted):
        raise DriverFailure(f"{request.action} takes {' '.join(wanted)} after the id")
    return list(request.args)


def stopper(log: Logger) -> threading.Event:
    """An event DRIVER_CANCEL sets; every copy loop checks it between pieces."""
    stop = threading.Event()
    log.on_cancel(stop.set)
    return stop


# ---------------------------------------------------------------------------------------------
# Files


def open_regular(path: str, *, follow: bool) -> tuple[int, int]:
    """(descriptor, size) of a regular file; DriverFailure naming the path and why otherwise.
    Nothing else is opened: a FIFO would block, a tape would rewind."""
    try:
        info = os.stat(path) if follow else os.lstat(path)
        if not stat_mode.S_ISREG(info.st_mode):
            raise DriverFailure(f"{path} is not a regular file")
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
        fd = os.open(path, flags)
    except OSError as err:
        raise DriverFailure(f"cannot read {path}: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat_mode.S_ISREG(info.st_mode):  # swapped since the check
        os.close(fd)
        raise DriverFailure(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return fd, info.st_size


@contextlib.contextmanager
def part_file(ctx: Context, dst: str, log: Logger) -> Iterator[tuple[str, int]]:
    """``(<dst>.part, its descriptor)``, made anew; when the block ends it is fsynced and renamed
    to ``dst``. On any failure or cancel the ``.part`` is removed, and a ``dst`` renamed just as
    a cancel came is removed too (oned gave it up)."""
    part = f"{dst}.part"
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(part, flags, FILE_MODE)
    except OSError as err:
        raise DriverFailure(f"cannot create {part}: {err.strerror or err}") from None
    ctx.parts.add(part)
    try:
        yield part, fd
        os.fsync(fd)
        if log.cancelled:
            raise Cancelled("cancelled")
        os.replace(part, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    finally:
        ctx.parts.discard(part)
        os.close(fd)
    if log.cancelled:
        with contextlib.suppress(OSError):
            os.unlink(dst)
        raise Cancelled("cancelled")
    sync_folder(os.path.dirname(dst))


def sync_folder(path: str) -> None:
    """fsync a folder, so the rename in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def failure(err: OSError, action: str, dst: str) -> DriverFailure:
    """An OSError of a copy as one line: the write side names ``dst`` (a full disk)."""
    if err.errno in WRITE_ERRNOS:
        return write_failure(err, dst)
    return DriverFailure(f"{action}: {err.strerror or err}")


# ---------------------------------------------------------------------------------------------
# The actions


def cp(ctx: Context, request: Request, log: Logger) -> str:
    """CP iid src dst: copy a front-end file or an http(s) URL into the repository."""
    src, dst = arguments(request, "src dst")
    dst, stop, started = ctx.inside(dst), stopper(log), time.monotonic()
    report = ctx.reporter(request.id)
    with ctx.holding(dst):
        try:
            if URL.match(src):
                if not src.lower().startswith(("http://", "https://")):
                    raise DriverFailure(f"{src}: only http and https URLs are fetched")
                with part_file(ctx, dst, log) as (_, fd):
                    size, digest = copy_url(src, fd, dst, ctx.fetcher, stop, report)
            else:
                size, digest = copy_file(ctx, src, dst, stop, log, report)
        except OSError as err:
            raise failure(err, f"copying {src} to {dst}", dst) from None
    log(f"copied {size} bytes from {src} in {time.monotonic() - started:.1f} s")
    return f"{size} sha256:{digest}"


def copy_file(
    ctx: Context, src: str, dst: str, stop: threading.Event, log: Logger, report: Report
) -> tuple[int, str]:
    """Copy a front-end file into ``dst``; (bytes, sha256 hex)."""
    if not os.path.isabs(src):
        raise DriverFailure(f"{src} is neither an absolute path nor an http(s) URL")
    fd_in, size = open_regular(src, follow=True)
    try:
        with part_file(ctx, dst, log) as (_, fd_out):
            digest = copy_local(fd_in, fd_out, size, stop, report)
    finally:
        os.close(fd_in)
    return size, digest


def mkfs(ctx: Context, request: Request, log: Logger) -> str:
    """MKFS iid dst size_mb fstype: an empty DATABLOCK, raw (sparse zeros) or formatted."""
    dst, size_text, fstype = arguments(request, "dst size_mb fstype")
    fmt, dst, stop = fstype.lower(), ctx.inside(dst), stopper(log)
    try:
        size = size_mb(size_text)
    except ValueError as err:
        raise DriverFailure(str(err)) from None
    if fmt not in FORMATS:
        raise DriverFailure(f"format {fstype[:40]!r} is not one of {', '.join(sorted(FORMATS))}")
    with ctx.holding(dst):
        try:
            with part_file(ctx, dst, log) as (part, fd):
                make_file_system(fmt, part, fd, size, log)
                length = os.fstat(fd).st_size
                digest = checksum(fd, length, stop, ctx.reporter(request.id))
        except OSError as err:
            raise failure(err, f"making {dst}", dst) from None
    return f"{length} sha256:{digest}"


def make_file_system(fmt: str, part: str, fd: int, size: int, log: Logger) -> None:
    """What TM's MKIMAGE makes, in ``part`` (already created, empty)."""
    if fmt == "qcow2":
        argv = ["qemu-img", "create", "-q", "-f", "qcow2", part, f"{size}M"]
    else:
        os.ftruncate(fd, size << 20)
        force = ["-F", "-q"] if fmt.startswith("ext") else []
        argv = {"raw": [], "swap": ["mkswap", "-q", part]}.get(fmt, ["mkfs", "-t", fmt, *force])
        argv += [part] if argv and argv[0] == "mkfs" else []
    if argv:
        result = run_local(argv, timeout=MKFS_TIMEOUT, on_cancel=log.on_cancel)
        if log.cancelled:
            raise Cancelled("cancelled")
        if not result.ok:
            raise DriverFailure(f"{argv[0]} failed: {result.reason()}")


def stat(ctx: Context, request: Request, log: Logger) -> str:
    """STAT iid path: size and checksum of a file in the repository (a disk a VM saved)."""
    (path,) = arguments(request, "path")
    path, stop = ctx.inside(path), stopper(log)
    with ctx.holding(path):
        fd, size = open_regular(path, follow=False)
        try:
            digest = checksum(fd, size, stop, ctx.reporter(request.id))
        except OSError as err:
            raise DriverFailure(f"cannot read {path}: {err.strerror or err}") from None
        finally:
            os.close(fd)
    return f"{size} sha256:{digest}"


def rm(ctx: Context, request: Request, log: Logger) -> str:
    """RM iid path: remove ``path`` and ``path.part``; already gone is done."""
    (path,) = arguments(request, "path")
    path = ctx.inside(path)
    with ctx.holding(path):
        for name in (path, f"{path}.part"):
            try:
                os.unlink(name)
            except FileNotFoundError:
                continue
            except OSError as err:
                raise DriverFailure(f"cannot remove {name}: {err.strerror or err}") from None
            log(f"removed {name}")
    return "-"


def actions(ctx: Context) -> dict[str, Action]:
    table = {"CP": cp, "MKFS": mkfs, "STAT": stat, "RM": rm}
    return {name: partial(action, ctx) for name, action in table.items()}


def copy_lane(request: Request) -> str | None:
    """Copies, file systems and checksums share one lane; RM never waits behind them."""
    return "copies" if request.action in HEAVY else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_image", __doc__ or "", concurrency=4)
    default = os.path.join(front_end_var(), "images")
    parser.add_argument("--repository", default=default, help=f"the repository ({default})")
    parser.add_argument("--cafile", default=os.environ.get("ONE_IMAGE_CA_FILE") or None)
    parser.add_argument("--timeout", type=float, default=60.0, help="HTTP seconds (60)")
    return parse_driver_args(parser, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lines = Lines(unbuffered_stdout())
    try:
        fetcher = Fetcher(args.timeout, args.cafile)
    except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
        print(f"one_image: cannot use the CA file {args.cafile}: {err}", file=sys.stderr)
        return 1
    ctx = Context(os.path.realpath(args.repository), fetcher, lines)
    try:
        ctx.ensure()
    except DriverFailure as err:  # each action says it again
        print(f"one_image: {err}", file=sys.stderr)
    stdout = cast(BinaryIO, lines)
    try:
        return serve(actions(ctx), concurrency=args.concurrency, lane=copy_lane, stdout=stdout)
    finally:
        ctx.drop_parts()


if __name__ == "__main__":
    sys.exit(main())
