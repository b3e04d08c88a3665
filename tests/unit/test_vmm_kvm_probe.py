"""one_vmm_kvm's KVM probe, its check that a new domain runs, and its live-migration decision.

The actions run in-process on ``test:///default`` (no domain capabilities there: the probe's
verdict is qemu); the probe's timing and the running check take stand-in domains.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from drivers.kvm_migration import tm_of, unsafe_allowed, unsafe_hint, vm_tm
from drivers.kvm_probe import BOOT_SECTOR, Verdicts, kvm_problem, not_running
from drivers.vmm_kvm_xml import poll_state
from tests.unit.test_vmm_kvm import Driver, remote, vm

libvirt = pytest.importorskip("libvirt")


@pytest.fixture
def var(tmp_path):
    """VM 7's deployment file; its domain is destroyed after."""
    (tmp_path / "var" / "7").mkdir(parents=True)
    (tmp_path / "var" / "7" / "deployment.0").write_text(vm(""))
    yield tmp_path / "var"
    conn = libvirt.open("test:///default")
    with contextlib.suppress(libvirt.libvirtError):
        conn.lookupByName("one-7").destroy()
    conn.close()


def test_auto_deploys_as_qemu_where_the_probe_finds_no_kvm_and_warns_once(var, tmp_path):
    """The verdict is kept per host: one LOG W line, the domain type qemu."""
    driver = Driver(var, probe=True)
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == "DEPLOY SUCCESS 7 one-7"
    assert ET.fromstring(Path(remote(tmp_path)).read_text()).get("type") == "qemu"
    assert not (Path(remote(tmp_path)).parent / "kvm-probe.img").exists()  # removed after
    assert driver.logs == [
        "LOG W 7 KVM cannot run guests on host01 (libvirt offers no kvm domains: this function "
        "is not supported by the connection driver: virConnectGetDomainCapabilities): "
        "domain type qemu (TCG emulation)"
    ]
    assert driver("CANCEL 7 host01 one-7 -") == "CANCEL SUCCESS 7 -"
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == "DEPLOY SUCCESS 7 one-7"
    assert len(driver.logs) == 1


def test_forced_kvm_where_kvm_does_not_run_guests_fails_the_deploy_naming_the_fix(var, tmp_path):
    driver = Driver(var, probe=True, domain_type="kvm")
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == (
        "DEPLOY FAILURE 7 KVM cannot run guests on host01 (libvirt offers no kvm domains: this "
        "function is not supported by the connection driver: virConnectGetDomainCapabilities; "
        "nested virtualisation off?): start one_vmm_kvm with --domain-type auto or qemu"
    )


def test_a_domain_that_does_not_run_after_create_fails_the_deploy_and_is_destroyed(
    var, tmp_path, monkeypatch
):
    """A domain paused (or stopped) right after createXML: FAILURE with its state, no domain."""
    import drivers.vmm_kvm as vmm_kvm

    real_create = vmm_kvm.create

    def create(conn, xml):
        domain, new = real_create(conn, xml)
        domain.suspend()
        return domain, new

    monkeypatch.setattr(vmm_kvm, "create", create)
    driver = Driver(var)
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == (
        "DEPLOY FAILURE 7 the domain does not run on host01: one-7 is paused (1)"
    )
    assert driver("POLL 7 host01 one-7 -") == "POLL SUCCESS 7 STATE=d"


class Domain:
    """A stand-in domain: its states in turn, its CPU times in turn, ended after ``lasts``."""

    def __init__(self, states=(1,), cpu=(0, 10), lasts: int = 10**9) -> None:
        self.states, self.cpu, self.lasts, self.destroyed = list(states), list(cpu), lasts, False

    def name(self) -> str:
        return "one-7"

    def state(self):
        return [self.states.pop(0) if len(self.states) > 1 else self.states[0], 1]

    def info(self):
        return [1, 0, 0, 1, self.cpu.pop(0) if len(self.cpu) > 1 else self.cpu[0]]

    def isActive(self) -> bool:
        self.lasts -= 1
        return self.lasts > 0

    def destroy(self) -> None:
        self.destroyed = True


class Conn:
    def __init__(self, domain: Domain) -> None:
        self.domain, self.xml = domain, ""

    def getDomainCapabilities(self, *args) -> str:
        return "<domainCapabilities/>"

    def createXML(self, xml: str, flags: int) -> Domain:
        self.xml = xml
        return self.domain


