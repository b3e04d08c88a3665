"""HostMonitor on virtual time: due hosts get MONITOR, replies set state, share and ERROR."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer, task

from oned.api.cloud import Cloud
from oned.config import HookConfig, load_config
from oned.drivers import Drivers
from oned.im import HostMonitor, derive_share, parse_monitoring
from oned.mad import DriverTimeout, Reply
from oned.pools import Pools
from oned.records import Host, HostShare
from oned.states import HostState
from oned.store import Store
from oned.template import Template

INFO = 'HYPERVISOR=kvm TOTALCPU=200 FREECPU=184 USEDCPU=16 TOTALMEMORY=2017004 FREEMEMORY=1848172 USEDMEMORY=168832 MODELNAME="AMD EPYC"'  # noqa: E501


class FakeIm:
    """Stands in for the IM driver's channel: records requests, the test answers them."""

    name = "im_kvm"

    def __init__(self) -> None:
        self.requests: dict[int, defer.Deferred] = {}

    def request(self, action, hid, name, update, timeout):
        assert action == "MONITOR"
        self.requests[hid] = defer.Deferred()
        return self.requests[hid]

    def answer(self, hid: int, ok: bool, info: str) -> None:
        self.requests.pop(hid).callback(Reply("MONITOR", str(hid), ok, info))


class FakeHooks:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def host_event(self, host: Host, on: str) -> None:
        self.events.append((host.id, on))


