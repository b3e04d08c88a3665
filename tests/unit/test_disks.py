"""VM disks that name images (oned/api/disks.py, disk_save.py) on the real pools and an SQLite
store: what one.vm.allocate writes into each DISK, every refusal (naming the disk and the image,
leaving memory and database as they were), the letters of TARGET, one.vm.savedisk/disksaveas,
and what a VM that ends gives back (oned/lcm.py)."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from twisted.internet import defer, task

from oned.api import disks, vm_actions, vms
from oned.api.cloud import Caller, Cloud
from oned.api.templates import image_source
from oned.config import load_config
from oned.errors import (
    ActionNotAllowed,
    AllocateError,
    AuthorizationError,
    BadCall,
    NoSuchObject,
)
from oned.images import ImageManager
from oned.lcm import LifeCycle
from oned.pools import Pools
from oned.records import Image, User
from oned.states import ImageState, ImageType, VmState
from oned.store import Store
from oned.template import Template
from oned.vmfiles import VmFiles

ADMIN, HELEN, DAN = Caller(0, "oneadmin"), Caller(1, "helen"), Caller(2, "dan")
BASE = "NAME = vm\nMEMORY = 64\n"


class ImageChannel:
    """The image driver's channel, recording requests (never answered here)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.on_progress = None

    def request(self, action, oid, *args, timeout):
        self.sent.append(" ".join([action, str(oid), *map(str, args)]))
        return defer.Deferred()

    def cancel(self, oid) -> None:
        pass


@pytest.fixture
def cloud(tmp_path):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    config = load_config(
        f'DB = [ BACKEND = sqlite ]\nIMAGE_REPOSITORY_PATH = "{tmp_path}/repo"\n'
        'SAFE_DIRS = "/srv"\n'
    )
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
    pools = Pools()
    for user in (User(0, "oneadmin", "x"), User(1, "helen", "x"), User(2, "dan", "x")):
        store.insert_user(user)
        pools.put_user(user)
    cloud = Cloud(pools, store, config, logging.getLogger("t"), clock=clock.seconds)
    cloud.var_dir = str(tmp_path / "var")
    cloud.lcm = LifeCycle(cloud, VmFiles(cloud.var_dir, threaded=False), logging.getLogger("t"),
                          lambda host: None)  # fmt: skip
    cloud.images = ImageManager(cloud, ImageChannel(), clock, logging.getLogger("t"))  # type: ignore[arg-type]
    yield cloud
    store.close()


def add_image(cloud: Cloud, name: str, uid: int = 0, **fields) -> Image:
    """A READY image (unless ``state`` says otherwise) committed as the image API does."""
    iid = cloud.pools.take_id("image")
    tmpl = fields.pop("template", Template())
    fields = {"type": ImageType.OS, "public": False, "persistent": False,
              "source": f"/repo/{iid}", "state": ImageState.READY, **fields}  # fmt: skip
    img = Image(iid, uid, name, regtime=1, template=tmpl, **fields)
    cloud.store.insert_image(img)  # type: ignore[attr-defined]
    cloud.pools.put_image(img)
    return img


def allocate(cloud: Cloud, caller: Caller, *disk_lines: str, extra: str = "") -> int:
    return vms.allocate(
        cloud, caller, BASE + "".join(f"DISK = [ {d} ]\n" for d in disk_lines) + extra
    )


def vm_disks(cloud: Cloud, vid: int) -> list[dict[str, str]]:
    vm = cloud.pools.vms.get(vid)
    stored = cloud.store.get_vm(vid)  # type: ignore[attr-defined]
    assert stored.template.get_all("DISK") == vm.template.get_all("DISK")
    return vm.template.get_all("DISK")


def users(cloud: Cloud, iid: int) -> set[int]:
    return set(cloud.pools.image_users.get(iid, ()))


