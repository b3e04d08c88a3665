"""mm_sched as a process against a tiny stdlib fake oned on loopback, and its parts around it.

The fake serves one.hostpool.info, one.vmpool.info, one.vm.deploy and one.vm.update: oned has
no deploy yet (the lifecycle issue adds it), so this is where dispatch is tested end to end.
"""

from __future__ import annotations

import argparse
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from xmlrpc.server import SimpleXMLRPCServer

import pytest

from oned.client import OneClient, OneClientError
from oned.errors import ConfigError
from oned.template import parse
from scheduler.config import Settings, apply_flags, configure, describe, load_settings, parser
from scheduler.dispatch import BATCH, Dispatcher, sched_message
from scheduler.loop import Scheduler
from scheduler.placement import Placement
from scheduler.pools import parse_hosts, parse_pending, pending_ids

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "xml"


class FakeOned(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """hostpool/vmpool/deploy/update over hosts and pending VMs kept in memory.

    ``deploy_delay`` makes each deploy take that long; ``short_deploy_only`` answers the modern
    three-argument deploy with 0x1000, as a 1.4-style oned would. ``system.multicall`` is the
    standard library's; with ``multicall_known`` False it is refused as an unknown method.
    """

    daemon_threads = True

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), logRequests=False, allow_none=True)
        self.lock = threading.Lock()
        self.hosts: dict[int, str] = {}
        self.pending: dict[int, str] = {}
        self.deploys: list[tuple[int, int, tuple, float]] = []
        self.messages: dict[int, str] = {}
        self.deploy_delay = 0.0
        self.short_deploy_only = False
        self.in_flight = self.most_in_flight = 0
        self.multicall_known = True
        self.multicalls = 0
        for name, method in (
            ("one.hostpool.info", self.hostpool_info),
            ("one.vmpool.info", self.vmpool_info),
            ("one.vm.deploy", self.deploy),
            ("one.vm.update", self.update),
        ):
            self.register_function(method, name)
        self.register_function(self.multicall, "system.multicall")

    def multicall(self, calls):
        if not self.multicall_known:
            return [False, "[system.multicall] unknown method", 0x1000]
        with self.lock:
            self.multicalls += 1
        return self.system_multicall(calls)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def add_host(self, hid: int, name: str, mem_mb: int = 16384, cpu: int = 800) -> None:
        share = (
            f"<MAX_CPU>{cpu}</MAX_CPU><MAX_MEM>{mem_mb * 1024}</MAX_MEM><CPU_USAGE>0</CPU_USAGE>"
        )
        share += f"<MEM_USAGE>0</MEM_USAGE><FREE_CPU>{cpu}</FREE_CPU>"
        share += f"<FREE_MEM>{mem_mb * 1024}</FREE_MEM><RUNNING_VMS>0</RUNNING_VMS>"
        self.hosts[hid] = (
            f"<HOST><ID>{hid}</ID><NAME>{name}</NAME><STATE>2</STATE>"
            f"<LAST_MON_TIME>{int(time.time())}</LAST_MON_TIME><HOST_SHARE>{share}</HOST_SHARE>"
            f"<TEMPLATE><HOSTNAME>{name}</HOSTNAME><HYPERVISOR>dummy</HYPERVISOR></TEMPLATE></HOST>"
        )

    def add_vm(self, vid: int, requirements: str = "", memory: int = 512) -> None:
        tmpl = parse(f"CPU = 1\nMEMORY = {memory}").to_xml()
        if requirements:
            tmpl = tmpl.replace("</TEMPLATE>", f"<REQUIREMENTS><![CDATA[{requirements}]]>")
            tmpl += "</REQUIREMENTS></TEMPLATE>"
        with self.lock:
            self.pending[vid] = f"<VM><ID>{vid}</ID><UID>0</UID><NAME>vm{vid}</NAME>{tmpl}</VM>"

    def hostpool_info(self, session):
        return [True, "<HOST_POOL>" + "".join(self.hosts.values()) + "</HOST_POOL>", 0]

    def vmpool_info(self, session, flt, start, end, state):
        assert (flt, start, end, state) == (-2, -1, -1, 1)
        with self.lock:
            return [True, "<VM_POOL>" + "".join(self.pending.values()) + "</VM_POOL>", 0]

    def deploy(self, session, vid, hid, *modern):
        if modern and self.short_deploy_only:
            return [False, "[one.vm.deploy] wrong parameters", 0x1000]
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.deploy_delay)
        with self.lock:
            self.in_flight -= 1
            if self.pending.pop(vid, None) is None:
                return [False, f"[one.vm.deploy] VM {vid} is not pending", 0x800]
            self.deploys.append((vid, hid, modern, time.monotonic()))
        return [True, vid, 0]

    def update(self, session, vid, text, merge):
        assert merge == 1
        self.messages[vid] = parse(text).get_str("SCHED_MESSAGE") or ""
        return [True, vid, 0]

    def serve(self) -> FakeOned:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s")


