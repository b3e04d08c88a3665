"""lcm: the Life-Cycle Manager (LCM) and Dispatch Manager (DiM) — the shell around
``oned.lifecycle``.

For a user action or a driver outcome it loads the VM, asks ``lifecycle.step`` what happens,
commits the new state with a compare-and-swap on the old one (history records and released
leases in the same transaction), changes the pools (a VM that ends gives its images back),
then executes the effects in order: host capacity, VMM and TM requests (``oned.vmm``,
``oned.tm``), hooks. A driver outcome that no longer fits the VM's state is logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from oned import lifecycle as lc
from oned import reconcile
from oned.api.cloud import Cloud
from oned.api.vnets import leases_of
from oned.errors import ActionNotAllowed, InternalError
from oned.mad import DriverCancelled
from oned.records import History, Host, Vm
from oned.states import ImageState, LcmState, VmState
from oned.store.errors import StoreError
from oned.transition_batch import Pending, TransitionBatch
from oned.vmfiles import VmFiles

_MODULE_OF = {"DEPLOY": "VMM", "SHUTDOWN": "VMM", "POLL": "VMM", "TRANSFER": "TM"}
RECONCILE_BATCH = 500  # VMs reconciled per reactor turn at start


RETRY = 2.0  # seconds before a driver outcome the database refused is tried again


class LifeCycle:
    """Applies events to VMs. ``effects`` executes the after-commit effects (VMM, TM, hooks)."""

    def __init__(
        self,
        cloud: Cloud,
        files: VmFiles,
        log: logging.Logger,
        host_changed: Callable[[Host], None],
    ):
        self.cloud = cloud
        self.files = files
        self._log = log
        self._host_changed = host_changed
        self.effects: Callable[[Vm, lc.Effect], None] = lambda vm, effect: None
        # POLL of a VM on a host side -> its STATE (None: no answer); VirtualMachineManager.probe
        self.probe: Callable[[Vm, str], defer.Deferred] = lambda vm, host: defer.succeed(None)
        # reactor.callLater: a driver outcome the database could not take is tried again.
        self.call_later: Callable[..., Any] | None = None
        self.batch: TransitionBatch | None = None  # driver answers of one reactor turn

    def user_action(self, vm: Vm, event: lc.Event, host: lc.HostRef | None = None) -> Vm:
        """Run a user action now; ActionNotAllowed (0x800) when the state refuses it."""
        outcome = lc.step(vm, event, now=self.cloud.now(), host=host)
        if isinstance(outcome, lc.Ignored):  # step raises for user actions; kept for safety
            raise InternalError(f"VM {vm.id}: {outcome.reason}")
        self.files.log(vm.id, "DiM", f"{event.value} requested")
        return self._commit(vm, outcome, event)

    def driver_event(self, vid: int, event: lc.Event, message: str = "") -> Vm | None:
        """A driver's outcome for a VM; dropped (and logged) when the VM no longer waits for it."""
        stepped = self._stepped(vid, event, message)
        if stepped is None:
            return None
        try:
            return self._commit(*stepped, event)
        except StoreError as exc:
            self._not_saved(vid, event, exc)
            return None

    def driver_reply(self, vid: int, event: lc.Event, message: str = "") -> None:
        """A driver's answer: as ``driver_event``, but committed together with the other
        answers of this reactor turn once ``group_replies`` was called."""
        if self.batch is None:
            self.driver_event(vid, event, message)
            return
        stepped = self._stepped(vid, event, message)
        if stepped is not None:
            self.batch.add(self.pending(*stepped, event))

    def _stepped(self, vid: int, event: lc.Event, message: str) -> tuple[Vm, lc.Outcome] | None:
        """The pool's VM and what ``event`` does to it; None (logged) when it does nothing."""
        vm = self.cloud.pools.vms.get(vid)
        if vm is None:
            self._log.warning(f"Ignored {event.value} for VM {vid}: not an active VM")
            return None
        if message:
            self._record_error(vm, event, message)
        outcome = lc.step(vm, event, now=self.cloud.now())
        if isinstance(outcome, lc.Ignored):
            self._log.warning(f"Ignored: {outcome.reason}")
            self.files.log(vid, "LCM", f"Ignored: {outcome.reason}", level="W")
            return None
        return vm, outcome

    def group_replies(self, call_later: Callable[..., Any]) -> None:
        """From now on driver answers are committed once per reactor turn, all in one
        transaction (``oned.transition_batch``); ``call_later`` is ``reactor.callLater``."""
        self.call_later = self.call_later or call_later
        self.batch = TransitionBatch(
            self.cloud.store,
            call_later,
            self.cloud.pools.vms.get,
            self.committed,
            lambda p: self.driver_event(p.vm.id, p.event),
            lambda p, exc: self._not_saved(p.vm.id, p.event, exc),
        )

    def _not_saved(self, vid: int, event: lc.Event, exc: StoreError) -> None:
        """The database refused the outcome (it is restarting, say): nothing changed, so the
        same outcome is tried again until it is saved or the VM no longer waits for it."""
        if self.call_later is None:
            raise exc
        self._log.error(f"VM {vid}: {event.value} not saved ({exc.message}); again in {RETRY:g} s")
        self.call_later(RETRY, self.driver_event, vid, event)

    def recover(self, vm: Vm, operation: str) -> Vm:
        """one.vm.recover: end the transient state ``vm`` is in as the operator says: as if
        the request in flight had succeeded or failed, or by sending it again (retry); or
        delete it (in any state). ActionNotAllowed (0x800) when the VM waits for no driver."""
        if operation == "delete":  # as modern OpenNebula: in any state
            return self.user_action(vm, lc.Event.DELETE)
        effect = reconcile.retry_effect(vm)
        if effect is None:
            name = lc.state_name(vm.state, vm.lcm_state)
            raise ActionNotAllowed(
                f"[one.vm.recover] VM {vm.id} is {name}: recover {operation} is allowed in a "
                "transient state only (ACTIVE but RUNNING or UNKNOWN)"
            )
        # The request in flight, if any, would hold its place in the channel (a retry would
        # queue behind it) or answer a state that moved on: cancel it first.
        self.effects(vm, lc.DriverCancel("TM" if isinstance(effect, lc.TmTransfer) else "VMM"))
        if operation == "retry":
            what = reconcile.Resend(effect).describe()
            self.files.log(vm.id, "LCM", f"recover retry requested: {what}")
            self.effects(vm, effect)
            return vm
        event = reconcile.recover_event(vm, operation == "success")
        assert event is not None
        self.files.log(vm.id, "LCM", f"recover {operation} requested: {event.value}")
        return self.driver_event(vm.id, event) or vm

    def reconcile(self, vm: Vm) -> None:
        """At start: re-send the request a transient ``vm`` waited for, or POLL the hypervisor
        and follow its answer (``oned.reconcile``); the decision goes to oned.log and vm.log."""
        decision = reconcile.decide(vm)
        if decision is None:
            return
        self._reconciling(vm, decision.describe())
        if isinstance(decision, reconcile.Resend):
            self.effects(vm, decision.effect)
            return
        pair = (vm.state, vm.lcm_state)
        d = self.probe(vm, decision.host)
        d.addCallback(self._probed, vm.id, pair, decision)
        d.addErrback(lambda f: f.trap(DriverCancelled))
        d.addErrback(lambda f: self._log.error(f"VM {vm.id}: reconciling: {f.getErrorMessage()}"))

    def _probed(self, state: str | None, vid: int, pair: tuple[int, int],
                decision: reconcile.Poll) -> None:  # fmt: skip
        vm = self.cloud.pools.vms.get(vid)
        if vm is None or (vm.state, vm.lcm_state) != pair:
            return  # it moved on meanwhile (an operator's action)
        event = decision.event(state)
        said = f"STATE={state}" if state else "no answer"
        self._reconciling(vm, f"POLL says {said}: {event.value}")
        self.driver_event(vid, event)

    def _reconciling(self, vm: Vm, what: str) -> None:
        message = f"reconciling after restart: {what}"
        self._log.info(f"VM {vm.id} ({lc.state_name(vm.state, vm.lcm_state)}): {message}")
        self.files.log(vm.id, "LCM", message)

    def _record_error(self, vm: Vm, event: lc.Event, message: str) -> None:
        self.files.log(vm.id, "LCM", f"{event.value}: {message}", level="E")
        if event.value.endswith("FAILURE"):
            vm.template.set("ERROR", {"MESSAGE": message, "TIMESTAMP": str(self.cloud.now())})

    def _commit(self, vm: Vm, outcome: lc.Outcome, event: lc.Event) -> Vm:
        pending = self.pending(vm, outcome, event)
        new, expect, history, released = pending.row()
        store: Any = self.cloud.store
        if not store.update_vm(new, expect=expect, history=history, released=released):
            raise InternalError(f"VM {vm.id} changed under this action; try again")
        self.committed(pending)
        return pending.new

    def pending(self, vm: Vm, outcome: lc.Outcome, event: lc.Event) -> Pending:
        """The outcome applied to a copy of ``vm``, with what its transaction writes."""
        new = lc.applied(vm, outcome)
        changed = [h for h in new.history if not any(h is old for old in vm.history)]
        released = leases_of(self.cloud.pools, new) if _releases(outcome) else []
        return Pending(vm, new, outcome, event, changed, released)

    def committed(self, pending: Pending) -> None:
        """After the commit: the pools, vm.log, capacity, then the effects in order."""
        vm, new, outcome = pending.vm, pending.new, pending.outcome
        if pending.released:
            self.cloud.pools.free_leases(pending.released)
        self._keep(new)
        if _releases(outcome):
            self._release_images(new)
        # The table's own 1.4 lines say "New VM state is PROLOG"; one line per change is
        # enough, and ACTIVE/PROLOG names the pair. A row that keeps the pair (restart in
        # BOOT, reboot) logs its own message only.
        lines = [line for line in outcome.log if not line.startswith("New VM state is ")]
        if (new.state, new.lcm_state) != (vm.state, vm.lcm_state):
            lines.append(f"New VM state is {lc.state_name(new.state, new.lcm_state)}")
        if lines:
            self.files.log(vm.id, "LCM", *lines)
        for effect in outcome.effects:
            if effect.in_transaction:
                self._capacity(new, effect)
        for effect in outcome.effects:
            if not effect.in_transaction:
                self.effects(new, effect)

    def _release_images(self, vm: Vm) -> None:
        """2.0's ``release_disk_images``: the VM (DONE or FAILED) no longer uses its images; a
        disk it was saving into an image is checked there (``images.saved``): READY, or ERROR
        when the VM ended without the epilog that moves it."""
        pools = self.cloud.pools
        pools.release_images(vm)
        images = self.cloud.images
        for iid in saved_images(vm):
            img = pools.images.get(iid)
            if images is not None and img is not None and img.state == ImageState.LOCKED:
                images.saved(iid)

    def _keep(self, vm: Vm) -> None:
        """Active VMs stay in memory; DONE ones live in the store only."""
        if vm.state == VmState.DONE:
            self.cloud.pools.vms.remove(vm.id)
        else:
            self.cloud.pools.vms.put(vm)

    def _capacity(self, vm: Vm, effect: lc.Effect) -> None:
        if isinstance(effect, lc.AddCapacity | lc.DelCapacity):
            record = history_of(vm, effect.host)
            host = self.cloud.pools.hosts.get(record.hid) if record else None
            if host is not None:
                sign = 1 if isinstance(effect, lc.AddCapacity) else -1
                add_usage(host, vm, sign)
                self._host_changed(host)


