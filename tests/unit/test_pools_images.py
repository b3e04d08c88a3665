"""Images in the pools (issue 13): which VMs use each image is derived from their DISKs'
IMAGE_ID, gives RUNNING_VMS, VMS/ID and USED, keeps the cached XML right, and is rebuilt when
oned loads its pools from a real SQLite store."""

from __future__ import annotations

import logging
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

import pytest

from oned.bootstrap import load_pools
from oned.config import load_config
from oned.pools import Pools, disk_image_ids
from oned.records import Image, User, Vm
from oned.states import ImageState, ImageType, VmState
from oned.store import Store
from oned.template import Template

LOG = logging.getLogger("t")


def an_image(iid: int, name: str = "ttylinux", uid: int = 1, state: int = ImageState.READY):
    template = Template([("NAME", name)])
    img = Image(iid, uid, name, ImageType.OS, False, False, 1764637200, template)
    img.state, img.source = state, f"/var/lib/one/images/{iid}"
    return img


def a_vm(vid: int, *image_ids: int | str, state: int = VmState.ACTIVE) -> Vm:
    disks = [("DISK", {"IMAGE_ID": str(iid), "SOURCE": f"/i/{iid}"}) for iid in image_ids]
    template = Template([("MEMORY", "64"), *disks, ("DISK", {"SOURCE": "/plain.img"})])
    return Vm(vid, 1, f"one-{vid}", template, state=state)


def shown(pools: Pools, iid: int) -> ElementTree.Element:
    img = pools.images.get(iid)
    assert img is not None
    # the cache holds the document escaped once more, as it goes into an XML-RPC string
    return ElementTree.fromstring(unescape(pools.images.xml(img).decode()))


def summary(root: ElementTree.Element) -> tuple[str | None, ...]:
    ids = ",".join(e.text or "" for e in root.findall("VMS/ID"))
    return root.findtext("STATE"), root.findtext("RUNNING_VMS"), ids


@pytest.fixture
def pools() -> Pools:
    pools = Pools()
    pools.put_user(User(1, "helen", "x"))
    pools.put_image(an_image(0))
    pools.put_image(an_image(1, "data"))
    return pools


def test_an_image_used_by_two_vms_is_used_until_both_give_it_back(pools: Pools) -> None:
    """The cached document follows without anyone calling changed()."""
    assert summary(shown(pools, 0)) == ("1", "0", "")
    first, second = a_vm(5, 0), a_vm(3, 0, 1)
    pools.use_images(first)
    pools.use_images(second)
    assert summary(shown(pools, 0)) == ("2", "2", "3,5")
    assert summary(shown(pools, 1)) == ("2", "1", "3")
    assert pools.image_state(pools.images.get(0)) == ImageState.USED  # type: ignore[arg-type]
    assert pools.release_images(second) == [0, 1]
    assert summary(shown(pools, 0)) == ("2", "1", "5")
    assert summary(shown(pools, 1)) == ("1", "0", "")
    assert pools.release_images(first) == [0]
    assert summary(shown(pools, 0)) == ("1", "0", "")
    assert pools.image_users == {}


def test_releasing_twice_gives_back_nothing_the_second_time(pools: Pools) -> None:
    vm = a_vm(5, 0)
    pools.use_images(vm)
    assert pools.release_images(vm) == [0]
    assert pools.release_images(vm) == []


def test_the_pool_summary_follows_too(pools: Pools) -> None:
    img = pools.images.get(0)
    assert img is not None
    pools.images.xml_short(img)
    pools.use_images(a_vm(5, 0))
    assert b"&lt;RUNNING_VMS&gt;1&lt;" in pools.images.xml_short(img)


def test_only_a_ready_image_shows_used(pools: Pools) -> None:
    """A DISABLED or ERROR image keeps its state even while VMs hold it."""
    img = pools.images.get(0)
    assert img is not None
    img.state = ImageState.DISABLED
    pools.images.changed(0)
    pools.use_images(a_vm(5, 0))
    assert summary(shown(pools, 0)) == ("3", "1", "5")


@pytest.mark.parametrize("state", [VmState.DONE, VmState.FAILED])
def test_an_ended_vm_uses_no_image(pools: Pools, state: int) -> None:
    pools.use_images(a_vm(5, 0, state=state))
    assert summary(shown(pools, 0)) == ("1", "0", "")


def test_disk_image_ids_are_numbers_each_once_in_disk_order() -> None:
    assert disk_image_ids(a_vm(1, 4, 2, 4, "x", " 7 ", "-1", "³")) == [4, 2, 7]


def test_names_are_per_owner_and_follow_a_rename_and_a_delete(pools: Pools) -> None:
    pools.put_image(an_image(2, "ttylinux", uid=2))
    assert pools.image_names[(1, "ttylinux")].id == 0
    assert pools.image_names[(2, "ttylinux")].id == 2
    renamed = an_image(0, "tty2")
    pools.put_image(renamed)
    assert (1, "ttylinux") not in pools.image_names
    assert pools.image_names[(1, "tty2")] is renamed
    pools.use_images(a_vm(5, 2))
    pools.remove_image(2)
    assert (2, "ttylinux") not in pools.image_names
    assert 2 not in pools.images and 2 not in pools.image_users


def test_ids_come_from_the_image_counter(pools: Pools) -> None:
    pools.next_ids["image"] = 7
    assert (pools.take_id("image"), pools.take_id("image")) == (7, 8)


def test_loading_the_pools_recounts_who_uses_each_image(tmp_path) -> None:
    """After a restart: images loaded, users derived from the live VMs (not the DONE one)."""
    config = load_config("DB = [ BACKEND = sqlite ]\n")
    with Store.open(config.db, str(tmp_path / "one.db"), LOG) as store:
        store.insert_user(User(0, "oneadmin", "x"))
        store.insert_user(User(1, "helen", "x"))
        store.insert_image(an_image(0))
        store.insert_image(an_image(1, "data"))
        store.insert_image(an_image(2, "copying", state=ImageState.LOCKED))
        for vm in (a_vm(0, 0), a_vm(1, 0, 1, state=VmState.PENDING), a_vm(2, 1)):
            store.insert_vm(vm)
        store.insert_vm(a_vm(3, 2, state=VmState.DONE))
        store.delete_image(2)
        pools = load_pools(store, LOG)
    assert [img.id for img in pools.images] == [0, 1]
    assert pools.image_users == {0: {0, 1}, 1: {1, 2}}
    assert summary(shown(pools, 0)) == ("2", "2", "0,1")
    assert shown(pools, 0).findtext("UNAME") == "helen"
    assert pools.image_names[(1, "data")].id == 1
    assert pools.next_ids["image"] == 3
