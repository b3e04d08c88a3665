"""vmm: the Virtual Machine Manager (VMM) — VMM driver requests, their replies, and polling.

Requests follow reference §1.5; REBOOT and RESET (OpenNebula 3.x's, before 3.2 wrapped every
request in base64 XML) take SHUTDOWN's arguments, ``<vid> <host> <deploy_id> -``. The
deployment file oned writes for DEPLOY is the VM's full XML (``one.vm.info``'s document)
whatever the hypervisor: each VMM driver renders its own format, so adding a hypervisor never
changes oned.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorThreads
from twisted.python.failure import Failure

from oned import lifecycle as lc
from oned import log as onelog
from oned import views
from oned.drivers import Drivers
from oned.lcm import LifeCycle, history_of
from oned.mad import DriverCancelled, DriverTimeout, DriverUnavailable, Reply
from oned.poll_schedule import PollRounds
from oned.poll_writes import PollWrites
from oned.records import Vm
from oned.states import LcmState, VmState
from oned.template import TemplateSyntaxError, parse

TIMEOUTS = {"DEPLOY": 600.0, "SHUTDOWN": 600.0, "SAVE": 900.0, "RESTORE": 900.0,
            "MIGRATE": 1800.0, "CANCEL": 300.0, "POLL": 120.0, "REBOOT": 300.0,
            "RESET": 300.0}  # fmt: skip
_ERRORS = {"DEPLOY": "Error deploying virtual machine", "REBOOT": "Error rebooting VM",
           "RESET": "Error resetting VM"}  # fmt: skip
_IN_PLACE = ("REBOOT", "RESET")  # noted in oned.log too: nothing else shows them
_STARTS_RUNNING = ("DEPLOY", "RESTORE", "MIGRATE")  # a success leaves the VM RUNNING
_POLLED = (LcmState.RUNNING, LcmState.UNKNOWN)
_FIGURES = {"USEDMEMORY": "memory", "USEDCPU": "cpu", "NETRX": "net_rx", "NETTX": "net_tx"}
REFRESH = 10  # polling intervals after which an unchanged VM's LAST_POLL is written anyway


class VirtualMachineManager:
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
        self._loop = task.LoopingCall(self.poll_due)
        self._loop.clock = reactor
        self._rounds = PollRounds(lcm.cloud.config.vm_polling_interval)
        self._polling: dict[int, int] = {}  # vid -> POLLs in flight (never two from the loop)
        cloud = lcm.cloud
        self.writes = PollWrites(cloud.store, cloud.commits, cloud.pools.vms.get, log)
        if IReactorThreads.providedBy(reactor):  # a real one; tests' task.Clock: one by one
            lcm.group_replies(reactor.callLater)  # answers of a turn in one transaction

    # -- effects --------------------------------------------------------------------------------

    def action(self, vm: Vm, effect: lc.VmmAction) -> None:
        if effect.action in _IN_PLACE:
            self._log.info(f"VM {vm.id}: {effect.action} sent to {_host_name(vm)}")
        d = self._send(vm, effect)
        if d is not None:
            if effect.action == "POLL":
                self._track(vm.id, d)
            d.addCallbacks(self._replied, self._errored, (vm.id, effect.action), None,
                           (vm.id, effect.action))  # fmt: skip

    def probe(self, vm: Vm, host: str) -> defer.Deferred:
        """POLL the VM on its ``host`` side ("current"/"previous") and store the figures; fires
        with the answer's STATE, or None when there is no answer (no driver, FAILURE, timeout).
        Fails with DriverCancelled when oned cancelled it or is stopping."""
        d = self._send(vm, lc.VmmAction("POLL", host), fail_later=False)
        if d is None:
            return defer.succeed(None)
        self._track(vm.id, d)

        def answered(reply: Reply) -> str | None:
            now = self._lcm.cloud.pools.vms.get(vm.id)  # DONE meanwhile: nothing to save
            if not reply.ok or now is None:
                return None
            return self._store_answer(now, reply.info)

        def errored(failure: Failure) -> str | None:
            failure.trap(DriverTimeout, DriverUnavailable)
            return None

        return d.addCallbacks(answered, errored)

    def _send(self, vm: Vm, effect: lc.VmmAction, fail_later: bool = True) -> Any:
        """The request's Deferred; None when it cannot be sent (a FAILURE event follows)."""
        record = history_of(vm, effect.host)
        channel = self._drivers.vmm.get(record.vm_mad) if record else None
        if record is None or channel is None:
            problem = self._drivers.problem("VM", record.vm_mad) if record else ""
            if fail_later:
                self._later(vm.id, effect.action,
                            problem or f"VM {vm.id} has no host for {effect.action}")  # fmt: skip
            return None
        images = f"{record.vm_dir}/{vm.id}/images"
        args = self._arguments(vm, effect, record.host_name, images)
        if effect.action in ("DEPLOY", "MIGRATE"):
            # MIGRATE too: the driver reads the destination's TM_MAD from the newest file
            path = os.path.join(self._lcm.files.folder(vm.id), f"deployment.{vm.history[-1].seq}")
            text = views.vm_xml(vm, self._lcm.cloud.pools.uname(vm.uid))
            d = self._lcm.files.write([(path, text)])
        else:
            d = defer.succeed(None)
        timeout = TIMEOUTS[effect.action]
        return d.addCallback(
            lambda _: channel.request(effect.action, vm.id, *args, timeout=timeout)
        )

    def _arguments(self, vm: Vm, effect: lc.VmmAction, host: str, images: str) -> list[str]:
        deploy_id = vm.deploy_id or "-"
        checkpoint = f"{images}/checkpoint"
        if effect.action == "DEPLOY":
            return [host, f"{images}/deployment.{vm.history[-1].seq}", "-"]
        if effect.action in ("SAVE", "RESTORE"):
            return [host, deploy_id, checkpoint]
        if effect.action == "MIGRATE":
            return [host, deploy_id, vm.history[-1].host_name]
        return [host, deploy_id, "-"]

    def cancel(self, vm: Vm) -> None:
        record = history_of(vm, lc.CURRENT)
        channel = self._drivers.vmm.get(record.vm_mad) if record else None
        if channel is not None:
            channel.cancel(vm.id)

    def _later(self, vid: int, action: str, message: str) -> None:
        """A request that cannot even be sent fails like a driver FAILURE, after this event."""
        event = lc.vmm_event(action, False)
        if event is not None:
            self._reactor.callLater(0, self._lcm.driver_event, vid, event, message)

    # -- replies --------------------------------------------------------------------------------

    def _replied(self, reply: Reply, vid: int, action: str) -> None:
        if action == "POLL":
            self._polled(vid, reply)
            return
        if reply.ok and action == "DEPLOY":
            vm = self._lcm.cloud.pools.vms.get(vid)
            if vm is not None and vm.lcm_state == LcmState.BOOT:
                vm.deploy_id = reply.info.split(" ", 1)[0] if reply.info else ""
        if reply.ok and action in _STARTS_RUNNING:
            self._rounds.join(vid)  # its first POLL at the next tick, not the next round
        event = lc.vmm_event(action, reply.ok)
        message = "" if reply.ok else _message(action, reply.info)
        if action in _IN_PLACE:
            said = f"{action} SUCCESS" if reply.ok else f"{action} FAILURE: {message}"
            self._log.log(logging.INFO if reply.ok else logging.ERROR, f"VM {vid}: {said}")
        if event is not None:
            self._lcm.driver_reply(vid, event, message)

    def _errored(self, failure: Failure, vid: int, action: str) -> None:
        if failure.check(DriverCancelled):
            return
        if action == "POLL":
            self._log.error(f"Error monitoring VM {vid}: {failure.getErrorMessage()}")
            return
        event = lc.vmm_event(action, False)
        if action in _IN_PLACE:
            self._log.error(f"VM {vid}: {action} FAILURE: {failure.getErrorMessage()}")
        if event is not None:
            self._lcm.driver_event(vid, event, failure.getErrorMessage())

    # -- polling -------------------------------------------------------------------------------

    def start_polling(self, period: float = 1.0) -> None:
        """Every ``period`` seconds, POLL the VMs due in this tick's share of the round
        (``oned.poll_schedule``): each RUNNING or UNKNOWN VM about once per interval."""
        if self._lcm.cloud.config.vm_polling_interval > 0:
            self._rounds.period = period
            self._loop.start(period, now=False).addErrback(
                lambda f: self._log.error("VM polling error", exc_info=onelog.exc_info(f))
            )

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def poll_due(self) -> None:
        """POLL this tick's VMs, but never one whose POLL is still in flight (it keeps its
        place and is polled at the next round)."""
        vms = self._lcm.cloud.pools.vms
        for vid in self._rounds.take(self._reactor.seconds(), self._pollable):
            vm = vms.get(vid)
            if vm is not None and _polled(vm) and vid not in self._polling:
                self.action(vm, lc.VmmAction("POLL"))

    def _pollable(self) -> list[int]:
        return [vm.id for vm in self._lcm.cloud.pools.vms if _polled(vm)]

    def _track(self, vid: int, d: defer.Deferred) -> None:
        """A POLL of ``vid`` is in flight until ``d`` fires."""
        self._polling[vid] = self._polling.get(vid, 0) + 1
        d.addBoth(self._poll_ended, vid)

    def _poll_ended(self, result: Any, vid: int) -> Any:
        count = self._polling.pop(vid, 1) - 1
        if count > 0:
            self._polling[vid] = count
        return result

    def _polled(self, vid: int, reply: Reply) -> None:
        vm = self._lcm.cloud.pools.vms.get(vid)
        if vm is None:
            return
        if not reply.ok:
            self._log.error(f"Error monitoring VM {vid}: {reply.info}")
            return
        state = self._store_answer(vm, reply.info)
        event = lc.poll_event(state)
        unchanged = event == lc.Event.POLL_UNKNOWN or (
            event == lc.Event.POLL_RUNNING and vm.lcm_state == LcmState.RUNNING
        )
        if not unchanged and lc.allowed(vm.state, vm.lcm_state, event):
            self._lcm.driver_event(vid, event)

    def _store_answer(self, vm: Vm, info: str) -> str | None:
        """The answer's figures into the pool's VM, and to the store with the other answers of
        this turn (``oned.poll_writes``) when they changed something; returns STATE. LAST_POLL
        alone is written (and shown) again once it is REFRESH intervals old."""
        before = (vm.memory, vm.cpu, vm.net_rx, vm.net_tx)
        state, template = apply_poll(vm, info, self._log)
        now = self._lcm.cloud.now()
        stale = now - vm.last_poll >= REFRESH * self._lcm.cloud.config.vm_polling_interval
        if template or stale or before != (vm.memory, vm.cpu, vm.net_rx, vm.net_tx):
            vm.last_poll = now
            self._lcm.cloud.pools.vms.changed(vm.id)
            self.writes.mark(vm.id, template)
        return state