def refused(cloud: Cloud, error: type, pattern: str, caller: Caller, *disk_lines: str) -> None:
    """The allocation fails naming the thing, and nothing was taken: no VM, no id, no user."""
    before = (cloud.pools.next_ids["vm"], dict(cloud.pools.image_users))
    with pytest.raises(error, match=pattern):
        allocate(cloud, caller, *disk_lines)
    assert (cloud.pools.next_ids["vm"], dict(cloud.pools.image_users)) == before
    assert cloud.store.get_vm(before[0]) is None  # type: ignore[attr-defined]


# -- resolution at one.vm.allocate -------------------------------------------------------------


def test_an_image_by_name_gives_the_disk_its_source_and_is_used_by_the_vm(cloud):
    """2.0's disk_attribute: SOURCE, IMAGE, IMAGE_ID, TYPE DISK, a clone (CLONE YES, SAVE NO),
    TARGET hda for an OS image; the image counts the VM (USED) once the VM is stored."""
    img = add_image(cloud, "ttylinux", uid=1, template=Template([("DRIVER", "qcow2")]))
    vid = allocate(cloud, HELEN, 'IMAGE = "ttylinux"')
    (disk,) = vm_disks(cloud, vid)
    assert disk == {
        "IMAGE": "ttylinux", "IMAGE_ID": str(img.id), "IMAGE_UID": "1", "IMAGE_UNAME": "helen",
        "SOURCE": f"/repo/{img.id}", "TYPE": "DISK", "READONLY": "NO", "CLONE": "YES",
        "SAVE": "NO", "TARGET": "hda", "DRIVER": "qcow2",
    }  # fmt: skip
    assert users(cloud, img.id) == {vid}
    assert cloud.pools.image_state(img) == ImageState.USED
    assert b"&lt;RUNNING_VMS&gt;1&lt;/RUNNING_VMS&gt;" in cloud.pools.images.xml(img)


def test_an_image_by_id_and_a_name_that_disagrees_with_it(cloud):
    img = add_image(cloud, "ttylinux", uid=1)
    vid = allocate(cloud, HELEN, f"IMAGE_ID = {img.id}")
    assert vm_disks(cloud, vid)[0]["SOURCE"] == img.source
    refused(cloud, BadCall, r'Error in DISK 0: IMAGE "other" is not IMAGE_ID 0', HELEN,
            f"IMAGE_ID = {img.id}, IMAGE = other")  # fmt: skip
    refused(cloud, BadCall, r'IMAGE_ID = "x" is not a number', HELEN, "IMAGE_ID = x")


def test_a_name_is_the_owners_own_image_else_the_one_public_image(cloud):
    theirs = add_image(cloud, "base", uid=0, public=True)
    mine = add_image(cloud, "base", uid=1)
    assert vm_disks(cloud, allocate(cloud, HELEN, "IMAGE = base"))[0]["IMAGE_ID"] == str(mine.id)
    assert vm_disks(cloud, allocate(cloud, DAN, "IMAGE = base"))[0]["IMAGE_ID"] == str(theirs.id)
    cloud.pools.put_image(dataclasses.replace(mine, public=True))
    refused(cloud, BadCall, r'users \[0\], \[1\] each have a public image "base": say which with '
            "IMAGE_ID or IMAGE_UNAME", DAN, "IMAGE = base")  # fmt: skip
    vid = allocate(cloud, DAN, "IMAGE = base, IMAGE_UNAME = helen")
    assert vm_disks(cloud, vid)[0]["IMAGE_ID"] == str(mine.id)
    vid = allocate(cloud, DAN, "IMAGE = base, IMAGE_UID = 0")
    assert vm_disks(cloud, vid)[0]["IMAGE_ID"] == str(theirs.id)


def test_an_image_that_is_not_there_is_named(cloud):
    refused(cloud, NoSuchObject, r'^\[one.vm.allocate\] Error in DISK 0: there is no image '
            r'"ttylinux"$', HELEN, 'IMAGE = "ttylinux"')  # fmt: skip
    refused(cloud, NoSuchObject, r"^\[one.vm.allocate\] Error in DISK 1: there is no image \[7\]$",
            HELEN, "SOURCE = /srv/a.img", "IMAGE_ID = 7")  # fmt: skip
    refused(cloud, NoSuchObject, r'there is no user "nobody"', HELEN,
            "IMAGE = x, IMAGE_UNAME = nobody")  # fmt: skip


