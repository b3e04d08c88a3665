"""The tiny test guest on real libvirt: boot, context, suspend, save, ACPI shutdown, destroy.

Timings go to the test report (`record_property`) and, with `-s`, to stdout as `TIMING` lines.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.guest_fixtures import (
    BOOTED,
    ConsoleLog,
    TestGuest,
    cleanup_domain,
    context_iso,
    domain_xml,
    unique_name,
    wait_for_state,
)

libvirt = pytest.importorskip("libvirt")

pytestmark = pytest.mark.e2e

BOOT_SECONDS = 90  # ~7 s when the machine is idle; TCG on 2 busy cores is much slower
SHUTDOWN_SECONDS = 15  # ~2 s when idle
RUNNING = {libvirt.VIR_DOMAIN_RUNNING}
PAUSED = {libvirt.VIR_DOMAIN_PAUSED}
SHUTOFF = {libvirt.VIR_DOMAIN_SHUTOFF}


@dataclass
class Guest:
    """One booted test guest: its connection, domain, files and console."""

    conn: object
    name: str
    directory: Path
    xml: str
    console: ConsoleLog
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def domain(self):
        """The live domain, looked up again (save and restore give a new one)."""
        return self.conn.lookupByName(self.name)


def _record(record_property, guest: Guest, what: str, seconds: float) -> None:
    guest.timings[what] = seconds
    record_property(f"{what}_seconds", round(seconds, 2))
    print(f"TIMING {what} {seconds:.2f} s")


def _prepare(
    conn, test_guest: TestGuest, run_dir: Path, domain_type: str, context, mac, files
) -> Guest:
    """A new guest's directory, disk copy, context ISO (unless None) and domain XML."""
    name = unique_name()
    directory = run_dir / name
    directory.mkdir(mode=0o755)
    disk = directory / "disk.0"
    shutil.copyfile(test_guest.disk, disk)
    iso = context_iso(directory, context, files) if context is not None else None
    xml = domain_xml(
        name,
        test_guest.kernel,
        test_guest.initrd,
        disk,
        iso,
        directory / "console.log",
        domain_type=domain_type,
        mac=mac,
    )
    return Guest(conn, name, directory, xml, ConsoleLog(directory / "console.log"))


@pytest.fixture
def conn(libvirt_uri: str) -> Iterator[object]:
    """A connection to the real libvirtd."""
    libvirt.registerErrorHandler(lambda _context, _error: None, None)
    connection = libvirt.open(libvirt_uri)
    yield connection
    connection.close()


@pytest.fixture
def conn2(second_libvirt: str) -> Iterator[object]:
    """A connection to this session's second libvirtd."""
    connection = libvirt.open(second_libvirt)
    yield connection
    connection.close()


@pytest.fixture
def make_guest(conn, test_guest: TestGuest, run_dir: Path, domain_type: str, record_property):
    """Boot guests until BOOTED on their console; every one is destroyed afterwards."""
    guests: list[Guest] = []

    def make(context=None, mac=None, files=()) -> Guest:
        guest = _prepare(conn, test_guest, run_dir, domain_type, context, mac, files)
        guests.append(guest)
        started = time.monotonic()
        conn.createXML(guest.xml, 0)
        guest.console.wait_for(BOOTED, BOOT_SECONDS)
        _record(record_property, guest, "boot_to_booted", time.monotonic() - started)
        return guest

    yield make
    for guest in guests:
        cleanup_domain(conn, guest.name)
        shutil.rmtree(guest.directory, ignore_errors=True)


def test_the_guest_boots_and_prints_the_ip_and_hostname_of_its_context(make_guest, tmp_path):
    """The console shows ONECLOUD BOOTED, the context's IP and HOSTNAME, and init.sh's output."""
    init = tmp_path / "init.sh"
    init.write_text('echo "ONECLOUD INIT.SH for $HOSTNAME with $MOTTO"\n')
    context = {"IP": "10.11.12.13", "HOSTNAME": "ctx-host", "MOTTO": 'say "$hi"', "TARGET": "hdc"}

    guest = make_guest(context, files=[init])

    text = guest.console.text()
    assert "ONECLOUD CONTEXT IP=10.11.12.13 HOSTNAME=ctx-host" in text
    assert "vmcontext: CONTEXT cdrom /dev/sr0 on /mnt" in text
    assert 'ONECLOUD INIT.SH for ctx-host with say "$hi"' in text


