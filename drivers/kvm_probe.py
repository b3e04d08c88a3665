"""Whether KVM really runs guests on a host, and whether a domain just created really runs.

``/dev/kvm`` may exist where KVM cannot run a guest (nested virtualisation off or broken: the
vCPU crawls or spins, the guest never boots, while libvirt says ``running``). The probe asks
libvirt for its kvm domain capabilities, then boots a transient kvm domain from a 512-byte
floppy image whose boot sector resets the machine (``out 0x64, 0xfe``), with ``on_reboot``
destroy: a CPU that runs reaches it and the domain ends (about a second under KVM, two or three
under TCG). One that does not is still there after ``PROBE_SECONDS``: on a machine whose nested
KVM hangs real guests the floppy took 7 to 8 s on some runs and never finished on others (and a
SeaBIOS with no disk at all 7 to 14 s), so a KVM slower than TCG emulation is no KVM: the
deadline is 4 s. A test domain that crashes or pauses (KVM's internal errors) fails at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from xml.sax.saxutils import quoteattr

from drivers.kvm_connections import libvirt
from drivers.protocol import one_line
from drivers.serve import Logger

PROBE_SECONDS = 4.0  # a working KVM needs about one; TCG (not probed) two or three
BOOT_SECTOR = bytes([0xB0, 0xFE, 0xE6, 0x64, 0xF4, 0xEB, 0xFD]).ljust(510, b"\0") + b"\x55\xaa"
CHECK_SECONDS = 1.0  # how long a new domain must keep running with its CPU time advancing
STATE_NAMES = {0: "in no state", 1: "running", 2: "blocked", 3: "paused", 4: "shutting down"}
STATE_NAMES |= {5: "shut off", 6: "crashed", 7: "suspended by the power manager"}


def probe_xml(name: str, image: str) -> str:
    """A kvm domain booting ``image`` (BOOT_SECTOR) from floppy: it ends when its CPU runs."""
    return (
        f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>"
        "<os><type>hvm</type><boot dev='fd'/><bootmenu enable='no'/></os>"
        "<on_reboot>destroy</on_reboot><on_crash>preserve</on_crash><devices>"
        "<disk type='file' device='floppy'><driver name='qemu' type='raw'/>"
        f"<source file={quoteattr(image)}/><target dev='fda' bus='fdc'/><readonly/></disk>"
        "</devices></domain>"
    )


def ended(domain: Any) -> bool:
    """Whether the (transient) domain has stopped: inactive, or gone."""
    lv = libvirt()
    try:
        return not domain.isActive()
    except lv.libvirtError as err:
        if err.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
            return True
        raise


def kvm_problem(conn: Any, image: str, timeout: float = PROBE_SECONDS) -> str | None:
    """None when a kvm domain boots ``image`` (BOOT_SECTOR, on the host) on ``conn``'s host,
    else why it does not."""
    lv = libvirt()
    try:
        conn.getDomainCapabilities(None, None, None, "kvm", 0)
    except lv.libvirtError as err:
        return f"libvirt offers no kvm domains: {one_line(str(err))}"
    name = f"one-kvm-probe-{uuid.uuid4().hex[:8]}"
    try:
        domain = conn.createXML(probe_xml(name, image), 0)
    except lv.libvirtError as err:
        return f"a kvm test domain does not start: {one_line(str(err))}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ended(domain):
                return None
            stuck = _stopped(domain)
            if stuck:
                return f"a kvm test domain {stuck} instead of booting its 512-byte floppy"
            time.sleep(0.1)
        return f"a kvm test domain did not boot its 512-byte floppy in {timeout:g} s"
    finally:
        with suppress(lv.libvirtError):
            domain.destroy()


def _stopped(domain: Any) -> str | None:
    """``is paused``/``crashed`` (KVM's internal errors), or None; a vanished domain is None
    (``ended`` says so next)."""
    lv = libvirt()
    try:
        state, reason = domain.state()
    except lv.libvirtError:
        return None
    if state in (lv.VIR_DOMAIN_PAUSED, lv.VIR_DOMAIN_CRASHED):
        return f"is {STATE_NAMES[state]} ({reason})"
    return None


def not_running(domain: Any, new: bool, seconds: float = CHECK_SECONDS) -> str | None:
    """None when the domain runs (and, if ``new``, its CPU time advances within ``seconds``),
    else what it does instead; a domain that ended answers why."""
    lv = libvirt()
    try:
        state, reason = domain.state()
        if state != lv.VIR_DOMAIN_RUNNING:
            return f"{domain.name()} is {STATE_NAMES.get(state, f'in state {state}')} ({reason})"
        if not new:
            return None
        before = domain.info()[4]
        time.sleep(seconds)
        state, reason = domain.state()
        after = domain.info()[4]
    except lv.libvirtError as err:
        if err.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
            return f"{domain.name()} stopped right after it started"
        raise
    if state != lv.VIR_DOMAIN_RUNNING:
        return f"{domain.name()} is {STATE_NAMES.get(state, f'in state {state}')} ({reason})"
    if after <= before:
        return f"{domain.name()} did not use any CPU time in {seconds:g} s"
    return None


def warn(log: Logger, text: str) -> None:
    """A ``LOG W`` line (oned.log at WARNING)."""
    log.warning(text)


class Verdicts:
    """The domain type each host runs guests with, probed once per host for the driver's life:
    ``kvm``, or ``qemu`` with the reason KVM does not run there."""

    def __init__(self) -> None:
        self._found: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> tuple[str, str] | None:
        with self._lock:
            return self._found.get(host)

    def set(self, host: str, kind: str, why: str = "") -> None:
        with self._lock:
            self._found[host] = (kind, why)

    def probe(self, host: str, problem: Callable[[], str | None]) -> tuple[str, str]:
        """(``kvm``, "") or (``qemu``, why); ``problem()`` (kvm_problem) at the first call only."""
        found = self.get(host)
        if found is None:
            why = problem()
            found = ("qemu", why) if why else ("kvm", "")
            self.set(host, *found)
        return found
