"""tm: the Transfer Manager (TM) — writes transfer scripts and sends them to TM drivers.

``TRANSFER <vid> <script file>`` (reference §1.6); the reply becomes PROLOG_* or EPILOG_* by
the VM's LCM state; replies for delete scripts find the VM in no waiting state and are dropped.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from twisted.python.failure import Failure

from oned import lifecycle as lc
from oned import transfer, vmvars
from oned.drivers import Drivers
from oned.lcm import LifeCycle, history_of
from oned.mad import DriverCancelled, Reply
from oned.records import Vm

TIMEOUT = 3600.0


class TransferManager:
    def __init__(
        self,
        lcm: LifeCycle,
        drivers: Drivers,
        reactor: Any,
        log: logging.Logger,
    ):
        self._lcm = lcm
        self._drivers = drivers
        self._reactor = reactor
        self._log = log
        self.front_end = socket.gethostname()

    def transfer(self, vm: Vm, effect: lc.TmTransfer) -> None:
        current = history_of(vm, lc.CURRENT)
        if current is None:
            return
        channel = self._drivers.tm.get(current.tm_mad)
        try:
            if channel is None:
                raise transfer.TransferError(self._drivers.problem("TM", current.tm_mad))
            path, files = self._files(vm, effect.script)
        except (transfer.TransferError, OSError) as exc:
            self._fail_later(vm, str(exc))
            return
        d = self._lcm.files.write(files)
        d.addCallback(lambda _: channel.request("TRANSFER", vm.id, path, timeout=TIMEOUT))
        d.addCallbacks(self._replied, self._errored, (vm.id,), None, (vm.id,))

    def cancel(self, vm: Vm) -> None:
        current = history_of(vm, lc.CURRENT)
        channel = self._drivers.tm.get(current.tm_mad) if current else None
        if channel is not None:
            channel.cancel(vm.id)

    def _files(self, vm: Vm, kind: str) -> tuple[str, list[tuple[str, str]]]:
        """The script's path and the files to write for it: (path, text) pairs."""
        folder = self._lcm.files.folder(vm.id)
        current, previous = history_of(vm, lc.CURRENT), history_of(vm, lc.PREVIOUS)
        assert current is not None
        places = transfer.Places(
            front_end=self.front_end,
            local_dir=folder,
            remote_dir=f"{current.vm_dir}/{vm.id}/images",
            host=current.host_name,
            previous=previous.host_name if previous else "",
        )
        lines = transfer.script(kind, vm.template, places)
        path = os.path.join(folder, f"transfer.{current.seq}.{kind}")
        files = [(path, "\n".join(lines) + "\n")]
        context = vm.template.get("CONTEXT")
        if kind == "prolog" and isinstance(context, dict):
            values = {k: vmvars.expand(v, vm.template, vm.id) for k, v in context.items()}
            files.append((os.path.join(folder, "context.sh"), transfer.context_sh(values)))
        return path, files

    def _fail_later(self, vm: Vm, message: str) -> None:
        event = lc.tm_event(vm.state, vm.lcm_state, False)
        if event is not None:
            self._reactor.callLater(0, self._lcm.driver_event, vm.id, event, message)
        else:
            self._log.error(f"VM {vm.id}: transfer not sent: {message}")

    def _replied(self, reply: Reply, vid: int) -> None:
        vm = self._lcm.cloud.pools.vms.get(vid)
        event = lc.tm_event(vm.state, vm.lcm_state, reply.ok) if vm is not None else None
        if event is None:
            if not reply.ok:
                self._log.error(f"VM {vid}: transfer failed: {reply.info}")
            self._log.debug(f"Wrong state in TM answer for VM {vid}")
            return
        self._lcm.driver_reply(vid, event, "" if reply.ok else reply.info or "transfer failed")

    def _errored(self, failure: Failure, vid: int) -> None:
        if failure.check(DriverCancelled):
            return
        self._replied(Reply("TRANSFER", str(vid), False, failure.getErrorMessage()), vid)
