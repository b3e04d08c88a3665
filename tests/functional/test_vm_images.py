"""VMs that use images, on a real oned with the dummy VMM/IM, the real one_tm (tm_nfs: VM_DIR is
oned's var dir, every path local) and the real one_image driver: DISK = [ IMAGE = ... ] gets
the image's SOURCE and a clone of its bytes, RUNNING_VMS and USED follow the VM, a persistent
image is linked in place and refuses a second VM, shutdown gives it back whole, and a disk
saved with one.vm.savedisk / disksaveas is the image's content after shutdown (ERROR when the
VM is deleted without an epilog)."""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

import pyone
import pytest

from tests.functional.conftest import as_user
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

SESSION = "oneadmin:onecloud"
READY, USED, LOCKED, ERROR = 1, 2, 4, 5
ACTIVE, DONE, RUNNING = 3, 6, 3
CONTENT = bytes(range(256)) * 4096  # 1 MB a test can recognise


class Cloud:
    def __init__(self, oned: OnedProcess, tmp: Path, tm: str) -> None:
        self.oned, self.tmp = oned, tmp
        self.admin = pyone.OneServer(oned.endpoint, session=SESSION)
        self.raw = xmlrpc.client.ServerProxy(oned.endpoint)
        # tm_ssh on a host that is the front end itself: one_tm works on it locally
        host = "localhost" if tm == "tm_ssh" else "host01"
        self.hid = self.admin.host.allocate(host, "im_dummy", "vmm_dummy", tm)
        wait_for(lambda: self.admin.host.info(self.hid).STATE == 2)

    def image(self, name: str, *extra: str, content: bytes = CONTENT) -> int:
        """oneadmin's image registered with SOURCE (READY at once), public."""
        path = self.tmp / f"{name}.img"
        path.write_bytes(content)
        text = "\n".join([f"NAME = {name}", f'SOURCE = "{path}"', "PUBLIC = YES", *extra])
        return self.call("one.image.allocate", text)

    def call(self, method: str, *args: object, session: str = SESSION):
        reply = getattr(self.raw, method)(session, *args)
        assert reply[0], reply[1]
        return reply[1]

    def refused(self, method: str, *args: object, session: str = SESSION) -> str:
        reply = getattr(self.raw, method)(session, *args)
        assert not reply[0], reply
        return reply[1]

    def image_info(self, iid: int) -> ET.Element:
        return ET.fromstring(self.call("one.image.info", iid))

    def image_state(self, iid: int) -> tuple[int, int]:
        doc = self.image_info(iid)
        return int(doc.findtext("STATE", "-1")), int(doc.findtext("RUNNING_VMS", "-1"))

    def vm_state(self, vid: int) -> tuple[int, int]:
        doc = ET.fromstring(self.call("one.vm.info", vid))
        return int(doc.findtext("STATE", "-1")), int(doc.findtext("LCM_STATE", "-1"))

    def disk(self, vid: int, i: int = 0) -> Path:
        return self.oned.location / "var" / str(vid) / "images" / f"disk.{i}"

    def run(self, vid: int) -> None:
        self.admin.vm.deploy(vid, self.hid)
        wait_for(lambda: self.vm_state(vid) == (ACTIVE, RUNNING), timeout=60)

    def end(self, vid: int, action: str = "shutdown") -> None:
        self.call("one.vm.action", action, vid)
        wait_for(lambda: self.vm_state(vid)[0] == DONE, timeout=60)


@pytest.fixture
def cloud(tmp_path, request):
    """oned with one host: tm_nfs, or (parametrized) tm_ssh."""
    oned = OnedProcess(tmp_path / "one").set(VM_POLLING_INTERVAL=1)
    oned.start()
    try:
        yield Cloud(oned, tmp_path, getattr(request, "param", "tm_nfs"))
    finally:
        oned.stop()


def test_a_vm_gets_a_clone_of_the_image_which_counts_it_until_it_ends(cloud):
    iid = cloud.image("ttylinux")
    source = cloud.image_info(iid).findtext("SOURCE")
    cloud.admin.user.allocate("helen", "pw", "core", [])
    helen = as_user(cloud.oned, "helen:pw")
    vid = helen.vm.allocate('NAME = a\nMEMORY = 64\nDISK = [ IMAGE = "ttylinux" ]')
    disk = helen.vm.info(vid).TEMPLATE["DISK"]
    assert (disk["SOURCE"], disk["IMAGE_ID"], disk["CLONE"]) == (source, str(iid), "YES")
    assert cloud.image_state(iid) == (USED, 1)
    assert [int(e.text) for e in cloud.image_info(iid).iter("ID")][1:] == [vid]  # VMS/ID
    cloud.run(vid)
    assert not cloud.disk(vid).is_symlink() and cloud.disk(vid).read_bytes() == CONTENT
    cloud.disk(vid).write_bytes(b"the guest wrote this")  # a clone: the image is untouched
    cloud.end(vid)
    assert cloud.image_state(iid) == (READY, 0)
    assert Path(source).read_bytes() == CONTENT


def test_a_missing_or_private_image_is_refused_naming_it(cloud):
    iid = cloud.image("private", "PUBLIC = NO")
    cloud.admin.user.allocate("helen", "pw", "core", [])
    text = 'NAME = a\nMEMORY = 64\nDISK = [ IMAGE = "{}" ]'
    message = cloud.refused("one.vm.allocate", text.format("nothing"), session="helen:pw")
    assert message == '[one.vm.allocate] Error in DISK 0: there is no image "nothing"'
    message = cloud.refused("one.vm.allocate", text.format("private"), session="helen:pw")
    assert message == '[one.vm.allocate] Error in DISK 0: there is no image "private"'
    by_id = f"NAME = a\nMEMORY = 64\nDISK = [ IMAGE_ID = {iid} ]"
    message = cloud.refused("one.vm.allocate", by_id, session="helen:pw")
    assert f'not authorized to use image "private" [{iid}] of user [0]' in message


