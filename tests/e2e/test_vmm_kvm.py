"""one_vmm_kvm as oned runs it, on real libvirtd with the tiny test guest.

The driver reaches a namespace host's libvirtd over ``qemu+ssh://<address>/system`` (the
namespace hosts share this machine's file system and libvirtd, so the VM_DIR paths are the same
everywhere and the domains appear on qemu:///system). Live migration goes from this machine's
libvirtd to the session's second libvirtd (``second_libvirt``), named by ``--host-uri``. Every
domain a test makes is destroyed afterwards. Timings go to the report (``record_property``) and,
with ``-s``, to stdout as ``TIMING`` lines.
"""

from __future__ import annotations

import random
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.e2e.driver_process import DriverProcess
from tests.e2e.guest_fixtures import BOOTED, ConsoleLog, TestGuest, cleanup_domain, context_iso

libvirt = pytest.importorskip("libvirt")

pytestmark = pytest.mark.e2e

BOOT_SECONDS = 120  # ~7 s when the machine is idle; TCG on 2 busy cores is much slower
ACTION_SECONDS = 120  # SAVE, RESTORE, MIGRATE of a 128 MB guest: a few seconds when idle


def vm_document(vid: int, template: dict[str, object], tm: str = "tm_ssh") -> str:
    """A VM's XML as one.vm.info gives it: values in CDATA, a vector as a dict (a list: many),
    one history record on a host with transfer manager ``tm``."""

    def element(name: str, value: object) -> str:
        if isinstance(value, dict):
            return f"<{name}>{''.join(element(k, v) for k, v in value.items())}</{name}>"
        return f"<{name}><![CDATA[{value}]]></{name}>"

    body = "".join(
        element(name, item)
        for name, value in template.items()
        for item in (value if isinstance(value, list) else [value])
    )
    history = (
        f"<HISTORY_RECORDS><HISTORY><SEQ>0</SEQ><TM_MAD>{tm}</TM_MAD></HISTORY></HISTORY_RECORDS>"
    )
    name = escape(f"one-{vid}")
    return f"<VM><ID>{vid}</ID><NAME>{name}</NAME>{history}<TEMPLATE>{body}</TEMPLATE></VM>"


@dataclass
class Cloud:
    """A front-end's var dir and a VM_DIR QEMU can reach, and the VMs made in them."""

    var: Path
    vm_dir: Path
    guest: TestGuest
    bridge: str
    vids: list[int]

    def prepare(self, acpi: str = "yes", tm: str = "tm_ssh") -> int:
        """A new VM: its deployment file here, its images (disk, context ISO) in VM_DIR."""
        vid = random.randrange(700_000, 800_000)  # no clash with the VMs of other test runs
        self.vids.append(vid)
        images = self.vm_dir / str(vid) / "images"
        images.mkdir(parents=True)
        (self.vm_dir / str(vid)).chmod(0o755)
        shutil.copyfile(self.guest.disk, images / "disk.0")
        context = {"IP": f"10.0.{vid // 256 % 256}.{vid % 256}", "HOSTNAME": f"vm{vid}"}
        iso = context_iso(self.var / str(vid), context)
        shutil.copyfile(iso, images / "disk.1")
        template = {
            "NAME": f"one-{vid}", "MEMORY": 128, "CPU": 1,
            "OS": {"KERNEL": self.guest.kernel, "INITRD": self.guest.initrd,
                   "KERNEL_CMD": "console=ttyS0"},
            "DISK": {"SOURCE": self.guest.disk, "TARGET": "hda", "CLONE": "yes"},
            "NIC": {"BRIDGE": self.bridge, "MAC": "02:00:0a:00:00:05", "MODEL": "virtio",
                    "NETWORK": "e2e", "IP": context["IP"]},
            "CONTEXT": context, "FEATURES": {"ACPI": acpi},
        }  # fmt: skip
        (self.var / str(vid) / "deployment.0").write_text(vm_document(vid, template, tm))
        return vid

    def remote_file(self, vid: int) -> str:
        return f"{self.vm_dir}/{vid}/images/deployment.0"

    def console(self, vid: int) -> ConsoleLog:
        return ConsoleLog(self.vm_dir / str(vid) / "console.log")


