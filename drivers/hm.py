"""HM (hook manager) driver: ``one_hm [--timeout S]``, runs oned's VM hooks (reference §1.7).

``EXECUTE <vid> <hook name> LOCAL <command> <arguments...>`` runs the hook on the front end;
``EXECUTE <vid> <hook name> <host> <command> <arguments...>`` (a hook with ``remote = yes``)
runs it on that host over SSH (drivers/ssh.py quotes every word with ``shlex.quote``). Each
argument is one word of the request (``drivers.protocol.decode_words``) and is never re-split:
oned split the hook's ARGUMENTS before expanding its variables (oned sends a literal ``-`` when
there are none, and that ``-`` is passed on, as OpenNebula does). Every line the hook prints is
copied as a LOG line; the reply is
``EXECUTE SUCCESS <vid> <name>: <first output line>`` or ``EXECUTE FAILURE <vid> <name>: <why>``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from drivers.protocol import DriverFailure, Request
from drivers.runner import RunResult, run_local
from drivers.serve import Action, Logger, driver_parser, parse_driver_args, serve
from drivers.ssh import SshPool

LOCAL = "LOCAL"
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]*")


@dataclass(frozen=True)
class Hook:
    """One EXECUTE request: where to run what."""

    name: str
    host: str | None  # None: on the front end
    argv: tuple[str, ...]


def parse_execute(request: Request) -> Hook:
    """The hook of ``EXECUTE vid name LOCAL|host command args...``, each argument as decoded
    (never re-split); DriverFailure when malformed."""
    if len(request.args) < 3:
        raise DriverFailure("EXECUTE needs a hook name, LOCAL or a host, and a command")
    name, where, command, *arguments = request.args
    if any("\0" in word for word in request.args):
        raise DriverFailure(f"{name}: a NUL character cannot be part of a command")
    if not _HOST.fullmatch(where):
        raise DriverFailure(f"{name}: {where[:80]!r} is not LOCAL nor a host name")
    host = None if where.upper() == LOCAL else where
    return Hook(name, host, (command, *arguments))


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


@dataclass
class Context:
    pool: SshPool
    timeout: float


def run_hook(ctx: Context, hook: Hook, log: Logger) -> RunResult:
    if hook.host is None:
        return run_local(hook.argv, timeout=ctx.timeout, on_cancel=log.on_cancel)
    return ctx.pool.run(hook.host, hook.argv, timeout=ctx.timeout, on_cancel=log.on_cancel)


def execute(ctx: Context, request: Request, log: Logger) -> str:
    """EXECUTE: run the hook; its output goes to LOG lines, its first line to the reply."""
    hook = parse_execute(request)
    where = hook.host or "the front end"
    # The command only: its arguments may carry the VM's template values (CONTEXT secrets).
    log(f"{hook.name}: running {hook.argv[0]} on {where}")
    result = run_hook(ctx, hook, log)
    log(result.stdout)
    log(result.stderr)
    if not result.ok:
        raise DriverFailure(f"{hook.name}: {result.reason()}")
    return f"{hook.name}: {first_line(result.stdout)}".rstrip()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_hm", __doc__ or "")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per hook (60)")
    return parse_driver_args(parser, argv)


def hook_lane(request: Request) -> str | None:
    """The host a hook runs on (its lane: a hung host delays only its own hooks), None if LOCAL."""
    return parse_execute(request).host


def actions(ctx: Context) -> dict[str, Action]:
    return {"EXECUTE": partial(execute, ctx)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pool = SshPool()
    try:
        ctx = Context(pool, args.timeout)
        return serve(actions(ctx), concurrency=args.concurrency, lane=hook_lane)
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