def transient_vms(pools: Any) -> dict[int, tuple[int, int]]:
    """The VMs reconciliation will take care of, with their (state, lcm_state): taken when the
    pools are loaded, before any request can move a VM into a transient state of its own."""
    return {vm.id: (vm.state, vm.lcm_state) for vm in pools.vms if reconcile.decide(vm)}


def reconcile_at_start(
    lcm: LifeCycle, reactor: Any, found: dict[int, tuple[int, int]], batch: int = RECONCILE_BATCH
) -> defer.Deferred:
    """Reconcile the VMs ``found`` in a transient state at load (``transient_vms``) that are
    still in it, ``batch`` per reactor turn so that 10,000 such VMs neither block the reactor
    nor go to the drivers in one go (the channels bound what is in flight). Fires with the
    number of VMs reconciled."""
    vids = list(found)
    if vids:
        lcm._log.info(f"Reconciling {len(vids)} VMs found in a transient state")
    done: defer.Deferred = defer.Deferred()
    count = 0

    def run(start: int) -> None:
        nonlocal count
        for vid in vids[start : start + batch]:
            vm = lcm.cloud.pools.vms.get(vid)
            if vm is None or (vm.state, vm.lcm_state) != found[vid]:
                continue  # an operator moved it on meanwhile
            count += 1
            try:
                lcm.reconcile(vm)
            except Exception:  # one VM's trouble must not stop the others'
                lcm._log.exception(f"VM {vid}: reconciling failed")
        if start + batch < len(vids):
            reactor.callLater(0, run, start + batch)
        else:
            done.callback(count)

    run(0)
    return done