def test_another_users_private_image_is_refused_but_oneadmin_may_use_it(cloud):
    img = add_image(cloud, "secret", uid=2)
    refused(cloud, NoSuchObject, r'there is no image "secret"', HELEN, "IMAGE = secret")
    refused(cloud, AuthorizationError, r'User \[1\] not authorized to use image "secret" \[0\] '
            r"of user \[2\]", HELEN, f"IMAGE_ID = {img.id}")  # fmt: skip
    vid = allocate(cloud, ADMIN, f"IMAGE_ID = {img.id}")
    assert users(cloud, img.id) == {vid}


@pytest.mark.parametrize(
    ("state", "why"),
    [(ImageState.INIT, "INIT \\(it has no content yet\\)"),
     (ImageState.LOCKED, "LOCKED \\(being copied\\)"),
     (ImageState.DISABLED, "DISABLED \\(disabled\\)"),
     (ImageState.ERROR, "ERROR \\(Mon Nov 13 : the copy failed\\)")],
)  # fmt: skip
def test_an_image_that_is_not_ready_is_refused_naming_its_state(cloud, state, why):
    error = Template([("ERROR", "Mon Nov 13 : the copy failed")])
    add_image(cloud, "x", uid=1, state=state, template=error)
    refused(cloud, ActionNotAllowed, rf'Error in DISK 0: image "x" \[0\] is {why}', HELEN,
            "IMAGE = x")  # fmt: skip


def test_a_persistent_image_is_used_in_place_by_one_vm_at_a_time(cloud):
    img = add_image(cloud, "db", uid=1, persistent=True, type=ImageType.DATABLOCK)
    vid = allocate(cloud, HELEN, "IMAGE = db")
    (disk,) = vm_disks(cloud, vid)
    assert (disk["CLONE"], disk["SAVE"], disk["SAVE_AS_SOURCE"]) == ("NO", "YES", img.source)
    assert "SAVE_AS" not in disk and disk["TARGET"] == "hdd"
    refused(cloud, ActionNotAllowed, rf'image "db" \[0\] is persistent and in use by VM {vid}$',
            HELEN, "IMAGE = db")  # fmt: skip
    other = add_image(cloud, "db2", uid=1, persistent=True)
    refused(cloud, ActionNotAllowed, rf'Error in DISK 1: image "db2" \[{other.id}\] is persistent '
            rf"and in use by VM {vid + 1}$", HELEN, "IMAGE = db2", "IMAGE = db2")  # fmt: skip


def test_save_as_is_oneds_even_for_oneadmin(cloud):
    for attribute in ("SAVE_AS", "SAVE_AS_SOURCE"):
        refused(cloud, BadCall, rf"Error in DISK 0: DISK/{attribute} is set by oned", ADMIN,
                f"SOURCE = /srv/a.img, {attribute} = /repo/0")  # fmt: skip


def test_targets_follow_20s_letters_and_skip_those_taken(cloud):
    """OS a, CDROM c (read-only), DATABLOCKs d, e...; a letter the template gives (a DISK's or
    the CONTEXT's TARGET) is skipped; DEV_PREFIX of the image; the user's TARGET wins."""
    add_image(cloud, "os", type=ImageType.OS, public=True)
    add_image(cloud, "cd", type=ImageType.CDROM, public=True)
    add_image(cloud, "data", type=ImageType.DATABLOCK, public=True)
    add_image(cloud, "scsi", type=ImageType.DATABLOCK, public=True,
              template=Template([("DEV_PREFIX", "sd"), ("BUS", "scsi")]))  # fmt: skip
    vid = allocate(cloud, HELEN, "IMAGE = data", "IMAGE = cd", "IMAGE = os", "IMAGE = data",
                   "SOURCE = /srv/x.img, TARGET = hde", "IMAGE = scsi", "IMAGE = os, TARGET = vdb",
                   extra='CONTEXT = [ TARGET = "hdc" ]')  # fmt: skip
    got = [(d.get("TARGET"), d.get("TYPE"), d.get("READONLY")) for d in vm_disks(cloud, vid)]
    assert got == [
        ("hdd", "DISK", "NO"), ("hdf", "CDROM", "YES"), ("hda", "DISK", "NO"),
        ("hdg", "DISK", "NO"), ("hde", None, None), ("sdd", "DISK", "NO"), ("vdb", "DISK", "NO"),
    ]  # fmt: skip
    assert vm_disks(cloud, vid)[5]["BUS"] == "scsi"


