"""IM (information manager) driver over SSH: ``one_im_ssh kvm|xen [options]``.

Answers ``MONITOR <host_id> <host> <0|1>`` by running the hypervisor's probe set on the host:
the shell probes of ``share/im_probes/common.d`` and ``<hypervisor>.d``, bundled into one
script named after the sha256 of its text, copied once per host per driver lifetime to
``<remote dir>/im/probes-<hash>.sh`` (again when the flag is 1 or the host has lost it), then
run with one command over the host's reused SSH connection. The probe lines are answered
joined by spaces, exactly as printed (oned judges them; garbage is not hidden).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from drivers.protocol import DriverFailure, Request
from drivers.runner import TIMED_OUT, UNREACHABLE, RunResult
from drivers.serve import Action, Logger, driver_parser, host_lane, parse_driver_args, serve
from drivers.ssh import SshPool

HYPERVISORS = ("kvm", "xen")
PROBES_MISSING = 66  # exit code of the launcher when the bundle is not on the host (EX_NOINPUT)
LAUNCHER = 'test -r "$1" || exit 66; exec sh "$@"'
BUNDLE_HEAD = """#!/bin/sh
# onecloud host probes ({hypervisor}), bundled by one_im_ssh from share/im_probes.
# The file is named after the sha256 of this text. Usage: sh probes-<hash>.sh HOST_NAME
LC_ALL=C; export LC_ALL
ONE_HOST=${{1:-$(uname -n)}}
case "$ONE_HOST" in
*[!A-Za-z0-9._-]*) ONE_STATE=$(printf '%s' "$ONE_HOST" | tr -c 'A-Za-z0-9._-' _) ;;
*) ONE_STATE=$ONE_HOST ;;
esac
case "$0" in */*) ONE_STATE="${{0%/*}}/state-$ONE_STATE" ;; *) ONE_STATE="state-$ONE_STATE" ;; esac
export ONE_HOST ONE_STATE
one_status=0
one_failed() {{ echo "probe $1 failed (exit $2)" >&2; one_status=1; }}
"""


@dataclass(frozen=True)
class Bundle:
    """One probe set as a single script: its text and the name it has on every host."""

    hypervisor: str
    text: str

    @property
    def name(self) -> str:
        return f"probes-{hashlib.sha256(self.text.encode()).hexdigest()[:16]}.sh"


def share_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where the probes are: $ONE_LOCATION/share, this checkout's share/, or /usr/share/one."""
    candidates = [Path(env["ONE_LOCATION"]) / "share"] if env.get("ONE_LOCATION") else []
    candidates += [Path(__file__).resolve().parents[1] / "share", Path("/usr/share/one")]
    for candidate in candidates:
        if (candidate / "im_probes").is_dir():
            return candidate
    raise SystemExit(f"one_im_ssh: no im_probes under any of {', '.join(map(str, candidates))}")


def probe_files(root: Path, hypervisor: str) -> list[Path]:
    """The executable files of common.d then <hypervisor>.d, each set in name order."""
    found = []
    for folder in (root / "common.d", root / f"{hypervisor}.d"):
        if not folder.is_dir():
            raise SystemExit(f"one_im_ssh: probe folder {folder} is missing")
        found += sorted(p for p in folder.iterdir() if p.is_file() and os.access(p, os.X_OK))
    return found


def make_bundle(root: Path, hypervisor: str) -> Bundle:
    """Every probe in its own subshell; a probe that exits non-zero fails the whole run."""
    parts = [BUNDLE_HEAD.format(hypervisor=hypervisor)]
    for probe in probe_files(root, hypervisor):
        label, body = f"{probe.parent.name}/{probe.name}", probe.read_text().rstrip()
        parts.append(f"# --- {label}\n(\n{body}\n) || one_failed {label} $?\n")
    parts.append('exit "$one_status"\n')
    return Bundle(hypervisor, "".join(parts))


def probe_info(stdout: str) -> str:
    """The MONITOR info: the non-empty output lines, stripped, joined by single spaces."""
    return " ".join(line.strip() for line in stdout.splitlines() if line.strip())


def failure_reason(result: RunResult, host: str, timeout: float) -> str:
    """One line for MONITOR FAILURE, from a run that did not succeed."""
    if result.code == TIMED_OUT:
        return f"probe timed out after {timeout:g} s"
    if result.code == UNREACHABLE:
        return result.reason()
    return f"probes failed on {host}: {result.reason()}"


@dataclass
class Context:
    """What the MONITOR action needs: the pool, the bundle, where it goes, which hosts have it."""

    pool: SshPool
    bundle: Bundle
    remote_dir: str
    timeout: float
    copied: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def remote_path(self) -> str:
        return f"{self.remote_dir.rstrip('/')}/im/{self.bundle.name}"


def parse_monitor(request: Request) -> tuple[str, bool]:
    """(host, update) from ``MONITOR id host [0|1]`` (1.4 sends no flag)."""
    if not request.args:
        raise DriverFailure("MONITOR needs a host name")
    return request.args[0], request.args[1:2] == ("1",)


def remaining(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def copy_probes(ctx: Context, host: str, log: Logger, deadline: float) -> None:
    """Put the bundle on ``host``; DriverFailure when that fails."""
    text = ctx.bundle.text.encode()
    result = ctx.pool.put(host, ctx.remote_path, text, 0o700, timeout=remaining(deadline))
    if result.code in (TIMED_OUT, UNREACHABLE):
        raise DriverFailure(failure_reason(result, host, ctx.timeout))
    if not result.ok:
        raise DriverFailure(f"cannot copy probes to {host}: {result.reason()}")
    with ctx.lock:
        ctx.copied.add(host)
    log(f"copied probes {ctx.bundle.name} to {host}:{ctx.remote_path}")


def run_probes(ctx: Context, host: str, log: Logger, deadline: float) -> RunResult:
    argv = ["sh", "-c", LAUNCHER, "one_im", ctx.remote_path, host]
    return ctx.pool.run(host, argv, timeout=remaining(deadline), on_cancel=log.on_cancel)


def monitor(ctx: Context, request: Request, log: Logger) -> str:
    """MONITOR: the host's probe lines joined by spaces, or DriverFailure with the reason.
    Copying and running together take at most ``--timeout`` seconds."""
    host, update = parse_monitor(request)
    deadline = time.monotonic() + ctx.timeout
    if update or host not in ctx.copied:
        copy_probes(ctx, host, log, deadline)
    result = run_probes(ctx, host, log, deadline)
    if result.code == PROBES_MISSING:
        log(f"probes missing on {host}, copying them again")
        copy_probes(ctx, host, log, deadline)
        result = run_probes(ctx, host, log, deadline)
    if not result.ok:
        raise DriverFailure(failure_reason(result, host, ctx.timeout))
    info = probe_info(result.stdout)
    if not info:
        raise DriverFailure(f"probes printed nothing on {host}")
    return info


def hypervisor_name(argument: str) -> str:
    """``kvm``/``xen``, also from OpenNebula 1.4's ``im_kvm/im_kvm.conf`` form."""
    name = argument
    if name.endswith(".conf"):
        name = Path(name).stem.removeprefix("im_")
    if name not in HYPERVISORS:
        raise argparse.ArgumentTypeError(f"unknown probe set {argument!r} (kvm or xen)")
    return name


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_im_ssh", __doc__ or "")
    parser.add_argument("hypervisor", type=hypervisor_name, help="kvm or xen")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per host (30)")
    parser.add_argument("--remote-dir", default="/var/tmp/one", help="SCRIPTS_REMOTE_DIR")
    parser.add_argument("--probes", type=Path, help="probe folder (default share/im_probes)")
    return parse_driver_args(parser, argv)


def actions(ctx: Context) -> dict[str, Action]:
    return {"MONITOR": partial(monitor, ctx)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    probes = args.probes or share_dir() / "im_probes"
    pool = SshPool(max_idle=args.concurrency)  # at most that many shells busy on one host
    ctx = Context(pool, make_bundle(probes, args.hypervisor), args.remote_dir, args.timeout)
    try:
        return serve(actions(ctx), concurrency=args.concurrency, lane=host_lane)
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
