"""The <IMAGE> document (issue 13): what 2.0's and OpenNebula 6.10's clients read, parsed with
pyone's own bindings, with onecloud's CHECKSUM and the progress of a copy (reference §5.2)."""

from __future__ import annotations

from xml.etree import ElementTree

import pyone.bindings as bindings
import pytest

from oned.image_views import image_short_xml, image_xml
from oned.records import Image
from oned.states import ImageState, ImageType
from oned.template import Template
from tests import required_paths as rp


def parse(xml: str):
    return bindings.parseString(xml.encode(), silence=True)


def ttylinux(**fields: object) -> Image:
    template = Template([("NAME", "ttylinux"), ("DESCRIPTION", "a < b & c")])
    img = Image(3, 1, "ttylinux", ImageType.OS, False, False, 1764637200, template)
    img.source, img.size = "/var/lib/one/images/3", 40
    for name, value in fields.items():
        setattr(img, name, value)
    return img


@pytest.mark.parametrize("render", [image_xml, image_short_xml], ids=["info", "pool"])
@pytest.mark.parametrize("vms", [[], [4, 9]], ids=["unused", "used"])
def test_both_forms_carry_the_6_10_and_the_2_0_elements(render, vms):
    xml = render(ttylinux(), "helen", vms, ImageState.USED if vms else ImageState.READY)
    for paths in (rp.IMAGE_610, rp.IMAGE_POOL_610, rp.IMAGE_20, rp.IMAGE_POOL_20):
        assert rp.missing_in_text(xml, paths) == []


def test_an_image_parses_with_pyone_with_integers_owner_and_datastore():
    parsed = parse(image_xml(ttylinux(), "helen", [4, 9], ImageState.USED))
    assert (parsed.ID, parsed.UID, parsed.GID, parsed.UNAME, parsed.GNAME) == (
        3,
        1,
        1,
        "helen",
        "users",
    )
    assert (parsed.TYPE, parsed.PERSISTENT, parsed.SIZE, parsed.SOURCE) == (
        0,
        0,
        40,
        "/var/lib/one/images/3",
    )
    assert (parsed.STATE, parsed.PREV_STATE, parsed.RUNNING_VMS) == (2, 2, 2)
    assert parsed.VMS.ID == [4, 9]
    assert (parsed.DATASTORE_ID, parsed.DATASTORE, parsed.DISK_TYPE) == (1, "default", 0)
    assert (parsed.FORMAT, parsed.CLONING_ID, parsed.SNAPSHOTS.CURRENT_BASE) == ("raw", -1, -1)
    assert parsed.TEMPLATE["DESCRIPTION"] == "a < b & c"


def test_the_2_0_fields_come_first_in_2_0_order():
    root = ElementTree.fromstring(image_xml(ttylinux(), "helen", [], ImageState.READY))
    names = [child.tag for child in root]
    assert names[:13] == list(rp.IMAGE_POOL_20[:-1])  # TEMPLATE follows the modern fields


@pytest.mark.parametrize(("public", "uid", "other_u", "gid"), [(False, 1, 0, 1), (True, 0, 1, 0)])
def test_public_images_are_usable_by_others_and_oneadmin_is_in_group_0(public, uid, other_u, gid):
    img = ttylinux(public=public)
    img.uid = uid
    parsed = parse(image_xml(img, "x", [], ImageState.READY))
    assert (parsed.PERMISSIONS.OTHER_U, parsed.PERMISSIONS.OWNER_M, parsed.GID) == (other_u, 1, gid)
    assert ElementTree.fromstring(image_xml(img, "x", [], 1)).findtext("PUBLIC") == str(int(public))


def test_format_follows_the_template_then_the_driver():
    img = ttylinux()
    img.template.add("DRIVER", "qcow2")
    assert parse(image_xml(img, "helen", [], 1)).FORMAT == "qcow2"
    img.template.add("FORMAT", "vmdk")
    assert parse(image_xml(img, "helen", [], 1)).FORMAT == "vmdk"


def test_a_datablock_shows_its_filesystem():
    img = ttylinux(type=ImageType.DATABLOCK, fstype="ext4", source="", size=512)
    parsed = parse(image_xml(img, "helen", [], ImageState.READY))
    assert (parsed.TYPE, parsed.FS, parsed.SIZE) == (2, "ext4", 512)


def test_checksum_is_shown_once_known():
    bare = ElementTree.fromstring(image_xml(ttylinux(), "helen", [], 1))
    assert bare.find("CHECKSUM") is None
    digest = "sha256:" + "ab" * 32
    known = ElementTree.fromstring(image_xml(ttylinux(checksum=digest), "helen", [], 1))
    assert known.findtext("CHECKSUM") == digest


def test_progress_is_shown_only_while_a_copy_runs():
    copying = ttylinux(state=ImageState.LOCKED, done=1 << 31, total=3 << 31)
    root = ElementTree.fromstring(image_xml(copying, "helen", [], ImageState.LOCKED))
    assert (root.findtext("PROGRESS/DONE"), root.findtext("PROGRESS/TOTAL")) == (
        str(1 << 31),
        str(3 << 31),
    )
    for img in (ttylinux(state=ImageState.LOCKED), ttylinux(done=5, total=10)):
        root = ElementTree.fromstring(image_xml(img, "helen", [], img.state))
        assert root.find("PROGRESS") is None


def test_names_and_paths_are_escaped():
    img = ttylinux(path="/srv/a&b<c>.img", source="/r/<3>")
    img.name = "x & <y>"
    xml = image_xml(img, "h&m", [], 1)
    root = ElementTree.fromstring(xml)
    assert [root.findtext(n) for n in ("NAME", "PATH", "SOURCE", "UNAME")] == [
        "x & <y>",
        "/srv/a&b<c>.img",
        "/r/<3>",
        "h&m",
    ]
