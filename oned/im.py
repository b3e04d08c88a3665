"""im: the Information Manager (InM) — monitors hosts through their IM drivers.

Every second it sends ``MONITOR <hid> <name> <0|1>`` for each host that is due: new or
re-enabled hosts at once, the others every HOST_MONITORING_INTERVAL; DISABLED hosts never.
Replies update the host's monitoring template (replace mode) and HOST_SHARE (reference §1.3,
§1.4); failures, timeouts and unparsable answers put the host in ERROR with the reason, and no
host ever waits for another. Results are written to the store in batches.

A host in ERROR stays in ERROR while it is probed again (every interval) and leaves it only when
a probe succeeds; LAST_MON_TIME is the time of the last successful monitoring, so the scheduler
can tell a host it may trust from one that stopped answering.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import task
from twisted.python.failure import Failure

from oned import log as onelog
from oned.api.cloud import Cloud
from oned.drivers import Drivers
from oned.errors import TemplateSyntaxError
from oned.hm import HookRunner
from oned.mad import DriverCancelled, Reply
from oned.orphans import OrphanReaper, listed_instances
from oned.records import Host, HostShare
from oned.states import HostState
from oned.template import Template, parse

FLUSH_DELAY = 0.05
STUCK_AFTER = 600
_SHARE_FROM = (
    ("max_cpu", "TOTALCPU"),
    ("max_mem", "TOTALMEMORY"),
    ("free_cpu", "FREECPU"),
    ("free_mem", "FREEMEMORY"),
    ("used_cpu", "USEDCPU"),
    ("used_mem", "USEDMEMORY"),
)


def parse_monitoring(info: str) -> Template:
    """A MONITOR SUCCESS payload as a template.

    NOTE: 2.0 drivers separate attributes by spaces, 1.4's by commas; commas become newlines
    only when the text does not parse as it is (1.4's oned replaced every comma).
    """
    try:
        return parse(info + "\n")
    except TemplateSyntaxError:
        if "," not in info:
            raise
        return parse(info.replace(",", "\n") + "\n")


def derive_share(share: HostShare, template: Template) -> None:
    """HOST_SHARE's monitored fields from the monitoring template (absent reads as 0)."""
    for field_name, attr in _SHARE_FROM:
        value = template.get_str(attr, "0") or "0"
        try:
            setattr(share, field_name, int(float(value)))
        except ValueError:
            setattr(share, field_name, 0)


def _garbage(info: str, exc: TemplateSyntaxError) -> str:
    """The unparsable part of a MONITOR answer, from the start of the attribute that broke."""
    before = info[: max(exc.column - 1, 0)].rstrip()
    start = max(before.rfind(" ") + 1, 0) if before else 0
    return info[start:][:160]


class _Cycle:
    """The hosts of one monitoring round, from the first MONITOR to the last answer stored."""

    def __init__(self, started: float):
        self.started = started
        self.outstanding = 0
        self.hosts = 0
        self.failed = 0


class HostMonitor:
    def __init__(
        self,
        cloud: Cloud,
        drivers: Drivers,
        reactor: Any,
        log: logging.Logger,
        hooks: HookRunner | None = None,
        timeout: float = 90.0,
    ):
        self._cloud = cloud
        self._drivers = drivers
        self._reactor = reactor
        self._log = log
        self._hooks = hooks
        self._timeout = timeout
        self._dirty: dict[int, Host] = {}
        self._flush_call: Any = None
        self._copied: set[tuple[int, str]] = set()
        self._probing: dict[int, int] = {}  # host id -> when its outstanding MONITOR was sent
        self._tried: dict[int, int] = {}  # host id -> when it was last probed (for ERROR hosts)
        self._loop = task.LoopingCall(self.tick)
        self._loop.clock = reactor
        self._orphans = OrphanReaper(cloud, drivers.vmm, log)

    def start(self, period: float = 1.0) -> None:
        self._loop.start(period, now=True).addErrback(self._crashed)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        self.flush()

    def tick(self) -> None:
        """Monitor every due host; the hosts of one tick form a cycle, logged when all answered."""
        now = self._cloud.now()
        interval = self._cloud.config.host_monitoring_interval
        cycle = _Cycle(self._reactor.seconds())
        for host in list(self._cloud.pools.hosts):
            if self._due(host, now, interval):
                self.monitor(host, cycle)

    def _due(self, host: Host, now: int, interval: int) -> bool:
        if host.state == HostState.DISABLED:
            return False
        sent = self._probing.get(host.id)
        if sent is not None:
            if now - sent < STUCK_AFTER + interval:
                return False  # the channel's timeout ends every probe; this is a safety net
            self._log.error(
                f"Host {host.id}: no answer to MONITOR in {now - sent} s; probing again"
            )
            del self._probing[host.id]
            return True
        if host.state == HostState.MONITORING:
            # No MONITOR is outstanding (those are above): its probe was cut off by a stop of
            # oned or of the driver. NOTE: 1.4 logged "stuck in MONITORING" after 600 s; here
            # the channel's timeout ends every probe, so this is no error: monitor it again.
            self._log.info(f"Host {host.id}: its last MONITOR was cut off; monitoring it again")
            return True
        if host.state == HostState.ERROR:
            return now - self._tried.get(host.id, 0) >= interval
        return host.state == HostState.INIT or now - host.last_mon_time >= interval

    def monitor(self, host: Host, cycle: _Cycle | None = None) -> None:
        """Send MONITOR; a host in ERROR keeps ERROR until the answer is a success."""
        self._tried[host.id] = self._cloud.now()
        channel = self._drivers.im.get(host.im_mad)
        if channel is None:
            self._failed(host, self._drivers.problem("IM", host.im_mad))
            return
        cycle = cycle or _Cycle(self._reactor.seconds())
        update = 0 if (host.id, channel.name) in self._copied else 1
        if host.state != HostState.ERROR:
            self._set_state(host, HostState.MONITORING)
        self._log.info(f"Monitoring host {host.name} ({host.id})")
        self._probing[host.id] = self._tried[host.id]
        cycle.outstanding += 1
        cycle.hosts += 1
        d = channel.request("MONITOR", host.id, host.name, update, timeout=self._timeout)
        d.addCallbacks(
            self._replied, self._errored, (host.id, channel.name, cycle), None, (host.id, cycle)
        )
        d.addErrback(self._crashed)

    def _replied(self, reply: Reply, hid: int, driver: str, cycle: _Cycle) -> None:
        self._count(cycle, reply.ok)
        self._probing.pop(hid, None)
        host = self._cloud.pools.hosts.get(hid)
        if host is None:
            return
        if not reply.ok:
            self._failed(host, reply.info or "monitoring failed without a message")
            return
        try:
            template = parse_monitoring(reply.info)
        except TemplateSyntaxError as exc:
            self._failed(host, f"Error parsing host information: {_garbage(reply.info, exc)}")
            return
        self._copied.add((hid, driver))
        listed = listed_instances(template)
        self._monitored(host, template)
        if listed:
            self._orphans.check(host, listed)

    def _monitored(self, host: Host, template: Template) -> None:
        host.template.remove("ERROR")
        host.template.merge(template)
        derive_share(host.share, host.template)
        host.last_mon_time = self._cloud.now()
        if host.state in (HostState.MONITORING, HostState.ERROR):
            self._set_state(host, HostState.MONITORED)
        else:
            self._changed(host)
        self._log.debug(f"Host {host.id} successfully monitored.")

    def _errored(self, failure: Failure, hid: int, cycle: _Cycle) -> None:
        self._count(cycle, False)
        self._probing.pop(hid, None)
        if failure.check(DriverCancelled):  # oned is stopping: no verdict on the host
            return
        host = self._cloud.pools.hosts.get(hid)
        if host is not None:
            self._failed(host, failure.getErrorMessage())

    def _failed(self, host: Host, message: str) -> None:
        """ERROR with the reason; LAST_MON_TIME keeps the time of the last success."""
        message = " ".join(message.split())
        self._log.error(f"Error monitoring host {host.id} : {message}")
        now = self._cloud.now()
        host.template.set("ERROR", {"MESSAGE": message, "TIMESTAMP": str(now)})
        entered = host.state != HostState.ERROR
        if host.state != HostState.DISABLED:
            self._set_state(host, HostState.ERROR)
        else:
            self._changed(host)
        if entered and host.state == HostState.ERROR and self._hooks is not None:
            self._hooks.host_event(host, "ERROR")

    def _count(self, cycle: _Cycle, ok: bool) -> None:
        """Close a cycle once every host it monitored has answered: flush and log its figures."""
        cycle.outstanding -= 1
        cycle.failed += not ok
        if cycle.outstanding == 0:
            self._reactor.callLater(0, self._cycle_done, cycle)

    def _cycle_done(self, cycle: _Cycle) -> None:
        self.flush()
        took = self._reactor.seconds() - cycle.started
        self._log.info(
            f"Monitoring cycle: {cycle.hosts} hosts in {took:.2f} s ({cycle.failed} failed)"
        )

    def _set_state(self, host: Host, state: HostState) -> None:
        if host.state != state:
            host.prev_state, host.state = host.state, state
        self._changed(host)

    def changed(self, host: Host) -> None:
        """A host changed outside monitoring (capacity): re-render and save it with the batch."""
        self._changed(host)

    def _changed(self, host: Host) -> None:
        self._cloud.pools.hosts.changed(host.id)
        self._dirty[host.id] = host
        if self._flush_call is None or not self._flush_call.active():
            self._flush_call = self._reactor.callLater(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write every changed host in one transaction; on a store error keep them for later."""
        batch = [h for h in self._dirty.values() if self._cloud.pools.hosts.get(h.id) is h]
        self._dirty = {}
        if not batch:
            return
        try:
            self._cloud.store.update_hosts(batch)  # type: ignore[attr-defined]
        except Exception as exc:
            self._log.error(f"Could not save the monitoring of {len(batch)} hosts: {exc}")
            for host in batch:
                self._dirty.setdefault(host.id, host)
            self._flush_call = self._reactor.callLater(1.0, self.flush)

    def _crashed(self, failure: Failure) -> None:
        self._log.error("Host monitoring error", exc_info=onelog.exc_info(failure))