@pytest.fixture
def fake():
    server = FakeOned().serve()
    yield server
    server.stop()


class MmSched:
    """``python -m scheduler`` in a temporary ONE_LOCATION, pointed at ``endpoint``."""

    def __init__(self, location: Path, endpoint: str, *flags: str, conf: str | None = None):
        (location / "etc").mkdir(parents=True)
        (location / "one_auth").write_text("oneadmin:onecloud\n")
        if conf is not None:
            (location / "etc" / "sched.conf").write_text(conf)
        self.location = location
        env = dict(os.environ, ONE_LOCATION=str(location), ONE_AUTH=str(location / "one_auth"))
        env["PYTHONPATH"] = str(ROOT)
        argv = [sys.executable, "-m", "scheduler", "-e", endpoint, *flags]
        self.proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)

    @property
    def log(self) -> str:
        path = self.location / "var" / "sched.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def mm_sched_at(tmp_path):
    started = []

    def start(endpoint: str, *flags: str, conf: str | None = None) -> MmSched:
        started.append(MmSched(tmp_path / f"one{len(started)}", endpoint, *flags, conf=conf))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def endpoint_of(server: FakeOned) -> str:
    return f"http://127.0.0.1:{server.port}/RPC2"


# --- the real process -------------------------------------------------------------------------


def test_mm_sched_places_vms_and_explains_the_one_it_cannot_place(fake, mm_sched_at):
    """host02 is named and chosen; the unsatisfiable VM gets its SCHED_MESSAGE; pid file, log."""
    fake.add_host(0, "host01")
    fake.add_host(1, "host02")
    fake.add_vm(0, 'HOSTNAME = "host02"')
    fake.add_vm(1, 'HOSTNAME = "host09"')
    sched = mm_sched_at(endpoint_of(fake))
    wait_for(lambda: fake.deploys and 1 in fake.messages)
    assert [(vid, hid, modern) for vid, hid, modern, _ in fake.deploys] == [(0, 1, (True,))]
    assert fake.messages[1].endswith(' : no host satisfies REQUIREMENTS HOSTNAME = "host09"')
    pid_file = sched.location / "var" / "sched.pid"
    assert pid_file.read_text().strip() == str(sched.proc.pid)
    wait_for(lambda: "VM 0 dispatched to host host02" in sched.log)
    assert "[SCHED][I]: Init Scheduler Log system" in sched.log
    assert sched.stop() == 0
    assert not pid_file.exists()
    assert "Scheduler stopped" in sched.log


def test_mm_sched_reacts_to_a_new_pending_vm_within_a_second(fake, mm_sched_at):
    """With a 30 s interval, a VM that turns PENDING is deployed by the next live check."""
    fake.add_host(0, "host01")
    sched = mm_sched_at(endpoint_of(fake), "-t", "30", "--live-interval", "1")
    wait_for(lambda: "Round:" in sched.log or "Init Scheduler" in sched.log)
    time.sleep(1.2)  # past the first round: the next one is 30 s away
    added = time.monotonic()
    fake.add_vm(7)
    wait_for(lambda: fake.deploys, timeout=5)
    assert fake.deploys[0][3] - added < 1.6