def _polled(vm: Vm) -> bool:
    return vm.state == VmState.ACTIVE and vm.lcm_state in _POLLED


def _host_name(vm: Vm) -> str:
    return vm.history[-1].host_name if vm.history else "no host"


def apply_poll(vm: Vm, info: str, log: logging.Logger) -> tuple[str | None, bool]:
    """Store POLL figures in the VM (unknown keys go to its template); returns STATE and
    whether the template changed."""
    try:
        figures = parse(info + "\n")
    except TemplateSyntaxError as exc:
        log.error(f"VM {vm.id}: unparsable POLL answer ({exc}): {info[:120]}")
        return None, False
    state, template = None, False
    for key, value in figures:
        if not isinstance(value, str):
            continue
        if key == "STATE":
            state = value
        elif key in _FIGURES:
            setattr(vm, _FIGURES[key], _integer(value))
        elif vm.template.get_str(key) != value:
            vm.template.set(key, value)
            template = True
    return state, template


def _integer(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        return 0


def _message(action: str, info: str) -> str:
    """NOTE: 1.4 omits the driver's message when it begins with '-'; "Error rebooting VM" and
    "Error resetting VM" are 3.x/4.x's words."""
    prefix = _ERRORS.get(action, f"Error in {action}")
    return prefix if not info or info.startswith("-") else f"{prefix}: {info}"
