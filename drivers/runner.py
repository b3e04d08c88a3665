"""Run a command on a host, and copy files between places with such commands.

Every outcome is a ``RunResult`` value: a non-zero exit, a timeout (code 124, stderr "timed out
after N s"), an unreachable host (code 255, a one-line reason such as "cannot resolve host X")
and a cancel (code 130) alike. Commands are argv lists; no shell string is ever built from input.
``run_local`` runs them on the front end; ``SshPool`` (drivers/ssh.py) runs them on a host over
its reused SSH connection and answers the same values.

On the front end: ``local_names`` are the names by which oned and its scripts call it, and
``front_end_var`` is its ``var`` folder, where oned writes each VM's files.

Files go between places (a path on the front end or on a host) in chunks, through whatever runs
the commands (``Commands``: drivers/tm.py's ``Transfer``): a host's file is read as base64 text,
written in pieces of ``CHUNK`` bytes to ``<path>.part`` and then renamed (a copy on one machine
too): a file under its final name is whole, so a re-issued copy can count it as done.
"""

from __future__ import annotations

import base64
import contextlib
import os
import posixpath
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from drivers.protocol import DriverFailure

CancelHook = Callable[[Callable[[], None]], None]
TIMED_OUT, UNREACHABLE, CANCELLED = 124, 255, 130
CHUNK = 8 << 20  # bytes a write sends
READ_CHUNK = 1 << 20  # bytes a read fetches: base64 text through the host's shell
READ = 'dd if="$1" bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes status=none | base64 -w0'


def local_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The names by which scripts call the front-end (oned writes its gethostname())."""
    name = socket.gethostname()
    return frozenset({"localhost", "127.0.0.1", "::1", name, name.split(".")[0], *extra})


def front_end_var(env: Mapping[str, str] = os.environ) -> str:
    """$ONE_LOCATION/var, or /var/lib/one for a system-wide install (ONE_LOCATION empty)."""
    location = env.get("ONE_LOCATION", "")
    return os.path.join(location, "var") if location else "/var/lib/one"


@dataclass(frozen=True)
class RunResult:
    """What a command did: exit code, and its output decoded as UTF-8 (invalid bytes replaced)."""

    code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    def reason(self) -> str:
        """One line saying why it failed: the first line of stderr, else the exit code."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        return lines[0] if lines else f"exit code {self.code}"


def timed_out(seconds: float, stdout: str = "", stderr: str = "") -> RunResult:
    note = f"timed out after {seconds:g} s"
    return RunResult(TIMED_OUT, stdout, f"{note}\n{stderr}" if stderr else note)


def _text(data: bytes | bytearray | None) -> str:
    return bytes(data or b"").decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Local commands


def run_local(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | None = None,
    on_cancel: CancelHook | None = None,
) -> RunResult:
    """Run ``argv`` on the front end in its own process group; on timeout or cancel the whole
    group is killed (so a hook's children cannot keep the pipes open)."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return RunResult(127, "", f"command not found: {argv[0]}")
    except PermissionError:
        return RunResult(126, "", f"command not executable: {argv[0]}")
    cancelled = threading.Event()

    def cancel() -> None:
        cancelled.set()
        _kill_group(proc)

    if on_cancel:
        on_cancel(cancel)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return timed_out(timeout, _text(out), _text(err))
    if cancelled.is_set():
        return RunResult(CANCELLED, _text(out), "cancelled")
    return RunResult(proc.returncode, _text(out), _text(err))


def write_local(path: str, data: bytes, mode: int = 0o600) -> RunResult:
    """Write ``data`` to ``path`` on the front end as SshPool.put does on a host: atomically,
    creating the folder, the file made with ``mode`` (never readable by others meanwhile)."""
    part = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            os.fchmod(file.fileno(), mode)
        os.replace(part, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(part)
        return RunResult(1, "", err.strerror or str(err))
    return RunResult(0)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# Files between places


class Place(NamedTuple):
    """A path on a host, or on the front-end (host None)."""

    host: str | None
    path: str

    def __str__(self) -> str:
        return self.path if self.host is None else f"{self.host}:{self.path}"

    def join(self, relative: str) -> Place:
        return Place(self.host, posixpath.join(self.path, relative) if relative else self.path)


class Commands(Protocol):
    """How the copy runs its commands, here (host None) or on a host: drivers/tm.py's Transfer."""

    def run(
        self, host: str | None, argv: Sequence[str], data: bytes | None = None, cancel: bool = True
    ) -> RunResult: ...

    def must(self, host: str | None, argv: Sequence[str], data: bytes | None = None) -> str: ...

    def make_parent(self, place: Place) -> str: ...


