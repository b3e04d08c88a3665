"""IM (information manager) dummy driver: ``one_im_dummy [--cpu N] [--memory KB] [--script F]``.

Answers ``MONITOR <host_id> <host> ...`` at once with a simulated host of the given capacity
(OpenNebula 2.0's im_dummy: 800 CPU, 16 GB), going through the same protocol path as a real
driver. ``--script`` names a YAML file mapping host-name globs to outcomes, re-read whenever
it changes, so a fault-injection test can flip a host at run time::

    "h-fail-*": {outcome: failure, message: "disk on fire"}
    "h-slow-*": {delay: 2.5}
    "h-big-*":  {cpu: 6400, memory: 268435456}
    "h-hang-*": {outcome: hang}      # never answered (oned's action timeout must cut it)
    "h-junk-*": {outcome: garbage, message: "this is not KEY=VALUE output"}

The first glob that matches wins. Outcomes: success (default), failure (FAILURE with the
message), garbage (SUCCESS whose INFO is the message, as a broken probe would print), hang.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

from drivers.protocol import DriverFailure, NoReply, Request, format_attribute
from drivers.script_file import ScriptFile
from drivers.serve import Action, Logger, driver_parser, parse_driver_args, serve

OUTCOMES = ("success", "failure", "garbage", "hang")
DEFAULT_CPU, DEFAULT_MEMORY = 800, 16777216


class Rule(NamedTuple):
    """What the script says about the hosts whose name matches ``pattern``."""

    pattern: str
    cpu: int | None = None
    memory: int | None = None
    outcome: str = "success"
    delay: float = 0.0
    message: str | None = None


def parse_rules(data: Any) -> tuple[Rule, ...]:
    """Rules from the script's YAML document (a mapping glob -> settings); ValueError if wrong."""
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise ValueError("the script must map host-name globs to settings")
    return tuple(parse_rule(str(pattern), settings) for pattern, settings in data.items())


def parse_rule(pattern: str, settings: Any) -> Rule:
    settings = settings or {}
    known = set(Rule._fields) - {"pattern"}
    if not isinstance(settings, Mapping) or set(settings) - known:
        raise ValueError(f"{pattern}: settings must be a mapping of {', '.join(sorted(known))}")
    try:
        rule = Rule(
            pattern,
            cpu=None if settings.get("cpu") is None else int(settings["cpu"]),
            memory=None if settings.get("memory") is None else int(settings["memory"]),
            outcome=str(settings.get("outcome", "success")).lower(),
            delay=float(settings.get("delay") or 0),
            message=None if settings.get("message") is None else str(settings["message"]),
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{pattern}: {err}") from err
    if rule.outcome not in OUTCOMES:
        raise ValueError(f"{pattern}: outcome {rule.outcome!r} is not one of {', '.join(OUTCOMES)}")
    return rule


def rule_for(rules: Sequence[Rule], host: str) -> Rule | None:
    return next((rule for rule in rules if fnmatch.fnmatchcase(host, rule.pattern)), None)


class Script(ScriptFile[tuple[Rule, ...]]):
    """The ``--script`` file: glob -> outcome rules, re-read when it changes."""

    def __init__(self, path: str) -> None:
        super().__init__(path, parse_rules, ())


class Context(NamedTuple):
    cpu: int
    memory: int
    script: Script | None


def host_info(name: str, cpu: int, memory: int) -> str:
    """The SUCCESS INFO of a dummy host: all of it free."""
    return (
        f"HYPERVISOR=dummy {format_attribute('HOSTNAME', name)} TOTALCPU={cpu} CPUSPEED=2200 "
        f"TOTALMEMORY={memory} USEDMEMORY=0 FREEMEMORY={memory} FREECPU={cpu} USEDCPU=0 "
        "NETRX=0 NETTX=0"
    )


def wait(seconds: float, log: Logger) -> None:
    """Sleep ``seconds``, or less if DRIVER_CANCEL comes first."""
    done = threading.Event()
    log.on_cancel(done.set)
    done.wait(seconds)


def monitor(ctx: Context, request: Request, log: Logger) -> str:
    """MONITOR: the simulated host, or the outcome its script rule asks for."""
    if not request.args:
        raise DriverFailure("MONITOR needs a host name")
    name = request.args[0]
    rule = rule_for(ctx.script.rules(log), name) if ctx.script else None
    if rule is None:
        return host_info(name, ctx.cpu, ctx.memory)
    if rule.delay > 0:
        wait(rule.delay, log)
    if rule.outcome == "hang":
        raise NoReply()
    if rule.outcome == "failure":
        raise DriverFailure(rule.message or f"Could not monitor host {name}.")
    if rule.outcome == "garbage":
        return rule.message or "this is not KEY=VALUE output"
    return host_info(name, ctx.cpu if rule.cpu is None else rule.cpu, rule.memory or ctx.memory)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_im_dummy", __doc__ or "", concurrency=100)
    parser.add_argument("--cpu", type=int, default=DEFAULT_CPU, help="TOTALCPU (800)")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY, help="TOTALMEMORY, KB")
    parser.add_argument("--script", help="YAML file: host-name glob -> outcome")
    return parse_driver_args(parser, argv)


def actions(ctx: Context) -> dict[str, Action]:
    return {"MONITOR": partial(monitor, ctx)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    script = Script(args.script) if args.script else None
    return serve(actions(Context(args.cpu, args.memory, script)), concurrency=args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
