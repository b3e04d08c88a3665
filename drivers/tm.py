"""TM (transfer manager) driver: ``one_tm ssh|nfs|dummy`` (or 1.4's ``tm_ssh/tm_ssh.conf``).

Answers ``TRANSFER <vid> <script_file>`` by running the script oned wrote (reference §1.6): CLONE,
LN, MKSWAP, MKIMAGE, DELETE, MV, CONTEXT on ``host:path`` arguments; a path without ``host:`` or
on the front-end's own name is local. ssh: VM_DIR is not shared; files go between machines in
chunks (drivers/runner.py) over each host's reused SSH connection (drivers/ssh.py), LN copies
unless the image is on that host, MV copies then removes the source. nfs: VM_DIR is shared;
every command works on the path here (``--vm-dir`` rewritten to the var dir), MV skips
directories, as 1.4's nfs scripts. dummy: every command succeeds, nothing is touched (1.4's
tm_dummy).

Contract: the script is checked first (drivers/tm_script.py: its words, each argument's shape,
the mkfs format; then every image it reads exists), then run in order;
the first failing command stops it (``TRANSFER FAILURE <vid> <command line>: <why>``) and what
this transfer created is removed again, so a failed prolog leaves nothing on the host. What an
MV moved is never removed.

Every script can be sent again after a crash of oned or of this driver (oned re-issues the
transfer that was in flight): copies go through ``<target>.part`` and a rename, so a target
there is whole and a CLONE whose target is as big as its source is done; a ``.part`` a killed
copy left is overwritten; DELETE of what is gone succeeds; an MV whose source is gone and
whose destination is there succeeds; an MV of a symbolic link onto what it points to (a
persistent image LN'd in place) removes the link and succeeds; MKSWAP, MKIMAGE and CONTEXT
make their file anew.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from drivers.protocol import DriverFailure, Request
from drivers.runner import (
    Place,
    RunResult,
    copy_file,
    copy_tree,
    file_size,
    front_end_var,
    local_names,
    part_file,
    run_local,
)
from drivers.serve import Action, Logger, driver_parser, parse_driver_args, serve
from drivers.ssh import SshPool
from drivers.tm_script import FORMATS, URL, Command, parse_script, size_mb

SETS = ("ssh", "nfs", "dummy")
MKPARENT = (  # prints the topmost directory it had to create (what a rollback removes)
    'd=$(dirname -- "$1"); top=; while [ ! -e "$d" ]; do top=$d; d=$(dirname -- "$d"); done; '
    'mkdir -p -- "$(dirname -- "$1")" && printf %s "$top"'
)
SAME_FILE = '[ -L "$1" ] && [ "$(readlink -f -- "$1")" = "$(readlink -f -- "$2")" ]'
FRESH = 'rm -f -- "$1" && truncate -s "$2" -- "$1"'  # a re-issued mkfs finds no old file system


@dataclass
class Context:
    """The command set and how to reach hosts; ``rewrite`` is nfs's (VM_DIR, local var dir)."""

    kind: str
    local_names: frozenset[str]
    timeout: float = 300.0
    pool: SshPool | None = None
    rewrite: tuple[str, str] | None = None

    def place(self, text: str) -> Place:
        """Where ``[host:]path`` is; with nfs everything is local."""
        host, _, path = text.partition(":") if ":" in text and text[0] != "/" else ("", "", text)
        if self.kind == "nfs":
            old, new = self.rewrite or ("", "")
            return Place(None, new + path[len(old) :] if old and path.startswith(old) else path)
        return Place(None if not host or host in self.local_names else host, path)


