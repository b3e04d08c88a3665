"""Issue 13's walk-through on a real guest: the seed's ttylinux image uploaded with
``oneimage create --wait``, a VM booted from ``DISK = [ IMAGE = "ttylinux" ]`` on a namespace
host over tm_ssh, its disk written by the guest, saved with ``onevm saveas`` at shutdown, and
the saved image holding what the guest wrote."""

from __future__ import annotations

from pathlib import Path

import pyone
import pytest

from tests.e2e.cloud_fixtures import guest_oned, monitored_host
from tests.e2e.guest_fixtures import ConsoleLog
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

MARK = b"ONECLOUD SAVED DISK"
# Run by the guest's vmcontext from the CONTEXT cdrom: write MARK at the start of the first
# disk (hda is /dev/sda under libata) and make it durable before the shutdown.
INIT_SH = """#!/bin/sh
for d in /dev/sda /dev/vda /dev/hda; do
    if [ -b "$d" ]; then
        printf 'ONECLOUD SAVED DISK' | dd of="$d" bs=512 conv=notrunc,fsync 2>/dev/null
        echo "ONECLOUD WROTE $d"
        break
    fi
done
"""


@pytest.fixture
def cloud(libvirt_uri, test_guest, run_dir, test_hosts, domain_type):
    """oned with the repository under its var/, one namespace host over tm_ssh."""
    oned = guest_oned(run_dir, domain_type)
    location = oned.location
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr
    one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    _, address = test_hosts[1]
    monitored_host(one, address)
    yield oned, one, location
    for vm in one.vmpool.info(-2, -1, -1, -1).VM:
        one.vm.action("finalize", vm.ID)
    oned.run_cli("one", "stop")


def test_a_guest_boots_from_a_repository_image_and_its_disk_is_saved_as_a_new_image(
    cloud, test_guest, tmp_path
):
    oned, one, location = cloud
    (tmp_path / "ttylinux.one").write_text(
        f'NAME = ttylinux\nTYPE = OS\nPATH = "{test_guest.disk}"\n'
        'DESCRIPTION = "the seed\'s ttylinux image"\n'
    )
    created = oned.run_cli("oneimage", "create", str(tmp_path / "ttylinux.one"), "--wait")
    assert created.returncode == 0, created.stderr
    assert "READY" in created.stdout
    image = one.image.info(0)
    source = image.SOURCE
    assert source.startswith(str(location / "var" / "images"))
    assert Path(source).read_bytes() == Path(test_guest.disk).read_bytes()
    listed = oned.run_cli("oneimage", "list").stdout
    assert "ttylinux" in listed and "rdy" in listed

    (tmp_path / "init.sh").write_text(INIT_SH)
    (tmp_path / "vm.one").write_text(
        f"NAME = ttylinux\nCPU = 0.1\nMEMORY = 128\n"
        f'OS = [ KERNEL = "{test_guest.kernel}", INITRD = "{test_guest.initrd}",'
        f' KERNEL_CMD = "console=ttyS0" ]\n'
        'DISK = [ IMAGE = "ttylinux" ]\n'
        f'CONTEXT = [ HOSTNAME = "$NAME", FILES = "{tmp_path}/init.sh", TARGET = "hdc" ]\n'
    )
    assert oned.run_cli("onevm", "create", str(tmp_path / "vm.one")).returncode == 0
    vm = one.vm.info(0)
    assert vm.TEMPLATE["DISK"]["SOURCE"] == source
    assert vm.TEMPLATE["DISK"]["IMAGE_ID"] == "0"
    wait_for(lambda: one.vm.info(0).LCM_STATE == 3, 120)
    assert one.image.info(0).RUNNING_VMS == 1
    assert one.image.info(0).STATE == 2  # USED
    console = ConsoleLog(location / "vms" / "0" / "console.log")
    console.wait_for(r"ONECLOUD WROTE /dev/\w+", 120)
    console.wait_for(r"ONECLOUD BOOTED", 60)

    saved = oned.run_cli("onevm", "saveas", "0", "0", "ttylinux-saved")
    assert saved.returncode == 0, saved.stderr
    new = next(i for i in one.imagepool.info(-2, -1, -1).IMAGE if i.NAME == "ttylinux-saved")
    assert new.STATE == 4  # LOCKED until the VM is shut down
    one.vm.action("shutdown", 0)
    wait_for(lambda: one.vm.info(0).STATE == 6, 120)
    wait_for(lambda: one.image.info(new.ID).STATE == 1, 60)
    saved_image = one.image.info(new.ID)
    assert Path(saved_image.SOURCE).read_bytes().startswith(MARK)
    # the original is untouched (it was cloned, not used in place) and free again
    assert not Path(source).read_bytes().startswith(MARK)
    original = one.image.info(0)
    assert original.STATE == 1 and original.RUNNING_VMS == 0
