"""one.image.* on the real pools and an SQLite store (oned/api/images.py), without the image
manager (cloud.images None: a PATH image stays LOCKED). Each refusal names the thing and
leaves memory and database as they were."""

from __future__ import annotations

import dataclasses
import logging
import os
import xml.etree.ElementTree as ET
from xml.sax.saxutils import unescape

import pytest

from oned.api import images
from oned.api.cloud import Caller, Cloud
from oned.config import load_config
from oned.errors import (
    ActionNotAllowed,
    AllocateError,
    AuthorizationError,
    BadCall,
    NoSuchObject,
    TemplateParseError,
)
from oned.pools import Pools
from oned.records import User, Vm
from oned.states import ImageState, VmState
from oned.store import Store
from oned.template import parse

ADMIN, HELEN, DAN = Caller(0, "oneadmin"), Caller(1, "helen"), Caller(2, "dan")


@pytest.fixture
def cloud(tmp_path):
    config = load_config(
        f'DB = [ BACKEND = sqlite ]\nIMAGE_REPOSITORY_PATH = "{tmp_path}/repo"\n'
        f'SAFE_DIRS = "{tmp_path}/safe"\n'
    )
    store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
    pools = Pools()
    for user in (User(0, "oneadmin", "x"), User(1, "helen", "x"), User(2, "dan", "x")):
        store.insert_user(user)
        pools.put_user(user)
    (tmp_path / "safe").mkdir()
    (tmp_path / "safe" / "ttylinux.img").write_bytes(b"\0" * 4096)
    cloud = Cloud(pools, store, config, logging.getLogger("t"), clock=lambda: 1_700_000_000)
    yield cloud
    store.close()


def safe(cloud: Cloud, name: str = "ttylinux.img") -> str:
    return f"{cloud.config.safe_dirs[0]}/{name}"


def stored(cloud: Cloud) -> dict[int, tuple]:
    return {
        img.id: (img.name, img.state, img.public, img.persistent, img.template.to_text())
        for img in cloud.store.load_images()  # type: ignore[attr-defined]
    }


def xml(cloud: Cloud, caller: Caller, iid: int) -> ET.Element:
    return ET.fromstring(unescape(b"".join(images.info(cloud, caller, iid).parts).decode()))


def listed(cloud: Cloud, caller: Caller, *params: int) -> list[int]:
    text = b"".join(images.pool_info(cloud, caller, *params).parts).decode()
    doc = ET.fromstring(unescape(text))
    return [int(e.findtext("ID", "-1")) for e in doc.iter("IMAGE")]


def test_a_path_image_is_locked_with_its_file_in_the_repository(cloud):
    iid = images.allocate(cloud, HELEN, f'NAME = ttylinux\nPATH = "{safe(cloud)}"')
    img = cloud.pools.images.get(iid)
    assert (img.uid, img.state, img.path) == (1, ImageState.LOCKED, safe(cloud))
    assert img.source == f"{cloud.config.image_repository_path}/{iid}"
    assert img.regtime == 1_700_000_000
    assert stored(cloud)[iid][:2] == ("ttylinux", ImageState.LOCKED)
    doc = xml(cloud, HELEN, iid)
    assert (doc.findtext("NAME"), doc.findtext("STATE"), doc.findtext("UNAME")) == (
        "ttylinux", "4", "helen",
    )  # fmt: skip
    assert doc.findtext("TEMPLATE/PATH") == safe(cloud)


def test_source_is_oneadmins_and_ready_at_once(cloud):
    with pytest.raises(AuthorizationError, match=r"restricted attribute SOURCE"):
        images.allocate(cloud, HELEN, "NAME = x\nSOURCE = /srv/x.img")
    iid = images.allocate(cloud, ADMIN, "NAME = base\nSOURCE = /srv/x.img")
    assert cloud.pools.images.get(iid).state == ImageState.READY
    assert (xml(cloud, ADMIN, iid).findtext("SOURCE"), iid) == ("/srv/x.img", 0)