@dataclass
class Transfer:
    """One TRANSFER being run: runs commands and remembers what it created, for a rollback."""

    ctx: Context
    log: Logger
    created: list[Place] = field(default_factory=list)

    def run(
        self, host: str | None, argv: Sequence[str], data: bytes | None = None, cancel: bool = True
    ) -> RunResult:
        """Run here or on ``host``; DRIVER_CANCEL stops it unless ``cancel`` is False."""
        timeout, on_cancel = self.ctx.timeout, self.log.on_cancel if cancel else None
        if host is None:
            return run_local(argv, timeout=timeout, input=data, on_cancel=on_cancel)
        assert self.ctx.pool is not None
        return self.ctx.pool.run(host, argv, timeout=timeout, input=data, on_cancel=on_cancel)

    def must(self, host: str | None, argv: Sequence[str], data: bytes | None = None) -> str:
        """The command's stdout; DriverFailure naming the command and the host when it fails."""
        result = self.run(host, argv, data)
        if not result.ok:
            where = f" on {host}" if host else ""
            raise DriverFailure(f"{argv[0]}{where} failed: {result.reason()}")
        return result.stdout

    def make_parent(self, place: Place) -> str:
        """Create the directory of ``place``; returns the topmost directory it created, or ''."""
        return self.must(place.host, ["sh", "-c", MKPARENT, "mkparent", place.path])

    def new(self, place: Place) -> None:
        """About to create ``place``: its directory exists; both go away in a rollback."""
        top = self.make_parent(place)
        self.created += [Place(place.host, top)] if top else []
        self.created.append(place)

    def exists(self, place: Place) -> bool:
        if place.host is None:
            return os.path.exists(place.path)
        result = self.run(place.host, ["test", "-e", place.path])
        if result.code not in (0, 1):
            raise DriverFailure(f"cannot check {place}: {result.reason()}")
        return result.ok

    def links_to(self, link: Place, target: Place) -> bool:
        """``link`` is a symbolic link resolving to ``target``, on the same machine (an LN'd
        persistent image going back to itself: moving the link over it would destroy it)."""
        if link.host != target.host:
            return False
        if link.host is None:
            real = os.path.realpath
            return os.path.islink(link.path) and real(link.path) == real(target.path)
        result = self.run(link.host, ["sh", "-c", SAME_FILE, "links_to", link.path, target.path])
        return result.ok

    def rollback(self) -> None:
        """Remove what this transfer created (also after a DRIVER_CANCEL)."""
        for place in reversed(self.created):
            result = self.run(place.host, ["rm", "-rf", "--", place.path], cancel=False)
            self.log(
                f"removed {place}" if result.ok else f"cannot remove {place}: {result.reason()}"
            )
        self.created.clear()


# ---------------------------------------------------------------------------------------------
# The commands (ssh and nfs; the ``Context.place`` of nfs makes every path local)


def clone(t: Transfer, args: Sequence[str]) -> None:
    """CLONE src host:dst [size]; NOTE: the size is ignored, as 1.4's tm_clone.sh does.
    A target as big as the source is whole (copies end in a rename): it counts as done."""
    dst = t.ctx.place(args[1])
    t.new(dst)
    if URL.match(args[0]):
        if t.exists(dst):
            t.log(f"CLONE: {dst} is there already")
            return
        with part_file(t, dst) as part:
            t.must(dst.host, ["wget", "-q", "-O", part.path, args[0]])
        return
    src = t.ctx.place(args[0])
    size = file_size(t, dst)
    if size is not None and size == file_size(t, src):
        t.log(f"CLONE: {dst} is there already, as big as {src}")
        return
    copy_file(t, src, dst)


def ln(t: Transfer, args: Sequence[str]) -> None:
    """LN src host:dst: a symbolic link where the image is on that machine, else a copy."""
    src, dst = t.ctx.place(args[0]), t.ctx.place(args[1])
    if src.host != dst.host or URL.match(args[0]):
        t.log(f"LN: {args[0]} is not on {dst.host}: copying it (VM_DIR is not shared)")
        return clone(t, args)
    t.new(dst)
    t.must(dst.host, ["ln", "-sfn", "--", src.path, dst.path])


def mkswap(t: Transfer, args: Sequence[str]) -> None:
    """MKSWAP size_mb host:dst: a sparse file of that size holding a swap area."""
    size, dst = size_mb(args[0]), t.ctx.place(args[1])
    t.new(dst)
    t.must(dst.host, ["sh", "-c", FRESH, "fresh", dst.path, f"{size}M"])
    t.must(dst.host, ["mkswap", "-q", dst.path])


