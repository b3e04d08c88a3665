"""sched.conf and mm_sched's flags: the scheduler's knobs, read and validated.

sched.conf is written in the template language (reference §6), with OpenNebula 3.4+'s names
(reference §7.1): ``SCHED_INTERVAL``, ``MAX_VM``, ``MAX_DISPATCH``, ``MAX_HOST``,
``HYPERVISOR_MEM``, ``ONED_PORT``; onecloud adds ``ONE_XMLRPC``, ``LIVE_INTERVAL``,
``HOST_MONITOR_AGE``, ``DISPATCH_THREADS`` and ``DEBUG_LEVEL``. Flags override the file. A
wrong value raises ``ConfigError`` naming the file, the line and the attribute; an unknown one
only adds a warning. Pure: the caller reads the file.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, NoReturn

from oned.errors import ConfigError, TemplateSyntaxError
from oned.template_parser import parse_entries
from scheduler.placement import Limits

IGNORED = ("DEFAULT_SCHED", "LIVE_RESCHEDS", "MESSAGE_SIZE", "TIMEOUT", "LOG")


@dataclass(frozen=True)
class Settings:
    """The validated knobs; times in seconds. ``endpoint`` None means ``$ONE_XMLRPC`` or
    ``http://localhost:2633/RPC2``."""

    sched_interval: float = 30
    max_vm: int | None = 300  # None: every pending VM (MAX_VM = 0)
    max_dispatch: int = 30
    max_host: int = 1
    hypervisor_mem: float = 0.1
    host_monitor_age: float = 1800
    live_interval: float = 1.0
    dispatch_threads: int = 8
    debug_level: int = 3
    endpoint: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def limits(self) -> Limits:
        return Limits(self.max_dispatch, self.max_host, self.hypervisor_mem, self.host_monitor_age)


class _Invalid(ValueError):
    """What is wrong with a value, as the end of a sentence that starts with the value."""


def _integer(low: int, high: int = 10**9) -> Callable[[str], int]:
    def convert(text: str) -> int:
        if not re.fullmatch(r"\s*[+-]?[0-9]{1,10}\s*", text) or not low <= int(text) <= high:
            raise _Invalid(f"is not an integer between {low} and {high}")
        return int(text)

    return convert


def _max_vm(text: str) -> int | None:
    """NOTE: OpenNebula 4.x+ sched.conf: ``MAX_VM = 0`` means every pending VM, not none."""
    count = _integer(0)(text)
    return count or None


def _number(low: float, high: float) -> Callable[[str], float]:
    def convert(text: str) -> float:
        if not re.fullmatch(r"\s*[0-9]+(\.[0-9]*)?\s*|\s*\.[0-9]+\s*", text):
            raise _Invalid(f"is not a number between {low:g} and {high:g}")
        value = float(text)
        if not low <= value <= high:
            raise _Invalid(f"is not a number between {low:g} and {high:g}")
        return value

    return convert


def _endpoint(text: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text.strip()):
        raise _Invalid("is not an http(s):// URL")
    return text.strip()


def _port(text: str) -> str:
    return f"http://localhost:{_integer(1, 65535)(text)}/RPC2"


# attribute -> (Settings field, converter)
KNOBS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SCHED_INTERVAL": ("sched_interval", _number(0.01, 86400)),
    "MAX_VM": ("max_vm", _max_vm),
    "MAX_DISPATCH": ("max_dispatch", _integer(1)),
    "MAX_HOST": ("max_host", _integer(1)),
    "HYPERVISOR_MEM": ("hypervisor_mem", _number(0, 0.99)),
    "HOST_MONITOR_AGE": ("host_monitor_age", _number(0, 10**9)),
    "LIVE_INTERVAL": ("live_interval", _number(0.01, 3600)),
    "DISPATCH_THREADS": ("dispatch_threads", _integer(1, 256)),
    "DEBUG_LEVEL": ("debug_level", _integer(0, 3)),
    "ONE_XMLRPC": ("endpoint", _endpoint),
    "ONED_PORT": ("endpoint", _port),
}