def test_mm_sched_survives_oned_going_away_and_coming_back(fake, mm_sched_at):
    """Unreachable oned: logged, retried with back-off; when it is back, VMs are placed again."""
    fake.add_host(0, "host01")
    port = fake.port
    fake.add_vm(1)
    sched = mm_sched_at(endpoint_of(fake), "--live-interval", "0.2")
    wait_for(lambda: fake.deploys)
    fake.stop()
    wait_for(lambda: "Cannot read the pools from oned" in sched.log)
    time.sleep(1.5)
    back = FakeOned(port).serve()
    try:
        back.add_host(0, "host01")
        back.add_vm(3)
        wait_for(lambda: back.deploys, timeout=10)
        wait_for(lambda: "oned answers again after" in sched.log)
        assert sched.proc.poll() is None
    finally:
        back.stop()


def test_mm_sched_reads_sched_conf_and_lets_flags_override_it(fake, mm_sched_at):
    """Knobs come from $ONE_LOCATION/etc/sched.conf; -h overrides MAX_HOST; unknowns warned."""
    conf = "SCHED_INTERVAL = 5\nMAX_HOST = 3\nMAX_DISPATCH = 7\nDEFAULT_SCHED = [ policy = 1 ]\n"
    sched = mm_sched_at(endpoint_of(fake), "-h", "2", conf=conf)
    wait_for(lambda: "LIVE_INTERVAL" in sched.log)
    log = sched.log
    assert "SCHED_INTERVAL = 5.0" in log and "MAX_DISPATCH = 7" in log
    assert "MAX_HOST = 2" in log
    assert "line 4: DEFAULT_SCHED is ignored by onecloud" in log


def test_mm_sched_refuses_a_wrong_sched_conf_naming_the_line(fake, tmp_path):
    """A wrong value stops mm_sched at once with the file, the line and the attribute."""
    sched = MmSched(tmp_path, endpoint_of(fake), conf="MAX_VM = 10\nMAX_HOST = many\n")
    assert sched.proc.wait(15) == 1
    assert 'sched.conf line 2: MAX_HOST = "many" is not an integer' in sched.proc.stderr.read()


# --- dispatch ---------------------------------------------------------------------------------


def dispatcher_for(server: FakeOned, workers: int = 8) -> Dispatcher:
    return Dispatcher(lambda: OneClient(endpoint_of(server), "oneadmin:onecloud"), workers)


def test_deployments_go_out_in_multicalls_concurrently_not_one_per_round_trip(fake):
    """100 deploys of 10 ms: five multicalls of BATCH over eight connections, overlapping at the
    fake oned (structural: the wall time belongs to bench/, and varies with the machine's load)."""
    fake.deploy_delay = 0.01
    for vid in range(100):
        fake.add_vm(vid)
    dispatcher = dispatcher_for(fake)
    outcomes = dispatcher.deploy([Placement(vid, vid % 3, "host01") for vid in range(100)])
    dispatcher.close()
    assert [(o.vm, o.host, o.ok) for o in outcomes] == [(v, v % 3, True) for v in range(100)]
    assert [d[:3] for d in sorted(fake.deploys)] == [(v, v % 3, (True,)) for v in range(100)]
    assert fake.multicalls == 100 // BATCH
    assert fake.most_in_flight > 1, "the multicalls were sent one at a time"


def test_each_call_of_a_multicall_has_its_own_outcome(fake):
    fake.add_vm(1)
    fake.add_vm(3)
    dispatcher = dispatcher_for(fake)
    outcomes = dispatcher.deploy([Placement(vid, 0, "h") for vid in (1, 2, 3)])
    explained = dispatcher.explain({1: "no host", 2: "no room"})
    dispatcher.close()
    assert [o.error for o in outcomes] == [None, "[one.vm.deploy] VM 2 is not pending", None]
    assert all(o.ok for o in explained) and fake.messages == {1: "no host", 2: "no room"}
    assert fake.multicalls == 2


