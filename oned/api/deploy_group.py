"""one.vm.deploy through the group commit (``cloud.commits``, oned.commits; issue 18): the
deploys of one reactor turn share one transaction, each answered only after it.

The caller (``vm_actions.deploy``) has checked who asks, the VM's state and the host. ``queued``
reserves the VM's CPU and memory on the host at once, so that the next deploy of the same turn
is checked against the host as it will be (``check_host`` reads the share), and submits the
transition. At the commit the VM is stepped as it is then (an action or one.vm.update committed
meanwhile is neither lost nor overwritten) and written with a compare-and-swap on its state.
After the commit the reservation gives way to the lifecycle's own AddCapacity and the effects go
out as for any user action. A deploy the compare-and-swap refuses, or whose write failed, gives
its reservation back and answers an error: memory is then as the database.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet import defer

from oned import lifecycle as lc
from oned.api.cloud import Cloud
from oned.errors import InternalError, NoSuchObject
from oned.lcm import add_usage
from oned.records import Host, Vm

METHOD = "one.vm.deploy"


def queued(cloud: Cloud, lcm: Any, vm: Vm, host: Host, ref: lc.HostRef) -> defer.Deferred:
    """A Deferred of the VM's id, fired after the commit that moved it to the host; failed
    with the reason when the VM moved on before it or the database refused it."""
    deploy = _Deploy(cloud, lcm, vm, host, ref)
    add_usage(host, vm, 1)
    return cloud.commits.submit_prepared(deploy.prepare, deploy.then, deploy.undo)


class _Deploy:
    """One queued deploy: its write (run in the group's transaction) and what follows it."""

    def __init__(self, cloud: Cloud, lcm: Any, vm: Vm, host: Host, ref: lc.HostRef):
        self.cloud, self.lcm, self.vm, self.host, self.ref = cloud, lcm, vm, host, ref
        self.pending: Any = None  # oned.transition_batch.Pending, once stepped
        self.saved = False

    def prepare(self) -> Any:
        """At the flush: the write that steps the VM as it is now, a compare-and-swap on its
        state; None when the VM left the state the deploy was checked in (``then`` says)."""
        self.pending, self.saved = None, False
        now = self.cloud.pools.vms.get(self.vm.id)
        if now is None or (now.state, now.lcm_state) != (self.vm.state, self.vm.lcm_state):
            return None
        vm = without_sched_message(now)
        outcome = lc.step(vm, lc.Event.DEPLOY, now=self.cloud.now(), host=self.ref)
        if isinstance(outcome, lc.Ignored):
            return None
        self.pending = self.lcm.pending(vm, outcome, lc.Event.DEPLOY)
        store: Any = self.cloud.store
        return store.vm_update(*self.pending.row(), result=self._result, known=now.history)

    def _result(self, saved: bool) -> None:
        self.saved = saved

    def then(self) -> int:
        """After the commit: the lifecycle's after-commit part, or the reason nothing moved."""
        add_usage(self.host, self.vm, -1)  # AddCapacity (lcm.committed) takes its place
        vid = self.vm.id
        if not self.saved:
            now = self.cloud.pools.vms.get(vid)
            if now is None:
                raise NoSuchObject(f"[{METHOD}] Error getting VM [{vid}] (DONE or never created).")
            lc.check(now.state, now.lcm_state, lc.Event.DEPLOY, vid, METHOD)
            raise InternalError(f"[{METHOD}] VM {vid} changed under this action; try again")
        self.lcm.files.log(vid, "DiM", f"{lc.Event.DEPLOY.value} requested")
        self.lcm.committed(self.pending)
        return vid

    def undo(self, _: BaseException) -> None:
        add_usage(self.host, self.vm, -1)


def without_sched_message(vm: Vm) -> Vm:
    """``vm`` itself, or a copy without SCHED_MESSAGE (the pool's VM is not touched): the
    scheduler's note on why the VM waited goes with its deploy, in the same commit."""
    if "SCHED_MESSAGE" not in vm.user_template:
        return vm
    user_template = vm.user_template.copy()
    user_template.remove("SCHED_MESSAGE")
    return replace(vm, user_template=user_template)
