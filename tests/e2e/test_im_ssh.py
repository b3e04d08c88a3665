"""one_im_ssh as oned runs it, monitoring the namespace hosts over real SSH."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.driver_process import DriverProcess

pytestmark = pytest.mark.e2e
TOKEN = re.compile(r'([A-Z0-9_]+)=("(?:[^"\\]|\\.)*"|\S+)')
REQUIRED = {
    "HYPERVISOR", "HOSTNAME", "ARCH", "MODELNAME", "CPUSPEED", "TOTALCPU", "USEDCPU", "FREECPU",
    "TOTALMEMORY", "USEDMEMORY", "FREEMEMORY", "NETRX", "NETTX",
}  # fmt: skip


def info_of(reply: str) -> dict[str, str]:
    """The attributes of a MONITOR SUCCESS reply (quotes kept)."""
    info = reply.split(" ", 3)[3]
    assert TOKEN.sub("", info).strip() == "", f"not only attributes: {info}"
    return dict(TOKEN.findall(info))


def this_machine() -> tuple[int, int]:
    """(cores x 100, MemTotal KB) from this machine's /proc, shared by every namespace host."""
    cores = sum(
        1 for line in Path("/proc/stat").read_text().splitlines() if re.match(r"cpu\d", line)
    )
    meminfo = Path("/proc/meminfo").read_text()
    return cores * 100, int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.M).group(1))


@pytest.fixture
def im_ssh(tmp_path):
    """Start one_im_ssh with the given ARGUMENTS (probes go to a remote dir of this test)."""
    started: list[DriverProcess] = []

    def start(arguments: str = "kvm") -> DriverProcess:
        driver = DriverProcess("one_im_ssh", f"{arguments} --remote-dir {tmp_path}/remote")
        assert driver.init() == "INIT SUCCESS - -"
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.close()


@pytest.fixture
def misbehaving(test_hosts):
    """The session's hosts; whatever a test freezes or stops is put back afterwards."""
    yield test_hosts
    test_hosts.restore()


def copies(driver: DriverProcess, ident: int) -> list[str]:
    return [line for line in driver.seen if line.startswith(f"LOG - {ident} copied probes")]


def test_monitor_reports_the_hosts_real_cpu_and_memory(im_ssh, test_hosts):
    """TOTALCPU and TOTALMEMORY are this machine's; every attribute of the set is there."""
    name, address = test_hosts[0]
    driver = im_ssh()
    driver.send(f"MONITOR 0 {address} 0")
    info = info_of(driver.reply("MONITOR", 0, timeout=30))
    assert set(info) - {"KVM_ACCEL", "KVM_ACCEL_REASON"} == REQUIRED and "KVM_ACCEL" in info
    assert (int(info["TOTALCPU"]), int(info["TOTALMEMORY"])) == this_machine()
    assert info["HYPERVISOR"] == "kvm" and info["HOSTNAME"] == name
    assert int(info["USEDCPU"]) + int(info["FREECPU"]) == int(info["TOTALCPU"])
    assert int(info["USEDMEMORY"]) + int(info["FREEMEMORY"]) == int(info["TOTALMEMORY"])
    assert info["MODELNAME"].startswith('"')


def test_probes_are_copied_once_per_host_then_only_when_asked(im_ssh, test_hosts):
    """The second MONITOR reuses the copy; the update flag 1 copies again."""
    _, address = test_hosts[1]
    driver = im_ssh()
    for flag in (0, 0, 1):
        driver.send(f"MONITOR 1 {address} {flag}")
        assert driver.reply("MONITOR", 1, timeout=30).startswith("MONITOR SUCCESS 1 ")
    assert len(copies(driver, 1)) == 2  # LOG lines come before the reply they belong to


def test_probes_removed_from_a_host_are_copied_again(im_ssh, test_hosts, tmp_path):
    """A host that lost the bundle (reinstalled, /var/tmp cleaned) gets it back."""
    _, address = test_hosts[2]
    driver = im_ssh()
    driver.send(f"MONITOR 2 {address} 0")
    driver.reply("MONITOR", 2, timeout=30)
    for bundle in (tmp_path / "remote" / "im").glob("probes-*.sh"):
        bundle.unlink()
    driver.send(f"MONITOR 2 {address} 0")
    assert driver.reply("MONITOR", 2, timeout=30).startswith("MONITOR SUCCESS 2 ")
    assert driver.wait_line(lambda line: "probes missing" in line)


def test_a_hung_host_fails_within_the_timeout_and_delays_no_other(im_ssh, misbehaving):
    """With one host's sshd frozen, another host is answered at once, the frozen one fails."""
    (frozen, frozen_address), (_, address) = misbehaving[2], misbehaving[0]
    driver = im_ssh("kvm --timeout 3")
    driver.send(f"MONITOR 0 {address} 0")  # connected before the trouble starts
    driver.reply("MONITOR", 0, timeout=30)
    misbehaving.freeze(frozen)
    started = time.monotonic()
    driver.send(f"MONITOR 2 {frozen_address} 0", f"MONITOR 0 {address} 0")
    assert driver.reply("MONITOR", 0).startswith("MONITOR SUCCESS 0 ")
    assert time.monotonic() - started < 2.5
    assert driver.reply("MONITOR", 2) == "MONITOR FAILURE 2 probe timed out after 3 s"
    assert time.monotonic() - started < 6