def test_a_users_source_when_allowed_is_judged_as_a_path(cloud):
    """With IMAGE_RESTRICTED_ATTR = "" a user's SOURCE must still be in SAFE_DIRS: it becomes
    the DISK/SOURCE of VMs, which a user may not name outside them."""
    cloud.config = dataclasses.replace(cloud.config, image_restricted_attr=())
    with pytest.raises(AuthorizationError, match=r"restricted attribute SOURCE: .*SAFE_DIRS"):
        images.allocate(cloud, HELEN, "NAME = x\nSOURCE = /etc/shadow")
    iid = images.allocate(cloud, HELEN, f'NAME = x\nSOURCE = "{safe(cloud)}"')
    assert cloud.pools.images.get(iid).state == ImageState.READY


def test_an_empty_datablock_and_an_init_image(cloud):
    block = images.allocate(cloud, HELEN, "NAME = data\nTYPE = DATABLOCK\nSIZE = 64")
    init = images.allocate(cloud, HELEN, "NAME = for-saveas")
    assert cloud.pools.images.get(block).state == ImageState.LOCKED
    assert cloud.pools.images.get(init).state == ImageState.INIT
    assert cloud.pools.images.get(init).source == ""


def test_names_are_unique_per_user(cloud):
    images.allocate(cloud, HELEN, "NAME = ttylinux")
    with pytest.raises(AllocateError, match=r'NAME is already taken by IMAGE 0 "ttylinux"\.$'):
        images.allocate(cloud, HELEN, "NAME = ttylinux")
    assert images.allocate(cloud, DAN, "NAME = ttylinux") == 1  # no id burnt by the refusal
    assert sorted(stored(cloud)) == [0, 1]


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ('NAME = x\nPATH = "{safe}/missing.img"', BadCall, r"PATH = .*missing.img.*No such file"),
        ('NAME = x\nPATH = "{safe}"', BadCall, r"PATH = .*safe\": not a regular file"),
        ("NAME = x\nPATH = /etc/hostname", AuthorizationError, "restricted attribute PATH"),
        ("NAME = x\nTYPE = FLOPPY", BadCall, r"Error in image template: TYPE = \"FLOPPY\""),
        ("NAME = x\nSIZE = 4", BadCall, "SIZE: only a DATABLOCK"),
        ("NAME = [", TemplateParseError, "Error parsing image template"),
        ("PATH = /x", BadCall, "NAME is missing"),
    ],
)
def test_bad_input_is_refused_naming_it_and_nothing_is_created(cloud, text, error, message):
    text = text.replace("{safe}", cloud.config.safe_dirs[0])
    with pytest.raises(error, match=r"^\[one\.image\.allocate\] .*" + message):
        images.allocate(cloud, HELEN, text)
    assert stored(cloud) == {} and len(cloud.pools.images) == 0
    assert cloud.pools.next_ids["image"] == 0


def test_an_unreadable_path_is_refused(cloud, tmp_path):
    path = tmp_path / "safe" / "secret.img"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: every file is readable")
        with pytest.raises(BadCall, match=r"secret.img\": not readable by oned"):
            images.allocate(cloud, HELEN, f'NAME = x\nPATH = "{path}"')
    finally:
        path.chmod(0o600)


def test_modern_datastore_must_be_the_default_one(cloud):
    assert images.allocate(cloud, HELEN, "NAME = a", 1) == 0
    assert images.allocate(cloud, HELEN, "NAME = b", -1) == 1
    with pytest.raises(BadCall, match=r"datastore \[0\] is not an image datastore; .*1 \(default"):
        images.allocate(cloud, HELEN, "NAME = c", 0)


def test_private_images_are_their_owners_and_oneadmins(cloud):
    mine = images.allocate(cloud, HELEN, "NAME = mine")
    shared = images.allocate(cloud, HELEN, "NAME = shared\nPUBLIC = YES")
    theirs = images.allocate(cloud, DAN, "NAME = theirs")
    with pytest.raises(
        AuthorizationError,
        match=r"^\[one\.image\.info\] User \[2\] not authorized to perform INFO on IMAGE \[0\]\.$",
    ):
        images.info(cloud, DAN, mine)
    assert xml(cloud, DAN, shared).findtext("PUBLIC") == "1"
    assert xml(cloud, ADMIN, mine).findtext("NAME") == "mine"
    assert listed(cloud, DAN, -1) == [shared, theirs]
    assert listed(cloud, DAN, -2) == [shared, theirs]
    assert listed(cloud, DAN, -3) == [theirs]
    assert listed(cloud, DAN, HELEN.uid) == [shared]
    assert listed(cloud, ADMIN, -2) == [mine, shared, theirs]
    assert listed(cloud, ADMIN, -3) == []
    assert listed(cloud, ADMIN, -2, 1, 2) == [shared, theirs]
    assert listed(cloud, ADMIN, -2, 0, -2) == [mine, shared]  # a page: offset 0, size 2
    with pytest.raises(BadCall, match="wrong filter flag -5"):
        listed(cloud, ADMIN, -5)
    with pytest.raises(NoSuchObject, match=r"\[one\.image\.info\] Error getting image \[9\]"):
        images.info(cloud, ADMIN, 9)