def _releases(outcome: lc.Outcome) -> bool:
    return any(isinstance(e, lc.ReleaseLeases) for e in outcome.effects)


def saved_images(vm: Vm) -> list[int]:
    """The images the DISKs of ``vm`` are saved into (SAVE_AS, set by one.vm.savedisk)."""
    return [
        int(disk["SAVE_AS"])
        for disk in vm.template.get_all("DISK")
        if isinstance(disk, dict) and disk.get("SAVE_AS", "").isdigit()
    ]


def history_of(vm: Vm, side: str) -> History | None:
    """The record of the current host ("current"/"last") or of the previous one."""
    index = -1 if side in (lc.CURRENT, lc.LAST) else -2
    return vm.history[index] if len(vm.history) >= -index else None


def demand(vm: Vm) -> tuple[int, int]:
    """(CPU x 100, MEMORY in KB) a VM takes on its host (reference §1.4)."""
    try:
        cpu = int(float(vm.template.get_str("CPU", "0") or 0) * 100)
        memory = int(float(vm.template.get_str("MEMORY", "0") or 0)) * 1024
    except ValueError:
        return 0, 0
    return cpu, memory


def add_usage(host: Host, vm: Vm, sign: int) -> None:
    cpu, memory = demand(vm)
    share = host.share
    share.cpu_usage += sign * cpu
    share.mem_usage += sign * memory
    share.running_vms += sign


