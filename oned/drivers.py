"""Every driver named in oned.conf, started as a child process with an explicit environment.

A driver whose executable is missing or not executable is reported at start (naming the
attribute, its oned.conf line and the path looked for) and not started; the hosts or VMs that
use it fail with that reason instead of waiting. The image driver (IMAGE_MAD) is started
with ``--repository <dir>`` before its oned.conf arguments: the one folder it writes into.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from oned import log as onelog
from oned.config import Config, MadConfig
from oned.filemodes import create_file
from oned.locations import Locations
from oned.mad import STOP_GRACE, DriverChannel, find_executable

_KIND_ATTR = {
    "IM": "IM_MAD", "VM": "VM_MAD", "TM": "TM_MAD", "HM": "HM_MAD", "IMAGE": "IMAGE_MAD"
}  # fmt: skip
_PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "PYTHONPATH", "SSH_AUTH_SOCK")


@dataclass
class Drivers:
    """The running driver channels by kind and name, and the problems found starting them."""

    im: dict[str, DriverChannel] = field(default_factory=dict)
    vmm: dict[str, DriverChannel] = field(default_factory=dict)
    tm: dict[str, DriverChannel] = field(default_factory=dict)
    hm: DriverChannel | None = None
    image: DriverChannel | None = None
    problems: dict[tuple[str, str], str] = field(default_factory=dict)
    starts: list[defer.Deferred] = field(default_factory=list)

    def problem(self, kind: str, name: str) -> str:
        """Why the driver ``name`` of ``kind`` is not available (for host/VM error messages)."""
        return self.problems.get((kind, name), f"{_KIND_ATTR[kind]} {name} is not defined")

    def channels(self) -> list[DriverChannel]:
        found = [*self.im.values(), *self.vmm.values(), *self.tm.values()]
        return found + [c for c in (self.hm, self.image) if c is not None]

    def started(self) -> defer.Deferred:
        """Fires once every driver answered INIT or failed to start."""
        return defer.DeferredList(self.starts, consumeErrors=True)

    def stop_all(self, grace: float = STOP_GRACE) -> defer.Deferred:
        """Stop every driver, letting what they run finish within ``grace`` seconds."""
        stops = [c.stop(grace) for c in self.channels()]
        return defer.DeferredList(stops, consumeErrors=True)


def driver_env(config: Config, locs: Locations, name: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.update(
        ONE_LOCATION=locs.root or "",
        ONE_DRIVER_NAME=name,
        ONE_SCRIPTS_REMOTE_DIR=config.scripts_remote_dir,
    )
    return env


LOG_MODULES = {"IM": "InM", "VM": "VMM", "TM": "TM", "HM": "HKM", "IMAGE": "ImM"}


def configured_mads(config: Config) -> list[MadConfig]:
    """Every IM, VM, TM and HM driver of oned.conf, and the image driver."""
    mads = [*config.im_mads, *config.vm_mads, *config.tm_mads]
    return mads + ([config.hm_mad] if config.hm_mad else []) + [config.image_mad]


def stderr_log(locs: Locations, name: str) -> str:
    """``<log>/<name>.log``: where the driver ``name`` writes its stderr."""
    return os.path.join(locs.log, f"{name}.log")


def start_drivers(config: Config, locs: Locations, reactor: Any, repository: str) -> Drivers:
    """Start every IM, VM, TM and HM driver of ``config`` and the image driver (which copies
    into ``repository``); never raises for a bad driver.

    Each driver logs under its manager's module of oned.log (InM, VMM, TM, HKM, ImM)."""
    drivers = Drivers()
    targets = {"IM": drivers.im, "VM": drivers.vmm, "TM": drivers.tm}
    for mad in configured_mads(config):
        log = onelog.module(LOG_MODULES[mad.kind])
        kind = f" ({mad.type.upper()})" if mad.type else ""
        log.info(f"Loading driver: {mad.name}{kind}")  # NOTE: as 1.4 logs it (the seed)
        # Drivers split each argument as a shell would (drivers.serve.parse_driver_args).
        first = ["--repository", shlex.quote(repository)] if mad.kind == "IMAGE" else []
        channel = _channel(mad, config, locs, reactor, log, drivers.problems, first)
        if channel is None:
            continue
        if mad.kind == "HM":
            drivers.hm = channel
        elif mad.kind == "IMAGE":
            drivers.image = channel
        else:
            targets[mad.kind][mad.name] = channel
        start = channel.start().addErrback(
            lambda f, n=mad.name, lg=log: lg.error(f"{n}: did not start: {f.getErrorMessage()}")
        )
        drivers.starts.append(start)
    return drivers


def _channel(
    mad: MadConfig,
    config: Config,
    locs: Locations,
    reactor: Any,
    log: logging.Logger,
    problems: dict[tuple[str, str], str],
    first: list[str],
) -> DriverChannel | None:
    attr = f"{_KIND_ATTR[mad.kind]} {mad.name} (oned.conf line {mad.line})"
    path = find_executable(mad.executable, locs.mads)
    problem = None
    if path is None:
        problem = f"{attr}: executable {mad.executable} not found in {locs.mads} or PATH"
    elif not os.access(path, os.X_OK):
        problem = f"{attr}: {path} is not executable"
    if problem is not None:
        log.error(problem)
        problems[(mad.kind, mad.name)] = problem
        return None
    # NOTE: a 1.4 VM_MAD's `default` file (vmm_kvm/vmm_kvm.conf) reaches its driver as one more
    # argument, read as the defaults of its options (drivers/driver_conf.py).
    words = [mad.arguments] if mad.arguments else []
    if mad.kind == "VM" and mad.default and mad.default.endswith(".conf"):
        words.append(shlex.quote(mad.default))
    argv = [path, *first, *words]
    stderr_path = stderr_log(locs, mad.name)
    try:
        create_file(stderr_path)  # 0640 less the umask; the channel only appends to it
    except OSError as exc:
        log.error(f"{attr}: cannot create {stderr_path}: {exc.strerror}")
    return DriverChannel(
        mad.name,
        argv,
        driver_env(config, locs, mad.name),
        reactor,
        log,
        stderr_path=stderr_path,
        cwd=locs.var,
    )