@pytest.fixture
def cloud(tmp_path, run_dir: Path, test_guest: TestGuest, test_hosts, libvirt_uri: str):
    """The var dir, the VM_DIR (where libvirt-qemu can read) and cleanup of every domain."""
    vm_dir = run_dir / f"vm-{uuid.uuid4().hex[:8]}"
    vm_dir.mkdir(mode=0o755)
    made = Cloud(tmp_path / "var", vm_dir, test_guest, f"{test_hosts.prefix}-br", [])
    yield made
    conn = libvirt.open(libvirt_uri)
    try:
        for vid in made.vids:
            cleanup_domain(conn, f"one-{vid}")
    finally:
        conn.close()
    shutil.rmtree(vm_dir, ignore_errors=True)


@pytest.fixture
def vmm(cloud: Cloud, domain_type: str) -> Iterator[Callable[[str], DriverProcess]]:
    """Start one_vmm_kvm with the given extra ARGUMENTS; every driver is finalized after."""
    started: list[DriverProcess] = []

    def start(extra: str = "", kind: str = domain_type) -> DriverProcess:
        arguments = f"--domain-type {kind} {extra}".strip()
        env = {"ONE_LOCATION": str(cloud.var.parent)}
        driver = DriverProcess("one_vmm_kvm", arguments, env=env)
        assert driver.init() == "INIT SUCCESS - -"
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.close()


def timed(record_property, what: str, started: float) -> None:
    seconds = time.monotonic() - started
    record_property(f"{what}_seconds", round(seconds, 2))
    print(f"TIMING {what} {seconds:.2f} s")


def ask(driver: DriverProcess, line: str, timeout: float = ACTION_SECONDS) -> str:
    action, vid = line.split()[:2]
    driver.send(line)
    return driver.reply(action, vid, timeout)


def test_a_vm_deploys_on_a_namespace_host_polls_saves_restores_and_shuts_down(
    cloud, vmm, test_hosts, record_property
):
    """The whole life of one guest through the driver, over qemu+ssh to the host."""
    host = test_hosts[0][1]
    driver = vmm()
    vid = cloud.prepare()
    name = f"one-{vid}"

    started = time.monotonic()
    assert ask(driver, f"DEPLOY {vid} {host} {cloud.remote_file(vid)} -") == (
        f"DEPLOY SUCCESS {vid} {name}"
    )
    cloud.console(vid).wait_for(f"ONECLOUD CONTEXT IP=10.0.\\S+ HOSTNAME=vm{vid}", BOOT_SECONDS)
    cloud.console(vid).wait_for(BOOTED, BOOT_SECONDS)
    timed(record_property, "deploy_to_booted", started)
    assert "<domain" in Path(cloud.remote_file(vid)).read_text()

    assert ask(driver, f"POLL {vid} {host} {name} -").startswith(
        f"POLL SUCCESS {vid} STATE=a USEDMEMORY=131072 NETRX="
    )
    assert " USEDCPU=" in ask(driver, f"POLL {vid} {host} {name} -")

    checkpoint = f"{cloud.vm_dir}/{vid}/images/checkpoint"
    started = time.monotonic()
    assert ask(driver, f"SAVE {vid} {host} {name} {checkpoint}") == f"SAVE SUCCESS {vid} -"
    timed(record_property, "save", started)
    assert Path(checkpoint).stat().st_size > 1_000_000
    assert ask(driver, f"POLL {vid} {host} {name} -") == f"POLL SUCCESS {vid} STATE=d"

    started = time.monotonic()
    assert ask(driver, f"RESTORE {vid} {host} {name} {checkpoint}") == f"RESTORE SUCCESS {vid} -"
    timed(record_property, "restore", started)
    assert ask(driver, f"POLL {vid} {host} {name} -").startswith(f"POLL SUCCESS {vid} STATE=a ")

    started = time.monotonic()
    assert ask(driver, f"SHUTDOWN {vid} {host} {name} -") == f"SHUTDOWN SUCCESS {vid} -"
    timed(record_property, "acpi_shutdown", started)
    assert "ONECLOUD POWER BUTTON" in cloud.console(vid).text()
    assert ask(driver, f"POLL {vid} {host} {name} -") == f"POLL SUCCESS {vid} STATE=d"