BOTH_TMS = pytest.mark.parametrize("cloud", ["tm_nfs", "tm_ssh"], indirect=True)


@BOTH_TMS
def test_a_persistent_image_is_used_in_place_by_one_vm_and_given_back_whole(cloud):
    iid = cloud.image("db", "PERSISTENT = YES", "TYPE = DATABLOCK")
    source = Path(cloud.image_info(iid).findtext("SOURCE"))
    text = 'NAME = a\nMEMORY = 64\nDISK = [ IMAGE = "db" ]'
    vid = cloud.admin.vm.allocate(text)
    message = cloud.refused("one.vm.allocate", text)
    where = "[one.vm.allocate] Error in DISK 0"
    assert message == f'{where}: image "db" [{iid}] is persistent and in use by VM {vid}'
    cloud.run(vid)
    assert cloud.disk(vid).is_symlink() and cloud.disk(vid).resolve() == source.resolve()
    cloud.disk(vid).write_bytes(b"written in place")
    cloud.end(vid)
    assert not source.is_symlink() and source.read_bytes() == b"written in place"
    assert cloud.image_state(iid) == (READY, 0)
    assert cloud.admin.vm.allocate(text) > vid  # free again


@BOTH_TMS
def test_savedisk_makes_the_image_the_disks_content_after_shutdown(cloud):
    """2.0's flow (onevm saveas): an INIT image, one.vm.savedisk, shutdown: the epilog moves the
    disk into the repository and the image is READY with exactly the disk's bytes."""
    cloud.image("ttylinux")
    vid = cloud.admin.vm.allocate('NAME = a\nMEMORY = 64\nDISK = [ IMAGE = "ttylinux" ]')
    saved = cloud.call("one.image.allocate", "NAME = saved")
    assert cloud.image_state(saved)[0] == 0  # INIT
    cloud.run(vid)
    cloud.call("one.vm.savedisk", vid, 0, saved)
    assert cloud.image_state(saved)[0] == LOCKED
    cloud.disk(vid).write_bytes(b"configured by the guest" * 1000)
    cloud.end(vid)
    wait_for(lambda: cloud.image_state(saved)[0] == READY, timeout=60)
    doc = cloud.image_info(saved)
    assert Path(doc.findtext("SOURCE")).read_bytes() == b"configured by the guest" * 1000
    boot = cloud.admin.vm.allocate('NAME = b\nMEMORY = 64\nDISK = [ IMAGE = "saved" ]')
    assert cloud.admin.vm.info(boot).TEMPLATE["DISK"]["SOURCE"] == doc.findtext("SOURCE")


def test_disksaveas_then_delete_without_epilog_leaves_the_image_in_error(cloud):
    """Modern one.vm.disksaveas makes the image; a VM deleted while RUNNING runs no epilog, so
    nothing reaches the repository: the image goes ERROR, naming why."""
    cloud.image("ttylinux")
    vid = cloud.admin.vm.allocate('NAME = a\nMEMORY = 64\nDISK = [ IMAGE = "ttylinux" ]')
    cloud.run(vid)
    iid = cloud.admin.vm.disksaveas(vid, 0, "snap", "", -1)
    assert cloud.image_info(iid).findtext("NAME") == "snap"
    assert cloud.image_state(iid)[0] == LOCKED
    cloud.end(vid, "finalize")
    wait_for(lambda: cloud.image_state(iid)[0] == ERROR, timeout=60)
    assert cloud.image_info(iid).findtext("TEMPLATE/ERROR")


def test_the_vms_an_image_has_are_known_again_after_kill_9(cloud):
    """image_users is derived from the VMs at load: after kill -9 a persistent image is still
    in use (USED, the second VM refused), and a VM that saves a disk keeps its image LOCKED."""
    iid = cloud.image("db", "PERSISTENT = YES")
    text = 'NAME = a\nMEMORY = 64\nDISK = [ IMAGE = "db" ]'
    vid = cloud.admin.vm.allocate(text)
    other = cloud.admin.vm.allocate('NAME = b\nMEMORY = 64\nDISK = [ SOURCE = "/srv/x.img" ]')
    saved = cloud.call("one.image.allocate", "NAME = saved")
    cloud.call("one.vm.savedisk", other, 0, saved)
    cloud.oned.stop(signal.SIGKILL)
    cloud.oned.start()
    assert cloud.image_state(iid) == (USED, 1)
    assert "is persistent and in use by VM" in cloud.refused("one.vm.allocate", text)
    assert cloud.image_state(saved)[0] == LOCKED
    cloud.end(vid, "finalize")
    assert cloud.image_state(iid) == (READY, 0)


@pytest.mark.parametrize("cloud", ["tm_dummy"], indirect=True)
def test_with_tm_dummy_a_vm_uses_an_image_and_gives_it_back_without_copies(cloud):
    """tm_dummy moves nothing (testing, EC2 hosts): the image is still resolved, counted while
    the VM lives and given back when it ends; no disk appears in the VM's folder."""
    iid = cloud.image("ttylinux")
    vid = cloud.admin.vm.allocate(f'NAME = d\nMEMORY = 64\nDISK = [ IMAGE_ID = "{iid}" ]')
    assert cloud.admin.vm.info(vid).TEMPLATE["DISK"]["IMAGE"] == "ttylinux"
    cloud.run(vid)
    assert cloud.image_state(iid) == (USED, 1)
    assert not cloud.disk(vid).exists()
    cloud.end(vid)
    assert cloud.image_state(iid) == (READY, 0)