def read_chunks(t: Commands, src: Place) -> Iterator[bytes]:
    """The bytes of a file, in chunks (a host's come base64-encoded: RunResult is text)."""
    if src.host is None:
        with open(src.path, "rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk
        return
    size = int(t.must(src.host, ["stat", "-L", "-c", "%s", "--", src.path]))
    for offset in range(0, size, READ_CHUNK):
        argv = ["sh", "-c", READ, "read", src.path, str(offset), str(READ_CHUNK)]
        chunk = base64.b64decode(t.must(src.host, argv))
        if len(chunk) != min(READ_CHUNK, size - offset):
            raise DriverFailure(f"short read of {src} at byte {offset}")
        yield chunk


def batched(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The same bytes in pieces of ``size`` (the last shorter): one SSH channel a piece."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


@contextlib.contextmanager
def part_file(t: Commands, dst: Place) -> Iterator[Place]:
    """``<dst>.part`` to write, renamed to ``dst`` when the block ends: a file under the target's
    name is always whole. On any failure or cancel the ``.part`` is removed; one a killed driver
    left is overwritten by the next copy to ``dst`` (the re-issued action after a crash)."""
    part = Place(dst.host, dst.path + ".part")
    try:
        yield part
        t.must(dst.host, ["mv", "-f", "--", part.path, dst.path])
    except BaseException:
        t.run(part.host, ["rm", "-f", "--", part.path], cancel=False)
        raise


def write_chunks(t: Commands, chunks: Iterable[bytes], dst: Place) -> None:
    """Write a file from chunks to ``<dst>.part``, then rename it; no ``.part`` is left."""
    with part_file(t, dst) as part:
        if dst.host is None:
            with open(part.path, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
            return
        mode = ">"
        for chunk in batched(chunks, CHUNK):
            t.must(dst.host, ["sh", "-c", f'cat {mode} "$1"', "write", part.path], chunk)
            mode = ">>"
        if mode == ">":  # an empty file
            t.must(dst.host, ["sh", "-c", ': > "$1"', "write", part.path])


def copy_file(t: Commands, src: Place, dst: Place) -> None:
    """``cp`` when both are on one machine, else through this driver, chunk by chunk; either
    way through ``<dst>.part`` (``part_file``)."""
    if src.host == dst.host:
        with part_file(t, dst) as part:
            t.must(dst.host, ["cp", "--", src.path, part.path])
    else:
        write_chunks(t, read_chunks(t, src), dst)


def file_size(t: Commands, place: Place) -> int | None:
    """The size of the file at ``place`` (links followed), None when there is none."""
    if place.host is None:
        try:
            return os.stat(place.path).st_size
        except FileNotFoundError:
            return None
    result = t.run(place.host, ["stat", "-L", "-c", "%s", "--", place.path])
    if result.ok:
        return int(result.stdout)
    if result.code == 1 and "No such file" in result.stderr:
        return None
    raise DriverFailure(f"cannot check {place}: {result.reason()}")


def list_files(t: Commands, src: Place) -> list[str]:
    """The files under ``src`` relative to it (links followed); ``['']`` when it is a file."""
    if src.host is None:
        if not os.path.exists(src.path):
            raise DriverFailure(f"{src} does not exist")
        if not os.path.isdir(src.path):
            return [""]
        return [
            os.path.relpath(os.path.join(top, name), src.path)
            for top, _, names in os.walk(src.path, followlinks=True)
            for name in names
        ]
    found = t.must(src.host, ["find", "-L", src.path, "-type", "f"]).splitlines()
    return [posixpath.relpath(path, src.path) if path != src.path else "" for path in found]


def copy_tree(t: Commands, src: Place, dst: Place) -> None:
    files = list_files(t, src)
    if files != [""]:
        t.must(dst.host, ["mkdir", "-p", "--", dst.path])
    for relative in files:
        t.make_parent(dst.join(relative))
        copy_file(t, src.join(relative), dst.join(relative))