def test_resolution_reads_no_store_and_does_not_grow_with_the_pool(cloud):
    """Allocation with an IMAGE disk stays cheap: dict lookups in the pools, no store reads
    (the only store call is the VM's insert), the same time with 1 image or 10,000."""
    calls: list[str] = []
    real = cloud.store

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    add_image(cloud, "ttylinux", public=True)

    def per_call() -> float:
        tmpl = Template([("DISK", {"IMAGE": "ttylinux"})])
        start = time.perf_counter()
        for _ in range(300):
            disks.resolve(cloud, HELEN, tmpl.copy(), 99, "one.vm.allocate")
        return (time.perf_counter() - start) / 300

    small = min(per_call() for _ in range(5))
    for i in range(10_000):
        cloud.pools.put_image(Image(1000 + i, i % 3, f"img{i}", 0, True, False, 1, Template()))
    large = min(per_call() for _ in range(5))
    assert large < 3 * small + 20e-6, (small, large)
    cloud.store = Counting()
    allocate(cloud, HELEN, "IMAGE = ttylinux")
    cloud.store = real
    assert calls == ["insert_vm"]


# -- a VM that ends gives its images back --------------------------------------------------------


def test_a_vm_that_ends_gives_its_images_back_and_a_saved_disk_is_checked(cloud):
    """2.0's release_disk_images: the images stop counting the VM (READY again, a persistent
    one free for the next VM); an image a disk was saved into is checked (images.saved:
    STAT), since this VM ended without the epilog that moves it, ERROR follows."""
    img = add_image(cloud, "db", uid=1, persistent=True)
    vid = allocate(cloud, HELEN, "IMAGE = db", "SOURCE = /srv/data.img")
    target = add_image(cloud, "saved", uid=1, state=ImageState.INIT, source="")
    disks.savedisk(cloud, HELEN, vid, 1, target.id)
    vm_actions.action(cloud, HELEN, "finalize", vid)
    assert cloud.store.get_vm(vid).state == VmState.DONE  # type: ignore[attr-defined]
    assert users(cloud, img.id) == set() and cloud.pools.image_state(img) == ImageState.READY
    assert cloud.images._channel.sent == [f"STAT {target.id} {image_source(cloud, target.id)}"]
    allocate(cloud, HELEN, "IMAGE = db")  # free again
    with pytest.raises(ActionNotAllowed, match=rf"VM {vid} is DONE: its disks are gone"):
        disks.savedisk(cloud, HELEN, vid, 1, target.id)


# -- one.vm.savedisk and one.vm.disksaveas ---------------------------------------------------------


def stored_image(cloud: Cloud, iid: int) -> Image | None:
    return next((i for i in cloud.store.load_images() if i.id == iid), None)  # type: ignore[attr-defined]


def test_savedisk_locks_the_image_with_its_file_and_marks_the_disk(cloud):
    vid = allocate(cloud, HELEN, "SOURCE = /srv/a.img", "TYPE = swap, SIZE = 64")
    img = add_image(cloud, "mine", uid=1, state=ImageState.INIT, source="")
    assert disks.savedisk(cloud, HELEN, vid, 0, img.id) == vid
    source = f"{cloud.config.image_repository_path}/{img.id}"
    disk = vm_disks(cloud, vid)[0]
    assert (disk["SAVE"], disk["SAVE_AS"], disk["SAVE_AS_SOURCE"]) == ("YES", str(img.id), source)
    for image in (cloud.pools.images.get(img.id), stored_image(cloud, img.id)):
        assert (image.state, image.source) == (ImageState.LOCKED, source)