def recount_usage(pools: Any) -> None:
    """Derive every host's allocated CPU, memory and running VMs from the active VMs.

    Done at start: capacity is a function of the VMs, so it can never drift after a crash.
    """
    for host in pools.hosts:
        host.share.cpu_usage = host.share.mem_usage = host.share.running_vms = 0
    for vm in pools.vms:
        if vm.state != VmState.ACTIVE:
            continue
        sides = [lc.CURRENT]
        if vm.lcm_state in (LcmState.MIGRATE, LcmState.SAVE_MIGRATE):
            sides.append(lc.PREVIOUS)
        for side in sides:
            record = history_of(vm, side)
            host = pools.hosts.get(record.hid) if record else None
            if host is not None:
                add_usage(host, vm, 1)


def route_effects(vmm: Any, tm: Any, hooks: Any) -> Callable[[Vm, lc.Effect], None]:
    """The after-commit effects, each to the manager that carries it out."""

    def execute(vm: Vm, effect: lc.Effect) -> None:
        if isinstance(effect, lc.VmmAction):
            vmm.action(vm, effect)
        elif isinstance(effect, lc.TmTransfer):
            tm.transfer(vm, effect)
        elif isinstance(effect, lc.DriverCancel):
            (vmm if effect.driver == "VMM" else tm).cancel(vm)
        elif isinstance(effect, lc.RunHooks) and hooks is not None:
            hooks.vm_event(vm, effect.on)

    return execute
