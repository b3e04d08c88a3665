"""The scheduler's loop: a cheap live check every second, a round when something is new or due.

Every ``live_interval`` the loop asks oned for the PENDING VMs (one call) and compares their
ids with the last check. A VM that was not pending before (just allocated, released or
resumed) starts a round at once; otherwise a round runs every ``sched_interval``. A round
reads the hosts, places what it can (``placement.place``), deploys concurrently and writes the
reason of every VM that still waits. When oned cannot be reached the loop backs off
exponentially (1 s doubling up to 30 s) and carries on when oned is back.

Time comes in through ``clock`` (monotonic) and ``wall`` (epoch) so tests can drive it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from oned.client import OneClientError
from scheduler import ec2
from scheduler.config import Settings
from scheduler.dispatch import Dispatcher, Outcome
from scheduler.placement import Plan, place
from scheduler.pools import (
    Client,
    fetch_active,
    fetch_hosts,
    fetch_pending_xml,
    parse_pending,
    pending_ids,
)

MAX_BACKOFF = 30.0
SHOWN_IDS = 20  # ids listed in one log line


class Stop(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def _log(name: str) -> logging.Logger:
    return logging.getLogger("one").getChild(name)


class Scheduler:
    """The round loop of mm_sched over one client connection (reads) and a dispatcher (writes)."""

    def __init__(
        self,
        settings: Settings,
        client: Client,
        dispatcher: Dispatcher,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self.settings, self.client, self.dispatcher = settings, client, dispatcher
        self.clock, self.wall = clock, wall
        self.seen: frozenset[int] = frozenset()  # pending ids at the last check
        self.next_round = 0.0  # clock time when a full round is due
        self.messages: dict[int, str] = {}  # SCHED_MESSAGE written, by VM id
        self.explaining = True  # oned accepts one.vm.update
        self.backoff = 0.0
        self.down_since: float | None = None
        self.log, self.vm_log = _log("SCHED"), _log("VM")

    def run(self, stop: Stop) -> None:
        """Check and schedule until ``stop`` is set; a round in progress is finished first."""
        while not stop.is_set():
            stop.wait(self.step())

    def step(self) -> float:
        """One live check, and a round when due; the seconds to wait before the next step."""
        started = self.clock()
        try:
            self.check()
        except OneClientError as e:
            return self._unreachable(e)
        except Exception:
            self.log.exception("Unexpected error in a scheduling round")
        due_in = self.next_round - self.clock()
        return max(0.0, min(started + self.settings.live_interval - self.clock(), due_in))

    def check(self) -> Plan | None:
        """Read the pending VMs; run a round if one is new or the interval is over."""
        xml = fetch_pending_xml(self.client)
        self._reachable()
        ids = pending_ids(xml)
        new, due = ids - self.seen, self.clock() >= self.next_round
        self.seen = ids
        if not (new or due):
            return None
        self.next_round = self.clock() + self.settings.sched_interval
        if not ids:
            return None
        if new:
            self.vm_log.debug(f"New pending virtual machines: {_ids(new)}")
        plan = self.round(xml, ids)
        if plan.placements and (plan.deferred or plan.reasons):
            # This round changed the hosts and VMs still wait (MAX_DISPATCH, MAX_HOST...): go on
            # at the next live check, not a whole SCHED_INTERVAL later as OpenNebula would.
            self.next_round = self.clock() + self.settings.live_interval
        return plan

    def round(self, xml: str, ids: frozenset[int]) -> Plan:
        """Place and deploy the first MAX_VM pending VMs in ``xml``; explain those that wait."""
        started = self.clock()
        vms = parse_pending(xml, self.settings.max_vm)
        hosts = fetch_hosts(self.client)
        active = None
        if any(vm.ec2 for vm in vms) and any(ec2.is_ec2(h.attrs) for h in hosts):
            active = ec2.active_instances(fetch_active(self.client))  # hybrid VMs only
        plan = place(vms, hosts, self.settings.limits, self.wall(), active)
        outcomes = self.dispatcher.deploy(plan.placements)
        reasons = {**plan.reasons, **self._deploy_failures(plan, outcomes)}
        self.explain(reasons, ids)
        self.log.info(
            f"Round: {len(ids)} pending, {len(hosts)} hosts ({len(plan.skipped_hosts)} skipped):"
            f" {sum(o.ok for o in outcomes)} dispatched, {len(reasons)} waiting,"
            f" {len(plan.deferred)} deferred to the next round"
            f" ({(self.clock() - started) * 1000:.0f} ms)"
        )
        return plan

    def explain(self, reasons: Mapping[int, str], pending: Iterable[int]) -> None:
        """Write SCHED_MESSAGE for every VM whose reason changed since it was last written."""
        pending = set(pending)
        self.messages = {vid: m for vid, m in self.messages.items() if vid in pending}
        changed = {vid: r for vid, r in reasons.items() if self.messages.get(vid) != r}
        for vid in sorted(changed):
            self.vm_log.debug(f"VM {vid} waits: {changed[vid]}")
        self.messages.update(changed)
        if not changed or not self.explaining:
            return
        stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(self.wall()))
        sent = self.dispatcher.explain({vid: f"{stamp} : {r}" for vid, r in changed.items()})
        for outcome in sent:
            if outcome.unsupported:
                self._cannot_explain(outcome)
            elif not outcome.ok:
                self.messages.pop(outcome.vm, None)  # written again next round
                self.log.warning(f"Cannot set SCHED_MESSAGE of VM {outcome.vm}: {outcome.error}")

    def _deploy_failures(self, plan: Plan, outcomes: list[Outcome]) -> dict[int, str]:
        failed = {}
        for placement, outcome in zip(plan.placements, outcomes, strict=True):
            if outcome.ok:
                self.log.info(f"VM {placement.vm} dispatched to host {placement.host_name}")
                continue
            reason = f"{placement.host_name}: deploy refused: {outcome.error}"
            self.log.error(f"VM {placement.vm}: {reason}")
            failed[placement.vm] = reason
        return failed

    def _cannot_explain(self, outcome: Outcome) -> None:
        if self.explaining:
            self.log.warning(
                f"oned refused one.vm.update ({outcome.error}): the reasons VMs wait are only "
                "in sched.log until oned is restarted"
            )
        self.explaining = False

    def _unreachable(self, error: OneClientError) -> float:
        self.backoff = min(MAX_BACKOFF, self.backoff * 2 or 1.0)
        if self.down_since is None:
            self.down_since = self.clock()
            self.log.error(f"Cannot read the pools from oned: {error.message}; retrying")
        else:
            self.log.debug(f"oned still unreachable: {error.message}")
        self.seen = frozenset()  # whatever is pending when oned is back counts as new
        return self.backoff

    def _reachable(self) -> None:
        if self.down_since is not None:
            self.log.info(f"oned answers again after {self.clock() - self.down_since:.0f} s")
            self.explaining = True
        self.down_since, self.backoff = None, 0.0


def _ids(ids: Iterable[int]) -> str:
    ordered = sorted(ids)
    shown = " ".join(map(str, ordered[:SHOWN_IDS]))
    return shown + (f" ... ({len(ordered)} in all)" if len(ordered) > SHOWN_IDS else "")


__all__ = ["MAX_BACKOFF", "Scheduler"]