def test_cancel_destroys_a_vm_at_once_and_a_second_cancel_still_succeeds(cloud, vmm, test_hosts):
    """CANCEL ends the domain whatever the guest does; the domain being gone is success."""
    host = test_hosts[1][1]
    driver = vmm()
    vid = cloud.prepare()
    ask(driver, f"DEPLOY {vid} {host} {cloud.remote_file(vid)} -")

    assert ask(driver, f"CANCEL {vid} {host} one-{vid} -") == f"CANCEL SUCCESS {vid} -"
    assert ask(driver, f"POLL {vid} {host} one-{vid} -") == f"POLL SUCCESS {vid} STATE=d"
    assert ask(driver, f"CANCEL {vid} {host} one-{vid} -") == f"CANCEL SUCCESS {vid} -"


def test_a_shutdown_the_guest_ignores_fails_after_the_timeout_and_the_vm_keeps_running(
    cloud, vmm, test_hosts
):
    """Without ACPI the power button does nothing: FAILURE after --shutdown-timeout, still a."""
    host = test_hosts[0][1]
    driver = vmm("--shutdown-timeout 3")
    vid = cloud.prepare(acpi="no")
    ask(driver, f"DEPLOY {vid} {host} {cloud.remote_file(vid)} -")

    assert ask(driver, f"SHUTDOWN {vid} {host} one-{vid} -") == (
        f"SHUTDOWN FAILURE {vid} one-{vid} still running 3 s after ACPI"
    )
    assert ask(driver, f"POLL {vid} {host} one-{vid} -").startswith(f"POLL SUCCESS {vid} STATE=a")


def test_a_deploy_of_an_impossible_template_fails_naming_the_attribute(cloud, vmm, test_hosts):
    """A GRAPHICS type libvirt would not know never reaches the host."""
    driver = vmm()
    vid = cloud.prepare()
    deployment = cloud.var / str(vid) / "deployment.0"
    spice = "<GRAPHICS><TYPE>spice</TYPE></GRAPHICS><CONTEXT>"
    deployment.write_text(deployment.read_text().replace("<CONTEXT>", spice))

    reply = ask(driver, f"DEPLOY {vid} {test_hosts[0][1]} {cloud.remote_file(vid)} -")

    assert reply == (
        f"DEPLOY FAILURE {vid} cannot make the domain from {cloud.remote_file(vid)}: "
        'GRAPHICS/TYPE = "spice": must be vnc or sdl'
    )


def test_a_vm_on_tm_nfs_live_migrates_to_a_second_libvirtd_and_keeps_running(
    cloud, vmm, libvirt_uri, second_libvirt, record_property
):
    """MIGRATE moves the running guest between daemons without --unsafe-migration (its TM says
    the disks are shared); POLL finds it only on the new one."""
    driver = vmm(f"--host-uri src={libvirt_uri} --host-uri dst={second_libvirt}")
    vid = cloud.prepare(tm="tm_nfs")
    name = f"one-{vid}"
    ask(driver, f"DEPLOY {vid} src {cloud.remote_file(vid)} -")
    cloud.console(vid).wait_for(BOOTED, BOOT_SECONDS)

    started = time.monotonic()
    try:
        assert ask(driver, f"MIGRATE {vid} src {name} dst") == f"MIGRATE SUCCESS {vid} -"
        timed(record_property, "live_migration", started)
        assert ask(driver, f"POLL {vid} dst {name} -").startswith(f"POLL SUCCESS {vid} STATE=a ")
        assert ask(driver, f"POLL {vid} src {name} -") == f"POLL SUCCESS {vid} STATE=d"
        assert ask(driver, f"SHUTDOWN {vid} dst {name} -") == f"SHUTDOWN SUCCESS {vid} -"
        text = cloud.console(vid).text()
        assert text.index(BOOTED) < text.index("ONECLOUD POWER BUTTON")
    finally:
        conn = libvirt.open(second_libvirt)
        cleanup_domain(conn, name)
        conn.close()