@pytest.fixture
def world(tmp_path):
    clock = task.Clock()
    clock.advance(1_000_000)
    config = load_config("HOST_MONITORING_INTERVAL = 60\nDB = [ BACKEND = sqlite ]\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("test"))
    pools = Pools()
    for hid in range(3):
        host = Host(hid, f"host0{hid}", "im_kvm", "vmm_kvm", "tm_nfs")
        store.insert_host(host)
        pools.put_host(host)
    cloud = Cloud(pools, store, config, logging.getLogger("test"), clock=clock.seconds)
    im, hooks = FakeIm(), FakeHooks()
    monitor = HostMonitor(cloud, Drivers(im={"im_kvm": im}), clock, logging.getLogger("t"), hooks)  # type: ignore[dict-item,arg-type]
    yield clock, cloud, im, hooks, monitor, store
    store.close()


def test_new_hosts_are_monitored_at_once_and_then_every_interval(world):
    """INIT hosts at the first tick; a monitored host again only after the interval."""
    clock, cloud, im, _, monitor, _ = world
    monitor.tick()
    assert sorted(im.requests) == [0, 1, 2]
    assert cloud.pools.hosts.get(0).state == HostState.MONITORING
    for hid in (0, 1, 2):
        im.answer(hid, True, INFO)
    clock.advance(59)
    monitor.tick()
    assert im.requests == {}
    clock.advance(1)
    monitor.tick()
    assert sorted(im.requests) == [0, 1, 2]


def test_a_successful_reply_sets_monitored_template_and_share_and_is_stored(world):
    """MONITORED, LAST_MON_TIME, the 1.4 share fields, written through in a batch."""
    clock, cloud, im, _, monitor, store = world
    monitor.tick()
    im.answer(0, True, INFO)
    host = cloud.pools.hosts.get(0)
    assert host.state == HostState.MONITORED and host.last_mon_time == int(clock.seconds())
    assert (host.share.max_cpu, host.share.free_cpu, host.share.max_mem) == (200, 184, 2017004)
    assert host.template.get_str("MODELNAME") == "AMD EPYC"
    clock.advance(0.1)
    stored = {h.id: h for h in store.load_hosts()}
    assert stored[0].state == HostState.MONITORED and stored[0].share.free_mem == 1848172


def test_a_failure_puts_only_that_host_in_error_with_the_reason_and_runs_the_hook(world):
    """One host fails; the others are unaffected; HOST_HOOK on ERROR fires once."""
    clock, cloud, im, hooks, monitor, _ = world
    monitor.tick()
    im.answer(1, False, "Could not monitor host host01.")
    im.answer(0, True, INFO)
    im.answer(2, True, INFO)
    host = cloud.pools.hosts.get(1)
    assert host.state == HostState.ERROR
    assert host.template.get("ERROR")["MESSAGE"] == "Could not monitor host host01."
    assert [cloud.pools.hosts.get(h).state for h in (0, 2)] == [HostState.MONITORED] * 2
    assert hooks.events == [(1, "ERROR")]
    clock.advance(60)
    monitor.tick()
    im.answer(1, True, INFO)
    assert host.state == HostState.MONITORED and "ERROR" not in host.template


def test_garbage_from_a_probe_puts_the_host_in_error_quoting_it(world):
    """An unparsable answer names the garbage."""
    _, cloud, im, _, monitor, _ = world
    monitor.tick()
    im.answer(0, True, "TOTALCPU=200 Segmentation fault (core dumped)")
    error = cloud.pools.hosts.get(0).template.get("ERROR")["MESSAGE"]
    assert error.startswith("Error parsing host information") and "fault (core dumped)" in error


def test_a_timeout_is_an_error_with_the_reason(world):
    """A hanging host ends in ERROR, never stuck in MONITORING."""
    _, cloud, im, _, monitor, _ = world
    monitor.tick()
    im.requests.pop(2).errback(DriverTimeout("MONITOR 2: no answer from im_kvm in 90 s"))
    host = cloud.pools.hosts.get(2)
    assert host.state == HostState.ERROR
    assert "no answer from im_kvm in 90 s" in host.template.get("ERROR")["MESSAGE"]


def test_disabled_hosts_are_never_monitored_and_stay_disabled(world):
    """A host disabled while monitored keeps DISABLED when the answer comes."""
    _, cloud, im, _, monitor, _ = world
    cloud.pools.hosts.get(0).state = HostState.DISABLED
    monitor.tick()
    assert 0 not in im.requests
    cloud.pools.hosts.get(1).state = HostState.DISABLED
    im.answer(1, True, INFO)
    assert cloud.pools.hosts.get(1).state == HostState.DISABLED


def test_a_host_with_an_unknown_im_driver_goes_to_error_naming_it(world):
    """No driver, no waiting: ERROR at once with the reason."""
    _, cloud, _, _, monitor, _ = world
    cloud.pools.hosts.get(0).im_mad = "im_nope"
    monitor.tick()
    assert (
        "IM_MAD im_nope is not defined" in cloud.pools.hosts.get(0).template.get("ERROR")["MESSAGE"]
    )


def test_monitoring_info_of_1_4_drivers_separated_by_commas_parses():
    """NOTE-compatible: KEY=VAL,KEY=VAL."""
    assert parse_monitoring("TOTALCPU=200,FREECPU=100").get_str("FREECPU") == "100"


def test_share_fields_are_integers_even_from_floats_and_missing_reads_as_zero():
    """ "8912896.0" becomes 8912896, as OpenNebula's istringstream does."""
    share = HostShare()
    derive_share(share, Template([("TOTALMEMORY", "8912896.0"), ("FREECPU", "x")]))
    assert (share.max_mem, share.free_cpu, share.max_cpu) == (8912896, 0, 0)


def test_hook_config_type_is_what_the_runner_reads():
    """HOST_HOOK entries from oned.conf carry on/command/arguments/remote."""
    config = load_config(
        'HOST_HOOK = [ name = "err", on = "ERROR", command = "x.sh", arguments = "$HID" ]'
    )
    assert config.host_hooks[0] == HookConfig("HOST", "err", "ERROR", "x.sh", "$HID", False, 1)


def test_a_failed_host_stays_in_error_across_intervals_until_a_probe_succeeds(world):
    """Finding 6 of issue 11: a timed-out host was back in MONITORING (``on``) at its next
    probe, so the scheduler fed it; it now stays in ERROR until a probe succeeds."""
    clock, cloud, im, hooks, monitor, _ = world
    monitor.tick()
    im.answer(0, True, INFO)
    host = cloud.pools.hosts.get(0)
    succeeded = host.last_mon_time
    for probing in (HostState.MONITORING, HostState.ERROR, HostState.ERROR):
        clock.advance(60)
        monitor.tick()
        assert 0 in im.requests and host.state == probing
        im.requests.pop(0).errback(DriverTimeout("MONITOR 0: no answer from im_kvm in 90 s"))
        assert host.state == HostState.ERROR
        assert host.last_mon_time == succeeded
    assert hooks.events == [(0, "ERROR")]
    clock.advance(60)
    monitor.tick()
    assert host.state == HostState.ERROR
    im.answer(0, True, INFO)
    assert host.state == HostState.MONITORED and host.last_mon_time == cloud.now()


def test_a_host_in_error_is_probed_once_an_interval_and_never_twice_at_once(world):
    """Finding 6 of issue 11: LAST_MON_TIME is not refreshed on failure, yet the host in ERROR
    is probed again only after the interval, and not while its probe is outstanding."""
    clock, cloud, im, _, monitor, _ = world
    monitor.tick()
    im.answer(1, False, "Could not monitor host host01.")
    assert cloud.pools.hosts.get(1).last_mon_time == 0
    im.requests.clear()
    clock.advance(59)
    monitor.tick()
    assert 1 not in im.requests
    clock.advance(1)
    monitor.tick()
    assert 1 in im.requests
    sent = im.requests[1]
    clock.advance(60)
    monitor.tick()
    assert im.requests[1] is sent