def test_the_probe_passes_when_the_test_domain_ends_and_fails_when_it_keeps_running():
    """A CPU that runs boots the floppy and resets (the domain ends); one that does not is still
    there at the deadline, and is destroyed."""
    quick = Conn(Domain(lasts=3))
    assert kvm_problem(quick, "/vm/7/images/kvm-probe.img", timeout=5) is None
    assert "type='kvm'" in quick.xml and "<on_reboot>destroy</on_reboot>" in quick.xml
    assert '<source file="/vm/7/images/kvm-probe.img"/>' in quick.xml
    stuck = Conn(Domain())
    assert kvm_problem(stuck, "/i", timeout=0.3) == (
        "a kvm test domain did not boot its 512-byte floppy in 0.3 s"
    )
    assert stuck.domain.destroyed


def test_the_boot_sector_resets_the_machine_and_is_bootable():
    assert len(BOOT_SECTOR) == 512 and BOOT_SECTOR.endswith(b"\x55\xaa")
    assert BOOT_SECTOR.startswith(bytes([0xB0, 0xFE, 0xE6, 0x64]))  # mov al, 0xfe; out 0x64, al


def test_the_verdict_is_probed_once_per_host():
    calls = []
    verdicts = Verdicts()
    assert verdicts.probe("h1", lambda: calls.append("h1") or "spins") == ("qemu", "spins")
    assert verdicts.probe("h1", lambda: calls.append("h1") or "spins") == ("qemu", "spins")
    assert verdicts.probe("h2", lambda: calls.append("h2")) == ("kvm", "")
    assert calls == ["h1", "h2"]


@pytest.mark.parametrize(
    ("domain", "new", "problem"),
    [
        (Domain(), True, None),
        (Domain(cpu=(5, 5)), True, "one-7 did not use any CPU time in 0.01 s"),
        (Domain(cpu=(5, 5)), False, None),  # a DEPLOY sent again: an idle guest is fine
        (Domain(states=(3,)), False, "one-7 is paused (1)"),
        (Domain(states=(1, 5)), True, "one-7 is shut off (1)"),
        (Domain(states=(6,)), True, "one-7 is crashed (1)"),
    ],
)
def test_a_new_domain_runs_when_it_stays_running_with_its_cpu_time_advancing(domain, new, problem):
    assert not_running(domain, new, 0.01) == problem


def deployment(tm: str) -> str:
    history = f"<HISTORY><SEQ>0</SEQ><TM_MAD><![CDATA[{tm}]]></TM_MAD></HISTORY>"
    return vm("").replace("<TEMPLATE>", f"<HISTORY_RECORDS>{history}</HISTORY_RECORDS><TEMPLATE>")


def test_the_vms_tm_is_read_from_its_newest_deployment_file(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "deployment.2").write_text(deployment("tm_ssh"))
    (tmp_path / "7" / "deployment.10").write_text(deployment("tm_nfs"))
    (tmp_path / "7" / "deployment.10.tmp").write_text(deployment("tm_dummy"))
    assert vm_tm(str(tmp_path), "7") == "tm_nfs"
    assert vm_tm(str(tmp_path), "8") == ""
    assert tm_of("<VM><ID>7</ID></VM>") == "" and tm_of("not xml") == ""


@pytest.mark.parametrize(
    ("tm", "forced", "unsafe"),
    [("tm_nfs", False, True), ("tm_ssh", False, False), ("", False, False), ("tm_ssh", True, True)],
)
def test_libvirts_storage_check_is_skipped_on_shared_storage_or_when_asked(tm, forced, unsafe):
    assert unsafe_allowed(tm, forced) is unsafe


def test_the_refusal_names_the_tm_and_both_fixes():
    assert unsafe_hint("tm_ssh") == (
        "its TM is tm_ssh, not shared storage: put the hosts on tm_nfs, "
        "or start one_vmm_kvm with --unsafe-migration"
    )


@pytest.mark.parametrize(
    ("state", "reason", "letter"),
    [(1, 1, "a"), (3, 1, "p"), (3, 5, "e"), (3, 10, "e"), (6, 1, "e"), (5, 0, "-")],
)
def test_a_domain_qemu_paused_because_the_guest_crashed_polls_as_failed(state, reason, letter):
    """virDomainState and, when paused, its reason (5 I/O error, 10 guest panic) -> STATE."""
    assert poll_state(state, reason) == letter