def test_only_the_owner_and_oneadmin_manage(cloud):
    iid = images.allocate(cloud, HELEN, "NAME = mine\nPUBLIC = YES")
    for call, args in [
        (images.delete, ()),
        (images.publish, (False,)),
        (images.persistent, (True,)),
        (images.enable, (False,)),
        (images.update, ("A = 1",)),
        (images.rmattr, ("A",)),
        (images.chmod, (1, 1, 0, 0, 0, 0, 0, 0, 0)),
    ]:
        with pytest.raises(AuthorizationError, match=r"User \[2\] not authorized .* IMAGE \[0\]"):
            call(cloud, DAN, iid, *args)
    assert images.publish(cloud, ADMIN, iid, False) == iid
    assert stored(cloud)[iid][2] is False


def test_publish_chmod_and_persistent_change_store_and_pool(cloud):
    iid = images.allocate(cloud, HELEN, "NAME = mine")
    images.publish(cloud, HELEN, iid, True)
    assert stored(cloud)[iid][2] is True and xml(cloud, DAN, iid).findtext("PUBLIC") == "1"
    images.chmod(cloud, HELEN, iid, -1, -1, -1, 0, -1, -1, 0, -1, -1)
    assert stored(cloud)[iid][2] is False
    with pytest.raises(AuthorizationError):
        images.info(cloud, DAN, iid)
    images.chmod(cloud, HELEN, iid, -1, -1, -1, -1, -1, -1, 1, -1, -1)
    assert stored(cloud)[iid][2] is True
    with pytest.raises(BadCall, match=r"permission bits are -1 .* not 2"):
        images.chmod(cloud, HELEN, iid, 2, -1, -1, -1, -1, -1, -1, -1, -1)
    images.persistent(cloud, HELEN, iid, True)
    assert stored(cloud)[iid][3] is True
    assert xml(cloud, HELEN, iid).findtext("PERSISTENT") == "1"


def test_enable_and_disable_follow_the_state(cloud):
    iid = images.allocate(cloud, ADMIN, "NAME = base\nSOURCE = /srv/x.img")
    with pytest.raises(ActionNotAllowed, match=r"Cannot enable image .base. \[0\] in state READY"):
        images.enable(cloud, ADMIN, iid, True)
    images.enable(cloud, ADMIN, iid, False)
    assert stored(cloud)[iid][1] == ImageState.DISABLED
    assert xml(cloud, ADMIN, iid).findtext("STATE") == "3"
    images.enable(cloud, ADMIN, iid, True)
    assert stored(cloud)[iid][1] == ImageState.READY
    locked = images.allocate(cloud, HELEN, f'NAME = t\nPATH = "{safe(cloud)}"')
    with pytest.raises(ActionNotAllowed, match="in state LOCKED: only a READY image is disabled"):
        images.enable(cloud, HELEN, locked, False)
    with pytest.raises(ActionNotAllowed, match=r"persistence of image .t. .* in state LOCKED"):
        images.persistent(cloud, HELEN, locked, True)


def use(cloud: Cloud, vid: int, disk: str) -> Vm:
    vm = Vm(vid, 1, f"vm{vid}", parse(f"DISK = [ {disk} ]"), state=VmState.ACTIVE)
    cloud.pools.vms.put(vm)
    cloud.pools.use_images(vm)
    return vm