def load_settings(text: str, path: str) -> Settings:
    """The settings of a sched.conf; ``ConfigError`` names the line of a wrong value."""
    try:
        entries = parse_entries(text)
    except TemplateSyntaxError as e:
        raise ConfigError(f"{path}: {e}") from None
    values: dict[str, Any] = {}
    warnings = []
    for entry in entries:
        if entry.name not in KNOBS:
            known = "ignored by onecloud" if entry.name in IGNORED else "unknown, ignored"
            warnings.append(f"{path} line {entry.line}: {entry.name} is {known}")
            continue
        if not isinstance(entry.value, str):
            raise ConfigError(f"{path} line {entry.line}: {entry.name} must be a single value")
        name, convert = KNOBS[entry.name]
        try:
            values[name] = convert(entry.value)
        except _Invalid as e:
            where = f"{path} line {entry.line}"
            raise ConfigError(f'{where}: {entry.name} = "{entry.value}" {e}') from None
    return Settings(**values, warnings=tuple(warnings))


HELP = "help"  # the value of ``-h`` given alone


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, pointing at ``--help``."""
        self.exit(2, f"{self.prog}: {message} (mm_sched --help lists the flags)\n")


def parser() -> argparse.ArgumentParser:
    """mm_sched's flags. NOTE: ``-h N`` is MAX_HOST as in OpenNebula, so help is ``--help``;
    ``-h`` alone (no number) shows the help too (``args.max_host == HELP``)."""
    p = _Parser(
        prog="mm_sched",
        add_help=False,
        description="The onecloud scheduler: places PENDING VMs on hosts through oned's "
        "XML-RPC API. Knobs come from sched.conf; flags override it.",
        epilog="Files: $ONE_LOCATION/etc/sched.conf (or /etc/one/sched.conf), var/sched.log "
        "and var/sched.pid. Credentials: $ONE_AUTH or ~/.one/one_auth.",
    )
    add = p.add_argument
    add("--help", action="help", help="show this help and exit")
    add("-c", "--config", metavar="PATH", help="sched.conf to read")
    add("-p", "--port", metavar="PORT", help="oned's port on localhost (ONED_PORT)")
    add("-e", "--endpoint", metavar="URL", help="oned's XML-RPC endpoint (ONE_XMLRPC)")
    add("-t", "--interval", metavar="S", help="seconds between full rounds (SCHED_INTERVAL)")
    add("-m", "--max-vm", metavar="N", help="pending VMs considered per round, 0 all (MAX_VM)")
    add("-d", "--max-dispatch", metavar="N", help="deployments per round (MAX_DISPATCH)")
    add(
        "-h",
        "--max-host",
        metavar="N",
        nargs="?",
        const=HELP,
        help="deployments per host per round (MAX_HOST); -h alone: this help",
    )
    add("--live-interval", metavar="S", help="seconds between checks for new pending VMs")
    return p


_FLAGS = {
    "port": "ONED_PORT",
    "endpoint": "ONE_XMLRPC",
    "interval": "SCHED_INTERVAL",
    "max_vm": "MAX_VM",
    "max_dispatch": "MAX_DISPATCH",
    "max_host": "MAX_HOST",
    "live_interval": "LIVE_INTERVAL",
}


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` with every flag given on the command line; ``ConfigError`` for a bad one."""
    changes: dict[str, Any] = {}
    for flag, knob in _FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        name, convert = KNOBS[knob]
        try:
            changes[name] = convert(value)
        except _Invalid as e:
            raise ConfigError(f'--{flag.replace("_", "-")} "{value}" {e}') from None
    return replace(settings, **changes)


def describe(settings: Settings) -> list[str]:
    """``NAME = value`` lines for the log header."""
    by_field = {name: knob for knob, (name, _) in KNOBS.items() if knob != "ONED_PORT"}
    shown = [f for f in fields(settings) if f.name in by_field and f.name != "endpoint"]
    values = {f.name: getattr(settings, f.name) for f in shown}
    return [f"{by_field[n]} = {0 if v is None else v}" for n, v in values.items()]  # MAX_VM 0


def configure(args: argparse.Namespace, text: str | None, path: str) -> Settings:
    """The settings from sched.conf ``text`` (None: there is no file) and the parsed flags."""
    settings = load_settings(text, path) if text is not None else Settings()
    return apply_flags(settings, args)


__all__ = [
    "HELP",
    "KNOBS",
    "Settings",
    "apply_flags",
    "configure",
    "describe",
    "load_settings",
    "parser",
]