def test_an_oned_without_multicall_gets_the_calls_one_by_one_still_concurrently(fake):
    fake.multicall_known = False
    fake.deploy_delay = 0.02
    for vid in range(60):
        fake.add_vm(vid)
    dispatcher = dispatcher_for(fake)
    outcomes = dispatcher.deploy([Placement(vid, 0, "h") for vid in range(60)])
    dispatcher.close()
    assert all(o.ok for o in outcomes) and len(fake.deploys) == 60
    assert dispatcher.multicall is False and fake.multicalls == 0
    assert fake.most_in_flight > 1, "deployments were sent one at a time"


def test_a_refused_deployment_is_an_outcome_with_oneds_message(fake):
    """oned's refusal comes back as the outcome's error; nothing raises."""
    dispatcher = dispatcher_for(fake, workers=2)
    (outcome,) = dispatcher.deploy([Placement(99, 0, "host01")])
    dispatcher.close()
    assert outcome.error == "[one.vm.deploy] VM 99 is not pending"


def test_deploy_falls_back_to_the_1_4_form_when_oned_knows_only_that(fake):
    """A 0x1000 answer to (vid, hid, true) switches to (vid, hid) for good."""
    fake.short_deploy_only = True
    fake.add_vm(1)
    fake.add_vm(2)
    dispatcher = dispatcher_for(fake, workers=1)
    assert all(o.ok for o in dispatcher.deploy([Placement(1, 0, "h")]))
    assert dispatcher.enforce is False
    assert all(o.ok for o in dispatcher.deploy([Placement(2, 0, "h")]))
    dispatcher.close()
    assert [d[:3] for d in fake.deploys] == [(1, 0, ()), (2, 0, ())]


def test_an_unreachable_oned_is_an_outcome_too():
    """Nothing listens: every call ends as an error outcome."""
    dispatcher = Dispatcher(lambda: OneClient("http://127.0.0.1:9/RPC2", "a:b", timeout=2), 2)
    (outcome,) = dispatcher.explain({1: "why"})
    dispatcher.close()
    assert "cannot reach oned" in outcome.error and not outcome.unsupported


def test_sched_message_is_template_text_that_round_trips():
    """Quotes and backslashes in a reason survive one.vm.update's template parser."""
    reason = 'no host satisfies REQUIREMENTS HOSTNAME = "host09" \\ ok'
    assert parse(sched_message(reason)).get_str("SCHED_MESSAGE") == reason


# --- the loop on virtual time -----------------------------------------------------------------


class FakeClient:
    """Answers the loop's reads from strings; ``down`` makes every call fail."""

    def __init__(self, hosts_xml: str, vms_xml: str):
        self.hosts_xml, self.vms_xml, self.down, self.calls = hosts_xml, vms_xml, False, []

    def call(self, method, *params):
        self.calls.append(method)
        if self.down:
            raise OneClientError("cannot reach oned at http://x/RPC2: Connection refused")
        return self.hosts_xml if method == "one.hostpool.info" else self.vms_xml


class FakeDispatcher:
    def __init__(self, unsupported: bool = False):
        self.deployed, self.explained, self.unsupported = [], [], unsupported

    def deploy(self, placements):
        from scheduler.dispatch import Outcome

        self.deployed += [p.vm for p in placements]
        return [Outcome(p.vm, p.host) for p in placements]

    def explain(self, reasons):
        from scheduler.dispatch import Outcome

        self.explained.append(dict(reasons))
        return [Outcome(v, error="no" if self.unsupported else None, unsupported=self.unsupported)
                for v in reasons]  # fmt: skip


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def loop_for(vms_xml: str, *, unsupported=False, **settings):
    hosts = (FIXTURES / "one.hostpool.info_two_hosts.xml").read_text()
    clock = Clock()
    client, dispatcher = FakeClient(hosts, vms_xml), FakeDispatcher(unsupported)
    limits = {"host_monitor_age": 0, **settings}
    loop = Scheduler(Settings(**limits), client, dispatcher, clock=clock, wall=lambda: 1.8e9)
    return loop, client, dispatcher, clock


