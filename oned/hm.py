"""hm: the Hook Manager (HKM) — runs VM_HOOK and HOST_HOOK commands through the HM driver.

``EXECUTE <id> <hook name> LOCAL|<host> <command> <args|->`` (reference §1.7), every argument
one word of ``drivers.protocol.encode_words``: the ARGUMENTS are split into words first, and the
variables expanded inside each, so a value (a VM name like ``a; rm -rf /``) is one argument. A
hook's outcome is logged; a failing or missing hook never changes what triggered it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from functools import partial

from twisted.python.failure import Failure

from oned import vmvars
from oned.config import HookConfig
from oned.mad import DriverChannel, Reply
from oned.records import Host, Vm

_VAR = re.compile(r"\$([A-Za-z0-9_]+)")
_HOOK_TIMEOUT = 300.0


def host_words(text: str, host: Host) -> list[str]:
    """The words of a HOST_HOOK's arguments (split first, then expanded inside each word):
    ``$HID`` and ``$NAME`` of the host, any other ``$ATTR`` from its monitoring template."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).upper()
        if name == "HID":
            return str(host.id)
        if name in ("NAME", "HOSTNAME") and name not in host.template:
            return host.name
        return host.template.get_str(name, "") or ""

    return vmvars.split_expanding(text, _VAR, value)


class HookRunner:
    def __init__(
        self,
        channel: DriverChannel | None,
        host_hooks: tuple[HookConfig, ...],
        hooks_dir: str,
        log: logging.Logger,
        vm_hooks: tuple[HookConfig, ...] = (),
    ):
        self._channel = channel
        self._host_hooks = host_hooks
        self._vm_hooks = vm_hooks
        self._hooks_dir = hooks_dir
        self._log = log
        self._serial = 0

    def host_event(self, host: Host, on: str) -> None:
        for hook in self._host_hooks:
            if hook.on == on:
                where = host.name if hook.remote else "LOCAL"
                self.execute(host.id, hook, where, partial(host_words, host=host))

    def vm_event(self, vm: Vm, on: str) -> None:
        """VM_HOOKs ``on`` this; ``remote = yes`` ones run on the VM's current host."""
        for hook in self._vm_hooks:
            if hook.on != on:
                continue
            host = vm.history[-1].host_name if vm.history else ""
            if hook.remote and not host:
                self._log.error(f"Hook {hook.name} for VM {vm.id} not run: the VM has no host")
                continue
            where = host if hook.remote else "LOCAL"
            self.execute(
                vm.id, hook, where, lambda text: vmvars.expand_words(text, vm.template, vm.id)
            )

    def execute(
        self, oid: int, hook: HookConfig, where: str, expand: Callable[[str], list[str]]
    ) -> None:
        """EXECUTE ``hook`` for object ``oid``; ``expand`` turns its ARGUMENTS into words, each
        sent as one encoded word of the request, so the driver runs exactly these arguments."""
        if self._channel is None:
            self._log.error(f"Hook {hook.name} not run: no HM_MAD driver is running")
            return
        try:
            words = expand(hook.arguments)
        except ValueError as err:
            self._log.error(f"Hook {hook.name} for {oid} not run: bad arguments: {err}")
            return
        command = hook.command
        if not os.path.isabs(command) and where == "LOCAL":
            command = os.path.join(self._hooks_dir, command)
        # NOTE: OpenNebula sends a literal "-" for empty arguments and passes it on.
        self._serial += 1
        d = self._channel.request(
            "EXECUTE", oid, hook.name, where, command, *(words or ["-"]), timeout=_HOOK_TIMEOUT
        )
        d.addCallbacks(self._done, self._failed, (hook.name, oid), None, (hook.name, oid))

    def _done(self, reply: Reply, name: str, oid: int) -> None:
        if reply.ok:
            self._log.info(f"Hook {name} for {oid} executed: {reply.info}")
        else:
            self._log.error(f"Hook {name} for {oid} failed: {reply.info}")

    def _failed(self, failure: Failure, name: str, oid: int) -> None:
        self._log.error(f"Hook {name} for {oid} not executed: {failure.getErrorMessage()}")
