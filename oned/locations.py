"""Where an install keeps its files: self-contained under $ONE_LOCATION, or system-wide.

Mirrors OpenNebula 1.4's layout (reference §2 and §12.4). Pure: computes paths, touches nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Locations:
    root: str | None  # $ONE_LOCATION, or None for a system-wide install
    etc: str
    var: str  # state: database, VM directories
    log: str  # oned.log, sched.log
    run: str  # pid files
    lock: str  # the `one` script's lock file
    mads: str  # driver executables
    share: str  # probes, hooks, scripts

    @property
    def oned_conf(self) -> str:
        return os.path.join(self.etc, "oned.conf")

    @property
    def oned_log(self) -> str:
        return os.path.join(self.log, "oned.log")

    @property
    def oned_pid(self) -> str:
        return os.path.join(self.run, "oned.pid")

    @property
    def sched_pid(self) -> str:
        return os.path.join(self.run, "sched.pid")

    @property
    def sched_log(self) -> str:
        return os.path.join(self.log, "sched.log")

    @property
    def db_file(self) -> str:
        return os.path.join(self.var, "one.db")

    @property
    def hooks(self) -> str:
        return os.path.join(self.share, "hooks")


def locations(env: Mapping[str, str] | None = None) -> Locations:
    """The layout selected by ``ONE_LOCATION`` in ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    root = env.get("ONE_LOCATION", "").rstrip("/") or None
    if root:
        var = os.path.join(root, "var")
        return Locations(
            root=root,
            etc=os.path.join(root, "etc"),
            var=var,
            log=var,
            run=var,
            lock=os.path.join(var, ".lock"),
            mads=os.path.join(root, "lib", "mads"),
            share=os.path.join(root, "share"),
        )
    return Locations(
        root=None,
        etc="/etc/one",
        var="/var/lib/one",
        log="/var/log/one",
        run="/var/run/one",
        lock="/var/lock/one/one",
        mads="/usr/lib/one/mads",
        share="/usr/share/one",
    )


def default_auth_file(env: Mapping[str, str] | None = None) -> str:
    """The credentials file: ``$ONE_AUTH`` (a path) or ``~/.one/one_auth``."""
    env = os.environ if env is None else env
    return env.get("ONE_AUTH") or os.path.join(os.path.expanduser("~"), ".one", "one_auth")


def default_endpoint(env: Mapping[str, str] | None = None) -> str:
    """The XML-RPC endpoint: ``$ONE_XMLRPC`` or ``http://localhost:2633/RPC2``."""
    env = os.environ if env is None else env
    return env.get("ONE_XMLRPC") or "http://localhost:2633/RPC2"
