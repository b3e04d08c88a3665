"""VMM (virtual machine manager) dummy driver: ``one_vmm_dummy [--script FILE]``.

Every action succeeds at once, through the same protocol path as a real driver (OpenNebula
2.0's vmm_dummy): ``DEPLOY SUCCESS <vid> dummy-<vid>``, ``<ACTION> SUCCESS <vid>``, and
``POLL SUCCESS <vid> STATE=a USEDMEMORY=<KB> USEDCPU=<percent> NETRX=<bytes> NETTX=<bytes>``,
the memory taken from the VM's MEMORY in the deployment file when it can be read. ``--script``
names a YAML file, re-read whenever it changes, that scripts outcomes per action and, optionally,
per VM id glob (the first glob that matches wins)::

    DEPLOY: {outcome: failure, message: "no room", times: 1}   # only the first DEPLOY fails
    SHUTDOWN: {delay: 2.5}                                      # answered after 2.5 s
    SAVE: {outcome: delay, seconds: 1}                          # the same, as an outcome
    CANCEL: {outcome: hang}                                     # never answered
    REBOOT: {outcome: failure, message: "guest ignores ACPI"}   # every REBOOT fails
    POLL:
      "1?": {state: p}                                          # VMs 10-19 look paused
      "*": {outcome: success}

Outcomes: success (default), failure (FAILURE with the message), delay (success after
``seconds``), hang (no reply: oned's timeout or DRIVER_CANCEL must deal with it). ``delay``
also works with the other outcomes; ``times: N`` applies a rule to its first N requests only;
``state`` sets POLL's STATE (a, p, e, d or -).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from drivers.protocol import DriverFailure, NoReply, Request
from drivers.runner import front_end_var
from drivers.script_file import ScriptFile
from drivers.serve import Action, Logger, driver_parser, parse_driver_args, serve

ACTIONS = ("DEPLOY", "SHUTDOWN", "CANCEL", "SAVE", "RESTORE", "MIGRATE", "POLL", "REBOOT", "RESET")
OUTCOMES = ("success", "failure", "delay", "hang")
STATES = ("a", "p", "e", "d", "-")
RULE_FIELDS = frozenset({"outcome", "message", "delay", "seconds", "times", "state"})
DEFAULT_MEMORY_KB = 131072
_REMOTE_FILE = re.compile(r"/(\d+)/images/(deployment\.\d+)$")
_MEMORY = re.compile(r"<TEMPLATE>.*?<MEMORY>(?:<!\[CDATA\[)?\s*(\d+)", re.S)


@dataclass
class Rule:
    """What the script says about one action for the VMs whose id matches ``pattern``."""

    pattern: str
    outcome: str = "success"
    message: str | None = None
    delay: float = 0.0
    times: int | None = None
    state: str = "a"
    used: int = 0  # requests this rule has answered (for ``times``)

    def claim(self, lock: threading.Lock) -> bool:
        """Whether the rule applies to one more request (counting it when it does)."""
        with lock:
            if self.times is not None and self.used >= self.times:
                return False
            self.used += 1
            return True


def parse_rule(where: str, settings: Any, pattern: str = "*") -> Rule:
    """One rule from its YAML mapping; ValueError naming ``where`` when it is wrong."""
    settings = settings or {}
    if not isinstance(settings, Mapping) or set(settings) - RULE_FIELDS:
        raise ValueError(f"{where}: settings must be a mapping of {', '.join(sorted(RULE_FIELDS))}")
    try:
        rule = Rule(
            pattern,
            outcome=str(settings.get("outcome", "success")).lower(),
            message=None if settings.get("message") is None else str(settings["message"]),
            delay=float(settings.get("delay") or settings.get("seconds") or 0),
            times=None if settings.get("times") is None else int(settings["times"]),
            state=str(settings.get("state", "a")),
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from err
    if rule.outcome not in OUTCOMES:
        raise ValueError(f"{where}: outcome {rule.outcome!r} is not one of {', '.join(OUTCOMES)}")
    if rule.state not in STATES:
        raise ValueError(f"{where}: state {rule.state!r} is not one of {', '.join(STATES)}")
    return rule


def parse_script(data: Any) -> dict[str, list[Rule]]:
    """Rules by action from the script's YAML document; ValueError naming what is wrong.

    An action maps either to one rule (for every VM) or to VM-id globs, each to a rule.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("the script must map actions to rules")
    rules: dict[str, list[Rule]] = {}
    for action, value in data.items():
        name = str(action).upper()
        if name not in ACTIONS:
            raise ValueError(f"{action}: not one of {', '.join(ACTIONS)}")
        if value is None or (isinstance(value, Mapping) and set(value) <= RULE_FIELDS):
            rules[name] = [parse_rule(name, value)]
        elif isinstance(value, Mapping):
            rules[name] = [parse_rule(f"{name} {p}", s, str(p)) for p, s in value.items()]
        else:
            raise ValueError(f"{name}: must be a rule or a mapping of VM id globs to rules")
    return rules