def test_the_guest_takes_its_ip_from_its_nic_mac_when_the_context_has_none(make_guest):
    """Without IP in the context the virtio NIC gets the address in its MAC's last 4 bytes."""
    guest = make_guest({"HOSTNAME": "mac-host"}, mac="02:00:0a:00:01:02")

    text = guest.console.text()
    assert "vmcontext: eth0 10.0.1.2/24" in text
    assert "ONECLOUD CONTEXT IP=10.0.1.2 HOSTNAME=mac-host" in text


def test_a_guest_without_a_context_cdrom_still_boots(make_guest):
    """No cdrom: the console says so and the guest boots anyway."""
    guest = make_guest(None)

    assert "ONECLOUD CONTEXT none" in guest.console.text()


def test_an_acpi_shutdown_powers_the_guest_off_within_seconds(make_guest, record_property):
    """domain.shutdown() makes acpid run poweroff; the domain is off within SHUTDOWN_SECONDS."""
    guest = make_guest({"IP": "10.0.0.2"})
    domain = guest.domain

    started = time.monotonic()
    domain.shutdown()
    wait_for_state(domain, SHUTOFF, SHUTDOWN_SECONDS)

    _record(record_property, guest, "acpi_shutdown", time.monotonic() - started)
    assert "ONECLOUD POWER BUTTON" in guest.console.text()


def test_a_suspended_guest_resumes_and_still_answers_the_power_button(make_guest):
    """suspend() pauses the guest, resume() runs it again: it then honours an ACPI shutdown."""
    guest = make_guest({"IP": "10.0.0.3"})
    domain = guest.domain

    domain.suspend()
    assert domain.state()[0] in PAUSED
    domain.resume()
    assert domain.state()[0] in RUNNING

    domain.shutdown()
    wait_for_state(domain, SHUTOFF, SHUTDOWN_SECONDS)
    assert "ONECLOUD POWER BUTTON" in guest.console.text()


def test_a_guest_saved_to_a_file_is_restored_running(make_guest, conn, record_property):
    """save() stops the guest into a state file; restore() brings it back, alive."""
    guest = make_guest({"IP": "10.0.0.4"})
    checkpoint = guest.directory / "checkpoint"

    started = time.monotonic()
    guest.domain.save(str(checkpoint))
    _record(record_property, guest, "save", time.monotonic() - started)
    assert checkpoint.stat().st_size > 1_000_000
    assert guest.name not in [domain.name() for domain in conn.listAllDomains()]

    started = time.monotonic()
    conn.restore(str(checkpoint))
    _record(record_property, guest, "restore", time.monotonic() - started)
    domain = guest.domain
    assert domain.state()[0] in RUNNING

    domain.shutdown()
    wait_for_state(domain, SHUTOFF, SHUTDOWN_SECONDS)
    assert "ONECLOUD POWER BUTTON" in guest.console.text()


def test_destroy_stops_a_running_guest_at_once(make_guest, conn):
    """destroy() ends the domain immediately; a transient one disappears."""
    guest = make_guest({"IP": "10.0.0.5"})

    guest.domain.destroy()

    assert guest.name not in [domain.name() for domain in conn.listAllDomains()]


def test_a_guest_live_migrates_to_a_second_libvirtd_and_keeps_running(
    make_guest, conn, conn2, record_property
):
    """migrate(LIVE) moves the running guest to the other daemon, console and all."""
    guest = make_guest({"IP": "10.0.0.6"})
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_UNSAFE  # the storage is shared

    started = time.monotonic()
    moved = guest.domain.migrate(conn2, flags, None, None, 0)
    _record(record_property, guest, "live_migration", time.monotonic() - started)

    assert moved.state()[0] in RUNNING
    assert guest.name not in [domain.name() for domain in conn.listAllDomains()]
    try:
        moved.shutdown()
        wait_for_state(moved, SHUTOFF, SHUTDOWN_SECONDS)
        text = guest.console.text()
        assert text.index(BOOTED) < text.index("ONECLOUD POWER BUTTON")
    finally:
        cleanup_domain(conn2, guest.name)