def mkimage(t: Transfer, args: Sequence[str]) -> None:
    """MKIMAGE size_mb format host:dst: a file system (mkfs -t format), or raw, swap, qcow2."""
    size, fmt, dst = size_mb(args[0]), args[1].lower(), t.ctx.place(args[2])
    if fmt not in FORMATS:  # checked with the script already; here too, right before mkfs
        raise DriverFailure(f"format {fmt[:40]!r} is not one of {', '.join(sorted(FORMATS))}")
    t.new(dst)
    if fmt == "qcow2":
        t.must(dst.host, ["qemu-img", "create", "-q", "-f", "qcow2", dst.path, f"{size}M"])
        return
    t.must(dst.host, ["sh", "-c", FRESH, "fresh", dst.path, f"{size}M"])
    if fmt == "swap":
        t.must(dst.host, ["mkswap", "-q", dst.path])
    elif fmt != "raw":
        force = ["-F", "-q"] if fmt.startswith("ext") else []
        t.must(dst.host, ["mkfs", "-t", fmt, *force, dst.path])


def delete(t: Transfer, args: Sequence[str]) -> None:
    """DELETE host:path: rm -rf (never of / or of a relative path)."""
    place = t.ctx.place(args[0])
    if not posixpath.isabs(place.path) or posixpath.normpath(place.path) == "/":
        raise DriverFailure(f"will not delete {place}")
    t.must(place.host, ["rm", "-rf", "--", place.path])


def mv(t: Transfer, args: Sequence[str]) -> None:
    """MV src_host:src dst_host:dst: a file or a directory tree; then the source is gone."""
    src, dst = t.ctx.place(args[0]), t.ctx.place(args[1])
    if src == dst:
        t.log(f"MV: will not move {src}: source and destination are equal")
    elif t.links_to(src, dst):
        t.log(f"MV: {src} is a link to {dst}, which is written in place: removing the link")
        t.must(src.host, ["rm", "-f", "--", src.path])
    elif not t.exists(src) and t.exists(dst):  # moved before a crash, re-issued since
        t.log(f"MV: {src} is gone and {dst} is there: moved already")
    elif t.ctx.kind == "nfs" and os.path.isdir(src.path):
        t.log(f"MV: will not move the directory {src}: VM_DIR is shared")  # NOTE: as 1.4's nfs
    elif src.host == dst.host:
        t.make_parent(dst)
        t.must(dst.host, ["mv", "-f", "-T", "--", src.path, dst.path])
    else:
        move_between(t, src, dst)


def move_between(t: Transfer, src: Place, dst: Place) -> None:
    """Copy to another machine, then remove the source; a failed copy leaves no new files."""
    existed, top = t.exists(dst), t.make_parent(dst)
    try:
        copy_tree(t, src, dst)
    except BaseException:
        if top or not existed:
            t.run(dst.host, ["rm", "-rf", "--", top or dst.path], cancel=False)
        raise
    t.must(src.host, ["rm", "-rf", "--", src.path])


def context(t: Transfer, args: Sequence[str]) -> None:
    """CONTEXT context.sh [files...] host:dst: an ISO (genisoimage -J -R) holding them."""
    sources, dst = [t.ctx.place(a) for a in args[:-1]], t.ctx.place(args[-1])
    if any(s.host for s in sources):
        raise DriverFailure("context files must be on the front-end")
    with tempfile.TemporaryDirectory(prefix="one-context-") as tmp:
        content, iso = Path(tmp) / "isofiles", Path(tmp) / "context.iso"
        content.mkdir()
        for source in sources:
            shutil.copyfile(source.path, content / Path(source.path).name)
        tool = shutil.which("genisoimage") or "mkisofs"
        t.must(None, [tool, "-quiet", "-o", str(iso), "-J", "-R", str(content)])
        t.new(dst)
        copy_file(t, Place(None, str(iso)), dst)


