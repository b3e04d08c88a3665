"""VM polling on virtual time: rounds spread over the interval, no POLL to a VM whose POLL is in
flight, answers that change nothing write nothing, those of one turn share one transaction; a
driver request's timeout counts from its write."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer, task
from twisted.python.failure import Failure

from oned.api.cloud import Cloud
from oned.commits import CommitQueue
from oned.config import load_config
from oned.drivers import Drivers
from oned.lcm import LifeCycle
from oned.mad import DriverTimeout, DriverUnavailable, Reply
from oned.poll_schedule import PollRounds
from oned.pools import Pools
from oned.records import History, Host, User, Vm
from oned.states import LcmState, VmState
from oned.store import Store
from oned.template import parse
from oned.vmfiles import VmFiles
from oned.vmm import REFRESH, VirtualMachineManager
from tests.unit.test_mad_channel import FakeReactor, feed, started

START = 1_700_000_000
INTERVAL = 10


def test_a_round_hands_out_its_vms_evenly_over_the_interval():
    """100 VMs, interval 10, a tick a second: 10 per tick, all within the interval."""
    rounds = PollRounds(INTERVAL, period=1)
    ids = list(range(100))
    taken = [list(rounds.take(START + t, lambda: ids)) for t in range(INTERVAL)]
    assert [len(t) for t in taken] == [10] * INTERVAL
    assert [v for t in taken for v in t] == ids
    assert rounds.rounds == 1


def test_the_next_round_starts_one_interval_later_so_each_vm_keeps_its_place():
    rounds = PollRounds(INTERVAL, period=1)
    ids = list(range(30))
    first = {t: list(rounds.take(START + t, lambda: ids)) for t in range(2 * INTERVAL)}
    assert first[INTERVAL] == first[0] == [0, 1, 2]
    assert rounds.rounds == 2


def test_a_vm_that_starts_running_joins_at_the_next_round():
    rounds = PollRounds(INTERVAL, period=1)
    ids = [1, 2]
    assert list(rounds.take(START, lambda: ids)) == [1]
    ids.append(3)
    handed = [v for t in range(1, 2 * INTERVAL) for v in rounds.take(START + t, lambda: ids)]
    assert handed == [2, 1, 2, 3]


def test_a_vm_that_joined_is_polled_at_the_next_tick_then_in_the_rounds():
    """A DEPLOY answered mid-round: its first POLL at the next tick, not up to two intervals
    later (an operator sees its figures at once); the rounds still poll it as any other."""
    rounds = PollRounds(INTERVAL, period=1)
    ids = [1, 2]
    assert list(rounds.take(START, lambda: ids)) == [1]
    ids.append(3)
    rounds.join(3)
    assert list(rounds.take(START + 1, lambda: ids)) == [3]
    handed = [v for t in range(2, 2 * INTERVAL) for v in rounds.take(START + t, lambda: ids)]
    assert handed == [2, 1, 2, 3]


def test_after_a_stall_a_tick_hands_out_at_most_its_catch_up():
    """60 s late: 5 s worth (50 of 600 VMs), not the whole round at once."""
    rounds = PollRounds(60, period=1, catch_up=5)
    ids = list(range(600))
    assert len(rounds.take(START, lambda: ids)) == 10
    assert len(rounds.take(START + 60, lambda: ids)) == 50


def test_an_interval_shorter_than_a_tick_polls_every_vm_at_each_round():
    rounds = PollRounds(1, period=1)
    assert list(rounds.take(START, lambda: [4, 5])) == [4, 5]
    assert list(rounds.take(START + 1, lambda: [4, 5])) == [4, 5]


class FakeVmm:
    """A VMM channel: records requests, answered by the test."""

    def __init__(self) -> None:
        self.pending: dict[int, defer.Deferred] = {}
        self.sent: list[int] = []

    def request(self, action, oid, *args, timeout):
        assert action == "POLL" and oid not in self.pending, f"second POLL of VM {oid}"
        self.sent.append(oid)
        self.pending[oid] = d = defer.Deferred()
        return d

    def answer(self, oid: int, info: str = "STATE=a USEDMEMORY=100") -> None:
        self.pending.pop(oid).callback(Reply("POLL", str(oid), True, info))

    def cancel(self, oid) -> None:
        pass


@pytest.fixture
def polling(tmp_path):
    """Twenty RUNNING VMs on one host, VM_POLLING_INTERVAL 10, commits grouped per turn."""
    clock = task.Clock()
    clock.advance(START)
    config = load_config(f"DB = [ BACKEND = sqlite ]\nVM_POLLING_INTERVAL = {INTERVAL}\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
    pools = Pools()
    pools.put_user(User(0, "oneadmin", "x"))
    store.insert_user(User(0, "oneadmin", "x"))
    host = Host(0, "host00", "im_dummy", "vmm_dummy", "tm_dummy")
    store.insert_host(host)
    pools.put_host(host)
    for vid in range(20):
        vm = Vm(vid, 0, f"vm{vid}", parse("MEMORY = 64\n"), VmState.ACTIVE, LcmState.RUNNING)
        vm.history = [History(vid, 0, "host00", 0, "/var", "vmm_dummy", "tm_dummy")]
        store.insert_vm(vm)
        pools.vms.put(vm)
    cloud = Cloud(pools, store, config, logging.getLogger("t"), clock=clock.seconds)
    cloud.commits = CommitQueue(store, clock.callLater)
    channel = FakeVmm()
    drivers = Drivers(vmm={"vmm_dummy": channel})  # type: ignore[dict-item]
    files = VmFiles(str(tmp_path / "var"), threaded=False)
    lcm = LifeCycle(cloud, files, logging.getLogger("t"), lambda h: None)
    vmm = VirtualMachineManager(lcm, drivers, clock, logging.getLogger("t"))
    vmm.start_polling()
    yield vmm, channel, clock, store, cloud
    vmm.stop()
    store.close()


def test_every_running_vm_is_polled_once_per_interval_a_share_at_each_tick(polling):
    vmm, channel, clock, store, cloud = polling
    per_tick = []
    for _ in range(INTERVAL):
        before = len(channel.sent)
        clock.advance(1)
        per_tick.append(len(channel.sent) - before)
        for vid in list(channel.pending):
            channel.answer(vid)
    assert per_tick == [2] * INTERVAL
    assert sorted(channel.sent) == list(range(20))


def test_a_vm_whose_poll_is_in_flight_is_not_polled_again(polling):
    """Unanswered POLLs through two whole rounds: each VM got one (FakeVmm refuses a second)."""
    vmm, channel, clock, store, cloud = polling
    clock.pump([1] * 2 * INTERVAL)
    assert sorted(channel.sent) == list(range(20))
    channel.answer(0)
    clock.pump([1] * INTERVAL)
    assert channel.sent.count(0) == 2 and channel.sent.count(1) == 1


def test_answers_of_one_turn_are_written_in_one_transaction(polling):
    vmm, channel, clock, store, cloud = polling
    clock.pump([1] * INTERVAL)
    for vid in range(20):
        channel.answer(vid, f"STATE=a USEDMEMORY={1000 + vid} USEDCPU=3")
    assert cloud.pools.vms.get(7).memory == 1007 and store.get_vm(7).memory == 0
    clock.advance(0)  # the end of the reactor turn
    assert (vmm.writes.writes, cloud.commits.groups) == (1, 1)
    assert [store.get_vm(v).memory for v in (0, 7, 19)] == [1000, 1007, 1019]
    assert store.get_vm(7).last_poll == cloud.now() and store.get_vm(7).cpu == 3


def test_an_answer_that_changes_nothing_writes_nothing(polling):
    """The same figures again: no write, no change mark; LAST_POLL waits for REFRESH."""
    vmm, channel, clock, store, cloud = polling
    clock.pump([1] * INTERVAL)
    for vid in range(20):
        channel.answer(vid)
    clock.advance(0)
    written, polled_at = vmm.writes.rows, store.get_vm(3).last_poll
    seq = cloud.pools.changes.seq
    clock.pump([1] * INTERVAL)
    for vid in range(20):
        channel.answer(vid)
    clock.advance(0)
    assert (vmm.writes.rows, cloud.pools.changes.seq) == (written, seq)
    assert cloud.pools.vms.get(3).last_poll == polled_at
    for _ in range(REFRESH):
        clock.pump([1] * INTERVAL)
        for vid in list(channel.pending):
            channel.answer(vid)
        clock.advance(0)
    assert store.get_vm(3).last_poll > polled_at


def test_template_values_of_an_answer_are_written_with_the_figures(polling):
    vmm, channel, clock, store, cloud = polling
    clock.pump([1] * INTERVAL)
    channel.answer(5, "STATE=a GUEST_IP=10.0.0.5")
    clock.advance(0)
    assert store.get_vm(5).template.get_str("GUEST_IP") == "10.0.0.5"


def test_a_poll_saying_the_vm_is_gone_still_moves_it_to_unknown(polling):
    vmm, channel, clock, store, cloud = polling
    clock.advance(1)
    channel.answer(0, "STATE=d")
    clock.advance(0)
    assert cloud.pools.vms.get(0).lcm_state == LcmState.UNKNOWN
    assert store.get_vm(0).lcm_state == LcmState.UNKNOWN


def test_a_queued_request_times_out_from_its_write_not_from_its_request(caplog):
    """Concurrency 1: the second request waits 25 s, then gets its whole 30 s."""
    reactor = FakeReactor()
    ch = started(reactor, caplog, concurrency=1)
    ch.request("POLL", 1, "h", "one-1", "-", timeout=30)
    second = ch.request("POLL", 2, "h", "one-2", "-", timeout=30)
    reactor.advance(25)
    feed(reactor, b"POLL SUCCESS 1 STATE=a\n")
    assert reactor.spawned[0][1].written[-1] == b"POLL 2 h one-2 -\n"
    reactor.advance(29)
    assert not second.called
    reactor.advance(1)
    assert isinstance(second.result.value, DriverTimeout)
    second.addErrback(lambda f: None)


def test_a_queue_behind_requests_that_time_out_moves_on(caplog):
    """The driver runs but never answers: each request times out 30 s after its write."""
    reactor = FakeReactor()
    ch = started(reactor, caplog, concurrency=1)
    ds = [ch.request("DEPLOY", vid, "h", "/f", "-", timeout=30) for vid in (1, 2, 3)]
    reactor.pump([30, 30])
    assert [d.called for d in ds] == [True, True, False]
    reactor.advance(30)
    assert all(isinstance(d.result.value, DriverTimeout) for d in ds)
    for d in ds:
        d.addErrback(lambda f: None)


def test_a_request_queued_while_the_driver_is_down_fails_after_its_timeout(caplog):
    """Never written: DriverUnavailable, as a request to a driver that is not there."""
    reactor = FakeReactor()
    ch = started(reactor, caplog)
    reactor.spawned[0][0].processEnded(type("R", (), {"value": None})())  # type: ignore[arg-type]
    d = ch.request("DEPLOY", 4, "h", "/f", "-", timeout=30)
    reactor.advance(30)
    assert isinstance(d.result.value, DriverUnavailable)
    assert "not running" in str(d.result.value)
    d.addErrback(lambda f: None)


def test_a_request_reissued_after_a_restart_gets_its_whole_timeout_again(caplog):
    """Written at 0, the driver dies at 20 and is back at 21: the timeout counts from 21."""
    reactor = FakeReactor()
    ch = started(reactor, caplog)
    d = ch.request("POLL", 3, "h", "one-3", "-", timeout=30)
    reactor.advance(20)
    reactor.spawned[0][0].processEnded(Failure(Exception("died")))  # type: ignore[arg-type]
    reactor.advance(1)
    feed(reactor, b"INIT SUCCESS - -\n")
    assert reactor.spawned[1][1].written[-1] == b"POLL 3 h one-3 -\n"
    reactor.advance(29)
    assert not d.called
    reactor.advance(1)
    assert isinstance(d.result.value, DriverTimeout)
    d.addErrback(lambda f: None)