def test_a_live_migration_libvirt_finds_unsafe_fails_naming_the_tm_and_the_fixes(
    cloud, vmm, libvirt_uri, second_libvirt
):
    """On tm_ssh (disks not shared) libvirt's refusal is the answer, with what to change."""
    driver = vmm(f"--host-uri src={libvirt_uri} --host-uri dst={second_libvirt}")
    vid = cloud.prepare(tm="tm_ssh")
    name = f"one-{vid}"
    assert ask(driver, f"DEPLOY {vid} src {cloud.remote_file(vid)} -").startswith("DEPLOY SUCC")
    try:
        reply = ask(driver, f"MIGRATE {vid} src {name} dst")
        assert reply.startswith(f"MIGRATE FAILURE {vid} cannot migrate {name} from src to dst: ")
        assert "Migration without shared storage is unsafe" in reply
        assert reply.endswith(
            "(its TM is tm_ssh, not shared storage: put the hosts on tm_nfs, "
            "or start one_vmm_kvm with --unsafe-migration)"
        )
        assert ask(driver, f"POLL {vid} src {name} -").startswith(f"POLL SUCCESS {vid} STATE=a ")
    finally:
        conn = libvirt.open(second_libvirt)
        cleanup_domain(conn, name)
        conn.close()


def kvm_runs_guests_here(domain_type: str) -> bool:
    """The session's probe (the test guest booted under KVM) found KVM working."""
    return domain_type == "kvm"


def test_auto_boots_the_guest_and_warns_where_kvm_cannot_run_it(
    cloud, vmm, test_hosts, domain_type
):
    """--domain-type auto (the default): the driver's own probe agrees with the session's; where
    KVM does not run guests (nested KVM off) the domain is qemu, a LOG W line says why, and the
    guest boots."""
    host = test_hosts[0][1]
    driver = vmm(kind="auto")
    vid = cloud.prepare()
    assert ask(driver, f"DEPLOY {vid} {host} {cloud.remote_file(vid)} -") == (
        f"DEPLOY SUCCESS {vid} one-{vid}"
    )
    cloud.console(vid).wait_for(BOOTED, BOOT_SECONDS)
    kind = ET.fromstring(Path(cloud.remote_file(vid)).read_text()).get("type")
    assert kind == domain_type
    warnings = [line for line in driver.seen if line.startswith(f"LOG W {vid} ")]
    if kvm_runs_guests_here(domain_type):
        assert warnings == []
    else:
        assert len(warnings) == 1 and f"KVM cannot run guests on {host} (" in warnings[0]
        assert warnings[0].endswith("): domain type qemu (TCG emulation)")
    second = cloud.prepare()
    assert ask(driver, f"DEPLOY {second} {host} {cloud.remote_file(second)} -").startswith(
        f"DEPLOY SUCCESS {second} "
    )
    assert not [line for line in driver.seen if line.startswith(f"LOG W {second} ")]


def test_forced_kvm_where_kvm_cannot_run_guests_fails_the_deploy_with_the_reason(
    cloud, vmm, test_hosts, domain_type
):
    """--domain-type kvm on a machine whose KVM hangs guests: FAILURE, not a domain that never
    boots."""
    if kvm_runs_guests_here(domain_type):
        pytest.skip("KVM runs guests on this machine")
    host = test_hosts[0][1]
    driver = vmm(kind="kvm")
    vid = cloud.prepare()
    reply = ask(driver, f"DEPLOY {vid} {host} {cloud.remote_file(vid)} -")
    assert reply.startswith(f"DEPLOY FAILURE {vid} KVM cannot run guests on {host} (")
    assert reply.endswith("start one_vmm_kvm with --domain-type auto or qemu")
    assert ask(driver, f"POLL {vid} {host} one-{vid} -") == f"POLL SUCCESS {vid} STATE=d"