def test_savedisk_refusals_name_the_vm_disk_or_image_and_change_nothing(cloud):
    vid = allocate(cloud, HELEN, "SOURCE = /srv/a.img", "TYPE = swap, SIZE = 64",
                   "SOURCE = /srv/b.img, CLONE = no")  # fmt: skip
    init = add_image(cloud, "init", uid=1, state=ImageState.INIT, source="")
    ready = add_image(cloud, "ready", uid=1)
    theirs = add_image(cloud, "theirs", uid=2, state=ImageState.INIT, source="")
    cases = [
        (DAN, vid, 0, init.id, AuthorizationError, r"not authorized to perform MANAGE on VM"),
        (HELEN, vid, 0, theirs.id, AuthorizationError, r"MANAGE on IMAGE \[2\]"),
        (HELEN, vid, 0, ready.id, ActionNotAllowed, r'image "ready" \[1\] is READY'),
        (HELEN, vid, 3, init.id, BadCall, r"VM 0 has no DISK 3 \(it has 3\)"),
        (HELEN, vid, 1, init.id, ActionNotAllowed, r"DISK 1 is a SWAP disk: not saved"),
        (HELEN, vid, 2, init.id, ActionNotAllowed, r"DISK 2 is linked in place \(CLONE = no\)"),
        (HELEN, vid, 0, 42, NoSuchObject, r"Error getting image \[42\]"),
        (HELEN, 42, 0, init.id, NoSuchObject, r"Error getting VM \[42\]"),
    ]
    for caller, v, d, i, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            disks.savedisk(cloud, caller, v, d, i)
    assert stored_image(cloud, init.id).state == ImageState.INIT
    assert "SAVE_AS" not in vm_disks(cloud, vid)[0]
    disks.savedisk(cloud, HELEN, vid, 0, init.id)
    again = add_image(cloud, "again", uid=1, state=ImageState.INIT, source="")
    with pytest.raises(ActionNotAllowed, match=rf"DISK 0 is saved into image {init.id} already"):
        disks.savedisk(cloud, HELEN, vid, 0, again.id)


def test_a_persistent_image_disk_is_not_saved_elsewhere(cloud):
    add_image(cloud, "db", uid=1, persistent=True)
    vid = allocate(cloud, HELEN, "IMAGE = db")
    target = add_image(cloud, "copy", uid=1, state=ImageState.INIT, source="")
    with pytest.raises(ActionNotAllowed, match=r'persistent image "db" itself'):
        disks.savedisk(cloud, HELEN, vid, 0, target.id)


def test_disksaveas_makes_the_image_locked_and_saves_into_it(cloud):
    add_image(cloud, "data", uid=1, type=ImageType.DATABLOCK)
    vid = allocate(cloud, HELEN, "IMAGE = data")
    iid = disks.disksaveas(cloud, HELEN, vid, 0, "snapshot", "", -1)
    img = cloud.pools.images.get(iid)
    assert (img.uid, img.name, img.type, img.state) == (1, "snapshot", 2, ImageState.LOCKED)
    assert stored_image(cloud, iid).source == img.source == image_source(cloud, iid)
    assert vm_disks(cloud, vid)[0]["SAVE_AS"] == str(iid)
    with pytest.raises(AllocateError, match=r'NAME is already taken by IMAGE "snapshot"'):
        disks.disksaveas(cloud, HELEN, allocate(cloud, HELEN, "IMAGE = data"), 0, "snapshot",
                         "OS", -1)  # fmt: skip
    with pytest.raises(BadCall, match=r"snapshot 3: there are no disk snapshots"):
        disks.disksaveas(cloud, HELEN, vid, 0, "s2", "OS", 3)
    with pytest.raises(BadCall, match=r'TYPE = "DISK": not one of OS, CDROM, DATABLOCK'):
        disks.disksaveas(cloud, HELEN, vid + 1, 0, "s2", "DISK", -1)
    assert sorted(i.name for i in cloud.store.load_images()) == ["data", "snapshot"]  # type: ignore[attr-defined]