COMMANDS: dict[str, Callable[[Transfer, Sequence[str]], None]] = {
    "CLONE": clone, "LN": ln, "MKSWAP": mkswap, "MKIMAGE": mkimage, "DELETE": delete, "MV": mv,
    "CONTEXT": context,
}  # fmt: skip


def check_sources(t: Transfer, commands: Sequence[Command]) -> None:
    """Every image and file the script reads exists; else DriverFailure naming it."""
    for command in commands:
        reads = {"CLONE": command.args[:1], "LN": command.args[:1], "CONTEXT": command.args[:-1]}
        for text in reads.get(command.name, ()):
            place = t.ctx.place(text)
            if not URL.match(text) and not t.exists(place):
                raise DriverFailure(f"{command.name}: {place} does not exist")


def read_script(path: str) -> list[Command]:
    try:
        return parse_script(Path(path).read_text())
    except FileNotFoundError:
        raise DriverFailure(f"Transfer file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DriverFailure(f"{path}: {err}") from None


def transfer(ctx: Context, request: Request, log: Logger) -> str:
    """TRANSFER vid script_file: run it all, or fail at the first command and roll back."""
    if not request.args:
        raise DriverFailure("TRANSFER needs a script file")
    commands = read_script(request.args[0])
    if ctx.kind == "dummy":
        return "-"
    t = Transfer(ctx, log)
    check_sources(t, commands)
    for command in commands:
        log(str(command))
        try:
            COMMANDS[command.name](t, command.args)
        except (DriverFailure, OSError, ValueError) as err:
            why = f"{err.strerror}: {err.filename}" if isinstance(err, OSError) else err
            t.rollback()
            raise DriverFailure(f"{command}: {why}") from err
    return "-"


def command_set(argument: str) -> str:
    """``ssh``/``nfs``/``dummy``, also from 1.4's ``tm_ssh/tm_ssh.conf`` form."""
    name = Path(argument).name.removesuffix(".conf").removeprefix("tm_")
    if name not in SETS:
        raise argparse.ArgumentTypeError(f"unknown command set {argument!r} (ssh, nfs or dummy)")
    return name


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_tm", __doc__ or "")
    parser.add_argument("set", type=command_set, help="ssh, nfs or dummy")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command (300)")
    parser.add_argument("--front-end", action="append", default=[], help="another local name")
    parser.add_argument("--vm-dir", help="nfs: the hosts' VM_DIR, rewritten to the local var dir")
    return parse_driver_args(parser, argv)


def transfer_lane(ctx: Context, request: Request) -> str | None:
    """The first host the script names (its lane: a hung host delays only its own transfers),
    None when it names only the front-end or cannot be read (the action then says why)."""
    if ctx.kind == "dummy" or not request.args:
        return None
    for command in read_script(request.args[0]):
        for text in command.args:
            host = ctx.place(text).host if not URL.match(text) else None
            if host:
                return host
    return None


def actions(ctx: Context) -> dict[str, Action]:
    return {"TRANSFER": partial(transfer, ctx)}


# What the TM makes on the front end (the nfs set, an ssh host that is the front end) is the
# hypervisor's to open: libvirt's DAC driver gives an image back to root:root when a VM leaves a
# host, and QEMU (libvirt-qemu) must still read it. An image is kept private by its VM folder,
# which oned makes 0700 (0750 with UMASK 027), not by its own mode; as on the hosts over SSH.
IMAGE_UMASK = 0o022


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.umask(IMAGE_UMASK)
    rewrite = (args.vm_dir.rstrip("/"), front_end_var()) if args.vm_dir else None
    pool = SshPool(max_idle=args.concurrency) if args.set == "ssh" else None
    ctx = Context(args.set, local_names(args.front_end), args.timeout, pool, rewrite)
    try:
        lane = partial(transfer_lane, ctx)
        return serve(actions(ctx), concurrency=args.concurrency, lane=lane)
    finally:
        if pool is not None:
            pool.close()


if __name__ == "__main__":
    sys.exit(main())