def test_an_image_in_use_is_neither_deleted_disabled_nor_made_persistent(cloud):
    iid = images.allocate(cloud, ADMIN, "NAME = base\nSOURCE = /srv/x.img\nPUBLIC = YES")
    use(cloud, 4, f"IMAGE_ID = {iid}")
    use(cloud, 5, f"IMAGE_ID = {iid}")
    assert xml(cloud, ADMIN, iid).findtext("STATE") == "2"  # USED
    with pytest.raises(ActionNotAllowed, match=r'image "base" \[0\]: it is used by VMs 4, 5'):
        images.delete(cloud, ADMIN, iid)
    with pytest.raises(ActionNotAllowed, match="in state USED"):
        images.enable(cloud, ADMIN, iid, False)
    with pytest.raises(ActionNotAllowed, match="it is used by VMs 4, 5"):
        images.persistent(cloud, ADMIN, iid, True)
    assert stored(cloud)[iid][1:4] == (ImageState.READY, True, False)


def test_an_image_a_vm_will_save_into_is_not_deleted(cloud):
    iid = images.allocate(cloud, HELEN, "NAME = saved")
    use(cloud, 6, f'SOURCE = /x, SAVE_AS = "{iid}"')
    with pytest.raises(ActionNotAllowed, match=r'"saved" \[0\]: VM 6 will save a disk into it'):
        images.delete(cloud, HELEN, iid)
    cloud.pools.vms.get(6).state = VmState.DONE
    assert images.delete(cloud, HELEN, iid) == iid


def test_delete_removes_row_and_pool_entry_and_keeps_the_id(cloud):
    iid = images.allocate(cloud, HELEN, f'NAME = t\nPATH = "{safe(cloud)}"')  # LOCKED: copying
    assert images.delete(cloud, HELEN, iid) == iid
    assert stored(cloud) == {} and cloud.pools.images.get(iid) is None
    assert (HELEN.uid, "t") not in cloud.pools.image_names
    assert images.allocate(cloud, HELEN, "NAME = t") == 1
    with pytest.raises(NoSuchObject):
        images.delete(cloud, HELEN, iid)


def test_update_2_0_sets_one_attribute_modern_replaces_or_merges(cloud):
    iid = images.allocate(cloud, HELEN, "NAME = t\nDESCRIPTION = old\nA = 1")
    images.update(cloud, HELEN, iid, "description", "new one")
    assert stored(cloud)[iid][4] == 'NAME=t\nDESCRIPTION="new one"\nA=1\nDEV_PREFIX=hd\n'
    images.update(cloud, HELEN, iid, "B = 2", 1)
    assert stored(cloud)[iid][4].endswith("DEV_PREFIX=hd\nB=2\n")
    images.update(cloud, HELEN, iid, "C = 3\nNAME = renamed")
    assert stored(cloud)[iid][4] == "C=3\nNAME=renamed\n"
    assert cloud.pools.images.get(iid).name == "t"  # NOTE: only the text changes
    assert xml(cloud, HELEN, iid).findtext("TEMPLATE/C") == "3"
    images.rmattr(cloud, HELEN, iid, "c")
    assert stored(cloud)[iid][4] == "NAME=renamed\n"
    with pytest.raises(BadCall, match=r"invalid template attribute name 'A B'"):
        images.update(cloud, HELEN, iid, "A B", "x")
    with pytest.raises(BadCall, match=r"merge must be 0 .* not 2"):
        images.update(cloud, HELEN, iid, "A = 1", 2)
    with pytest.raises(AuthorizationError, match="restricted attribute SOURCE"):
        images.update(cloud, HELEN, iid, "SOURCE", "/etc/shadow")
    with pytest.raises(BadCall, match="control character"):
        images.update(cloud, HELEN, iid, "A", "\x1b[2J")
    assert stored(cloud)[iid][4] == "NAME=renamed\n"


def test_a_public_image_is_seen_by_all_and_updated_by_its_owner_only(cloud):
    iid = images.allocate(cloud, ADMIN, "NAME = base\nSOURCE = /srv/x.img\nPUBLIC = YES")
    assert xml(cloud, HELEN, iid).findtext("SOURCE") == "/srv/x.img"
    with pytest.raises(AuthorizationError, match="perform MANAGE on IMAGE"):
        images.update(cloud, HELEN, iid, "A = 1", 1)
    images.update(cloud, ADMIN, iid, "A = 1", 1)
    assert "SOURCE=/srv/x.img" in stored(cloud)[iid][4]