def test_twenty_probes_queued_to_a_hung_host_delay_no_other_host(im_ssh, misbehaving):
    """Issue 11 (fault isolation): more MONITORs for a frozen host than the driver has threads
    used to hold every thread; now they wait in that host's lane, another host is answered at
    once, and each frozen one fails by the timeout (bounds generous: shared test machine)."""
    (frozen, frozen_address), (_, address) = misbehaving[2], misbehaving[0]
    driver = im_ssh("kvm --timeout 3 --concurrency 4")
    driver.send(f"MONITOR 0 {address} 0")
    driver.reply("MONITOR", 0, timeout=30)
    misbehaving.freeze(frozen)
    started = time.monotonic()
    driver.send(*[f"MONITOR {100 + n} {frozen_address} 0" for n in range(20)])
    driver.send(f"MONITOR 0 {address} 0")
    assert driver.reply("MONITOR", 0).startswith("MONITOR SUCCESS 0 ")
    assert time.monotonic() - started < 2.5
    for n in range(20):
        assert driver.reply("MONITOR", 100 + n, timeout=60).startswith(f"MONITOR FAILURE {100 + n}")


def test_a_host_whose_sshd_was_stopped_fails_at_once(im_ssh, misbehaving):
    """Connection refused is reported as such, long before the timeout."""
    name, address = misbehaving[1]
    driver = im_ssh("kvm --timeout 20")
    misbehaving.stop(name)
    started = time.monotonic()
    driver.send(f"MONITOR 1 {address} 0")
    assert (
        driver.reply("MONITOR", 1) == f"MONITOR FAILURE 1 connection refused by {address} port 22"
    )
    assert time.monotonic() - started < 5


def test_a_host_that_comes_back_is_monitored_again(im_ssh, misbehaving):
    """After its sshd restarted, the cached connection is found dead and made again."""
    name, address = misbehaving[1]
    driver = im_ssh()
    driver.send(f"MONITOR 1 {address} 0")
    assert driver.reply("MONITOR", 1, timeout=30).startswith("MONITOR SUCCESS 1 ")
    misbehaving.stop(name)
    misbehaving.restore()
    driver.send(f"MONITOR 1 {address} 0")
    assert driver.reply("MONITOR", 1, timeout=30).startswith("MONITOR SUCCESS 1 ")


def test_a_name_that_does_not_resolve_fails_naming_it(im_ssh):
    """DNS failure is a clear FAILURE, not a stuck MONITORING."""
    driver = im_ssh()
    driver.send("MONITOR 9 no-such-host.invalid 0")
    assert driver.reply("MONITOR", 9) == (
        "MONITOR FAILURE 9 cannot resolve host no-such-host.invalid"
    )


def custom_probes(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "probes"
    for folder in ("common.d", "kvm.d"):
        (root / folder).mkdir(parents=True)
    probe = root / "kvm.d" / "probe.sh"
    probe.write_text(f"#!/bin/sh\n{body}\n")
    probe.chmod(0o755)
    return root


def test_garbage_printed_by_a_probe_is_passed_through_unchanged(im_ssh, test_hosts, tmp_path):
    """oned decides what garbage means (host ERROR with its first line); the driver hides none."""
    probes = custom_probes(tmp_path, "echo 'Segmentation fault (core dumped)'; echo TOTALCPU=100")
    driver = im_ssh(f"kvm --probes {probes}")
    driver.send(f"MONITOR 4 {test_hosts[0][1]} 0")
    assert driver.reply("MONITOR", 4, timeout=30) == (
        "MONITOR SUCCESS 4 Segmentation fault (core dumped) TOTALCPU=100"
    )


def test_a_probe_that_never_returns_is_cut_by_the_timeout(im_ssh, test_hosts, tmp_path):
    """--timeout bounds the whole monitoring of a host."""
    driver = im_ssh(f"kvm --timeout 2 --probes {custom_probes(tmp_path, 'sleep 60')}")
    started = time.monotonic()
    driver.send(f"MONITOR 5 {test_hosts[1][1]} 0")
    assert driver.reply("MONITOR", 5) == "MONITOR FAILURE 5 probe timed out after 2 s"
    assert time.monotonic() - started < 5


def test_a_failing_probe_fails_the_monitoring_with_its_message(im_ssh, test_hosts, tmp_path):
    """The probe's own stderr line is the reason."""
    probes = custom_probes(tmp_path, "echo 'libvirt is down' >&2; exit 2")
    driver = im_ssh(f"kvm --probes {probes}")
    driver.send(f"MONITOR 6 {test_hosts[2][1]} 0")
    assert driver.reply("MONITOR", 6, timeout=30) == (
        f"MONITOR FAILURE 6 probes failed on {test_hosts[2][1]}: libvirt is down"
    )


def test_the_1_4_argument_form_selects_the_same_probes(im_ssh, test_hosts):
    """ARGUMENTS = "im_kvm/im_kvm.conf" from a 1.4 oned.conf works unchanged."""
    driver = im_ssh("im_kvm/im_kvm.conf")
    driver.send(f"MONITOR 7 {test_hosts[0][1]}")
    assert info_of(driver.reply("MONITOR", 7, timeout=30))["HYPERVISOR"] == "kvm"