class Script(ScriptFile[dict[str, list[Rule]]]):
    """The ``--script`` file: per action, VM-id glob -> outcome rules, re-read when it changes."""

    def __init__(self, path: str) -> None:
        super().__init__(path, parse_script, {})

    def rule_for(self, action: str, vid: str, log: Logger) -> Rule | None:
        """The first rule of ``action`` whose glob matches ``vid`` and that still applies."""
        for rule in self.rules(log).get(action, ()):
            if fnmatch.fnmatchcase(vid, rule.pattern) and rule.claim(self.lock):
                return rule
        return None


@dataclass
class Context:
    """The script (if any) and what the driver remembers of each deployed VM."""

    script: Script | None = None
    var_dir: str = "/var/lib/one"
    vms: dict[str, tuple[int, float]] = field(default_factory=dict)  # vid -> (KB, deployed at)


def memory_kb(ctx: Context, remote_file: str) -> int:
    """The VM's MEMORY (MB) in KB, read from the local deployment file; a default if unknown."""
    match = _REMOTE_FILE.search(remote_file)
    if not match:
        return DEFAULT_MEMORY_KB
    try:
        with open(os.path.join(ctx.var_dir, match.group(1), match.group(2))) as doc:
            found = _MEMORY.search(doc.read())
    except OSError:
        return DEFAULT_MEMORY_KB
    return int(found.group(1)) * 1024 if found else DEFAULT_MEMORY_KB


def poll_info(ctx: Context, vid: str, state: str) -> str:
    """Plausible figures: the VM's memory, a few % CPU, traffic growing since the deploy."""
    kb, since = ctx.vms.get(vid, (DEFAULT_MEMORY_KB, time.monotonic()))
    elapsed = max(0.0, time.monotonic() - since)
    cpu = zlib.crc32(vid.encode()) % 10 + 1
    return (
        f"STATE={state} USEDMEMORY={kb} USEDCPU={cpu} "
        f"NETRX={int(elapsed * 2048)} NETTX={int(elapsed * 1024)}"
    )


def apply_rule(rule: Rule | None, request: Request, log: Logger) -> None:
    """Wait and fail (or hang) as the rule says; returns for a success."""
    if rule is None:
        return
    if rule.delay > 0:
        done = threading.Event()
        log.on_cancel(done.set)
        done.wait(rule.delay)
    if rule.outcome == "hang":
        raise NoReply()
    if rule.outcome == "failure":
        raise DriverFailure(rule.message or f"{request.action} failed (scripted)")


def act(ctx: Context, request: Request, log: Logger) -> str:
    """Any action: the scripted outcome, else success; DEPLOY answers ``dummy-<vid>``."""
    rule = ctx.script.rule_for(request.action, request.id, log) if ctx.script else None
    apply_rule(rule, request, log)
    if request.action == "DEPLOY":
        remote = request.args[1] if len(request.args) > 1 else ""
        ctx.vms[request.id] = (memory_kb(ctx, remote), time.monotonic())
        return f"dummy-{request.id}"
    if request.action == "POLL":
        return poll_info(ctx, request.id, rule.state if rule else "a")
    if request.action in ("SHUTDOWN", "CANCEL"):
        ctx.vms.pop(request.id, None)
    return "-"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_vmm_dummy", __doc__ or "", concurrency=100)
    parser.add_argument("--script", help="YAML file: action [-> VM id glob] -> outcome")
    return parse_driver_args(parser, argv)


def actions(ctx: Context) -> dict[str, Action]:
    return dict.fromkeys(ACTIONS, partial(act, ctx))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = Context(Script(args.script) if args.script else None, front_end_var())
    return serve(actions(ctx), concurrency=args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