def vm_pool(*vms: tuple[int, str]) -> str:
    body = "".join(
        f"<VM><ID>{vid}</ID><UID>0</UID><NAME>v</NAME><TEMPLATE><CPU>1</CPU><MEMORY>64</MEMORY>"
        f"<REQUIREMENTS><![CDATA[{req}]]></REQUIREMENTS></TEMPLATE></VM>"
        for vid, req in vms
    )
    return f"<VM_POOL>{body}</VM_POOL>"


def test_a_round_runs_at_once_for_a_new_vm_and_not_again_until_due():
    """New ids start a round; the same ids only when SCHED_INTERVAL is over."""
    loop, client, dispatcher, clock = loop_for(vm_pool((1, "")), sched_interval=30)
    loop.step()
    assert dispatcher.deployed == [1]
    clock.now += 1
    loop.step()
    assert client.calls.count("one.hostpool.info") == 1
    clock.now += 30
    loop.step()
    assert client.calls.count("one.hostpool.info") == 2


def test_the_wait_is_the_live_interval_or_less_when_a_round_is_due_sooner():
    """The loop sleeps until the next live check, never past the next full round."""
    loop, *_ = loop_for(vm_pool(), sched_interval=0.5, live_interval=1.0)
    assert loop.step() == pytest.approx(0.5)
    loop, *_ = loop_for(vm_pool(), sched_interval=30, live_interval=1.0)
    assert loop.step() == pytest.approx(1.0)


