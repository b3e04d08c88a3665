"""REBOOT and RESET in each VMM driver: the dummy (scriptable), KVM on libvirt's test driver,
Xen through a fake ``xl`` (the recorded one of tests/fixtures/xen knows no ``reboot``: the
wrapper here answers it and hands every other command over). EC2: tests/functional/
test_ec2_reboot.py against moto."""

from __future__ import annotations

import os

import pytest

from tests.unit.test_vmm_dummy import drivers as dummy_drivers
from tests.unit.test_vmm_dummy import write_script
from tests.unit.test_vmm_kvm import driver as kvm_driver
from tests.unit.test_vmm_kvm import libvirt, remote
from tests.unit.test_vmm_xen import XL
from tests.unit.test_vmm_xen import xen as xen_driver

drivers, driver, xen = dummy_drivers, kvm_driver, xen_driver  # fixtures, by the names tests ask


def test_the_dummy_reboots_and_resets_at_once(drivers):
    """OpenNebula 3.x's wire: REBOOT/RESET <vid> <host> <deploy_id> -; SUCCESS with no info."""
    dummy = drivers()
    dummy.send("REBOOT 3 host01 dummy-3 -", "RESET 3 host01 dummy-3 -")
    assert dummy.reply("REBOOT", 3) == "REBOOT SUCCESS 3 -"
    assert dummy.reply("RESET", 3) == "RESET SUCCESS 3 -"


def test_the_dummy_fails_a_reboot_when_its_script_says_so(drivers, tmp_path):
    """Fault injection: REBOOT and RESET take rules as every other action."""
    script = tmp_path / "vmm.yaml"
    write_script(
        script,
        'REBOOT: {outcome: failure, message: "guest ignores ACPI", times: 1}\n'
        "RESET: {outcome: failure}\n",
    )
    dummy = drivers(f"--script {script}")
    dummy.send("REBOOT 4 h dummy-4 -")
    assert dummy.reply("REBOOT", 4) == "REBOOT FAILURE 4 guest ignores ACPI"
    dummy.send("REBOOT 4 h dummy-4 -", "RESET 4 h dummy-4 -")
    assert dummy.reply("REBOOT", 4) == "REBOOT SUCCESS 4 -"
    assert dummy.reply("RESET", 4) == "RESET FAILURE 4 RESET failed (scripted)"


def test_kvm_reboots_and_resets_the_running_domain_in_place(driver, tmp_path):
    """libvirt's reboot and reset: the same domain keeps running (POLL a before and after)."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    conn = libvirt.open("test:///default")
    before = conn.lookupByName("one-7").UUIDString()
    assert driver("REBOOT 7 host01 one-7 -") == "REBOOT SUCCESS 7 -"
    assert driver("RESET 7 host01 one-7 -") == "RESET SUCCESS 7 -"
    assert conn.lookupByName("one-7").UUIDString() == before
    conn.close()
    assert driver("POLL 7 host01 one-7 -").startswith("POLL SUCCESS 7 STATE=a ")


def test_kvm_fails_the_reboot_of_a_domain_that_is_not_there(driver):
    """Nothing to restart: FAILURE naming the domain and the host (oned then polls)."""
    assert driver("REBOOT 8 host01 one-8 -") == (
        "REBOOT FAILURE 8 one-8 is not running on host01: nothing to reboot"
    )
    assert driver("RESET 8 host01 one-8 -") == (
        "RESET FAILURE 8 one-8 is not running on host01: nothing to reset"
    )
    assert driver("REBOOT 8 host01") == "REBOOT FAILURE 8 REBOOT needs a host and a deploy id"


@pytest.fixture
def xl_reboot(tmp_path, monkeypatch, xen):
    """``xl reboot [-F] <name>``: recorded, and succeeding while the domain exists."""
    folder = tmp_path / "xlbin"
    folder.mkdir()
    wrapper = folder / "xl"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = reboot ]; then\n'
        '    echo "$*" >>"$XL_CALLS"\n'
        '    [ "$(cat "$XL_STATE" 2>/dev/null)" = running ] && exit 0\n'
        f'    cat "{XL.parent}/xl_list_missing.err" >&2\n'
        "    exit 1\n"
        "fi\n"
        f'exec "{XL}/xl" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return xen


def test_xen_reboot_is_xl_reboot_and_reset_adds_f(xl_reboot):
    """As OpenNebula 4.x's xen4 driver: reboot, and reboot -F (an ACPI reset when the HVM
    guest has no PV drivers)."""
    xl_reboot.set_state("running")
    assert xl_reboot("REBOOT 5 host01 one-5 -") == "REBOOT SUCCESS 5 -"
    assert xl_reboot("RESET 5 host01 one-5 -") == "RESET SUCCESS 5 -"
    assert xl_reboot.calls() == ["reboot one-5", "reboot -F one-5"]


def test_xen_fails_the_reboot_of_a_domain_xl_does_not_know_with_xls_message(xl_reboot):
    assert xl_reboot("RESET 5 host01 one-5 -") == (
        "RESET FAILURE 5 xl reboot -F failed on host01: "
        "one-5 is an invalid domain identifier (rc=-6)"
    )