def test_an_unreachable_oned_backs_off_exponentially_up_to_30_s_then_recovers():
    """1, 2, 4 ... 30 s between tries; the first success resets it and runs a round."""
    loop, client, dispatcher, _ = loop_for(vm_pool((4, "")))
    client.down = True
    assert [loop.step() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    client.down = False
    assert loop.step() <= 1.0
    assert dispatcher.deployed == [4]


def test_reasons_are_written_once_and_again_only_when_they_change():
    """SCHED_MESSAGE is sent when a VM's reason is new or different, with a time stamp."""
    loop, client, dispatcher, clock = loop_for(vm_pool((5, 'HOSTNAME = "host09"')))
    loop.step()
    (sent,) = dispatcher.explained
    assert sent[5].endswith(' : no host satisfies REQUIREMENTS HOSTNAME = "host09"')
    clock.now += 31
    loop.step()
    assert len(dispatcher.explained) == 1
    client.vms_xml = vm_pool((5, 'HOSTNAME = "host08"'))
    clock.now += 31
    loop.step()
    assert len(dispatcher.explained) == 2


def test_an_oned_without_one_vm_update_is_asked_once():
    """0x1000 to one.vm.update: reasons stay in sched.log, no call every round."""
    loop, _, dispatcher, _ = loop_for(vm_pool((5, "A = 1")), unsupported=True)
    loop.step()
    loop.explain({5: "other reason"}, [5])
    assert len(dispatcher.explained) == 1 and loop.explaining is False


# --- pools and configuration --------------------------------------------------------------------


def test_hosts_are_read_from_the_pool_xml_with_share_and_template_attributes():
    """HOST_SHARE numbers as ints, the monitored template as strings, template wins."""
    h0, h1 = parse_hosts((FIXTURES / "one.hostpool.info_two_hosts.xml").read_text())
    assert (h0.id, h0.name, h0.state, h0.max_cpu, h0.free_cpu, h0.max_mem) == (
        0, "host01", 2, 200, 184, 2017004,
    )  # fmt: skip
    assert h1.attrs["HOSTNAME"] == "host02" and h1.attrs["RUNNING_VMS"] == 0
    assert h0.attrs["FREECPU"] == "184.0" and h0.attrs["CLUSTER"] == "default"


def test_pending_vms_are_read_with_their_template_demand_and_expressions():
    """CPU and MEMORY come from the TEMPLATE, as do REQUIREMENTS and RANK."""
    (vm,) = parse_pending((FIXTURES / "one.vmpool.info_one_pending.xml").read_text())
    assert (vm.id, vm.name, vm.cpu, vm.memory, vm.requirements) == (1, "ttylinux", 0.1, 64, "")
    xml = vm_pool((9, "A = 1"), (3, ""), (5, ""))
    assert [v.id for v in parse_pending(xml, limit=2)] == [3, 5]
    assert pending_ids(xml) == {3, 5, 9}


def test_a_pool_that_is_not_xml_is_a_client_error():
    """Garbage from oned is reported, not a crash."""
    with pytest.raises(OneClientError, match="malformed HOST_POOL"):
        parse_hosts("<HOST_POOL><HOST>")


def test_sched_conf_defaults_are_opennebulas():
    """SCHED_INTERVAL 30, MAX_VM 300, MAX_DISPATCH 30, MAX_HOST 1, HYPERVISOR_MEM 0.1."""
    s = load_settings("", "sched.conf")
    assert (s.sched_interval, s.max_vm, s.max_dispatch, s.max_host, s.hypervisor_mem) == (
        30, 300, 30, 1, 0.1,
    )  # fmt: skip
    assert s.live_interval == 1.0 and s.endpoint is None


def test_max_vm_zero_means_every_pending_vm_as_in_opennebula_6():
    """Finding 6 (issue 12): OpenNebula 6's sched.conf says MAX_VM = 0 (all pending VMs);
    mm_sched refused it and stopped."""
    settings = load_settings("MAX_VM = 0\n", "sched.conf")
    assert settings.max_vm is None and "MAX_VM = 0" in describe(settings)
    pool = "".join(f"<VM><ID>{i}</ID><UID>0</UID></VM>" for i in range(400))
    assert len(parse_pending(f"<VM_POOL>{pool}</VM_POOL>", settings.max_vm)) == 400


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("MAX_VM = -1", 'line 1: MAX_VM = "-1" is not an integer between 0'),
        ("\nHYPERVISOR_MEM = 1.5", 'line 2: HYPERVISOR_MEM = "1.5" is not a number between 0 and'),
        ("ONE_XMLRPC = ftp://x", 'ONE_XMLRPC = "ftp://x" is not an http(s):// URL'),
        ("MAX_HOST = [ a = 1 ]", "line 1: MAX_HOST must be a single value"),
        ("MAX_HOST = ", 'line 1: MAX_HOST = "" is not an integer'),
        ("MAX_HOST = [ a = ", "sched.conf: syntax error"),
    ],
)
def test_a_wrong_sched_conf_value_names_the_line_and_the_attribute(text, error):
    """ConfigError, as oned.conf's."""
    with pytest.raises(ConfigError, match=None) as info:
        load_settings(text, "sched.conf")
    assert error in str(info.value)


def test_oned_port_and_flags_set_the_endpoint():
    """ONED_PORT (3.4's name) and -p give http://localhost:PORT/RPC2; flags beat the file."""
    assert load_settings("ONED_PORT = 2634", "f").endpoint == "http://localhost:2634/RPC2"
    args = parser().parse_args(["-p", "2700", "-t", "5", "-m", "10", "-d", "3", "-h", "2"])
    s = configure(args, "ONED_PORT = 2634\nMAX_HOST = 9", "f")
    assert (s.endpoint, s.sched_interval, s.max_vm, s.max_dispatch, s.max_host) == (
        "http://localhost:2700/RPC2", 5.0, 10, 3, 2,
    )  # fmt: skip
    with pytest.raises(ConfigError, match='--max-host "x" is not an integer'):
        apply_flags(Settings(), argparse.Namespace(**{**vars(args), "max_host": "x"}))
