"""Image templates to images (oned/imagetemplate.py): each kind of content gives its state, and
every bad input is refused with a message naming the attribute."""

from __future__ import annotations

import pytest

from oned import imagetemplate as it
from oned.states import ImageState, ImageType
from oned.template import parse


def build(text: str, uid: int = 3, default_type: str = "OS"):
    return it.build(
        parse(text), oid=7, uid=uid, regtime=1_700_000_000, default_type=default_type,
        dev_prefix="hd",
    )  # fmt: skip


def test_a_path_is_copied_a_source_is_ready_nothing_waits_and_a_size_is_made():
    copied = build('NAME = ttylinux\nPATH = "/srv/ttylinux.img"')
    assert (copied.state, copied.path) == (ImageState.LOCKED, "/srv/ttylinux.img")
    assert copied.source == ""
    fetched = build("NAME = web\nPATH = https://example.org/a.img")
    assert (fetched.state, fetched.path) == (ImageState.LOCKED, "https://example.org/a.img")
    ready = build("NAME = in-place\nSOURCE = /srv/images/base.img")
    assert (ready.state, ready.source, ready.path) == (ImageState.READY, "/srv/images/base.img", "")
    empty = build("NAME = for-saveas")
    assert (empty.state, empty.source, empty.path) == (ImageState.INIT, "", "")
    block = build("NAME = data\nTYPE = datablock\nSIZE = 1024\nFSTYPE = EXT4")
    assert (block.type, block.state, block.size, block.fstype) == (
        ImageType.DATABLOCK, ImageState.LOCKED, 1024, "ext4",
    )  # fmt: skip
    raw = build("NAME = raw\nTYPE = DATABLOCK\nSIZE = 8")
    assert (raw.fstype, raw.size) == ("raw", 8)


def test_the_fixed_fields_and_the_template_kept():
    """NOTE: as 2.0, PUBLIC and PERSISTENT become the flags; DEV_PREFIX is written in."""
    img = build("NAME = cd\nTYPE = CDROM\nPUBLIC = yes\nPERSISTENT = YES\nPATH = /srv/a.iso\nX = 1")
    assert (img.id, img.uid, img.name, img.regtime) == (7, 3, "cd", 1_700_000_000)
    assert (img.type, img.public, img.persistent) == (ImageType.CDROM, True, True)
    assert img.template.to_text() == ("NAME=cd\nTYPE=CDROM\nPATH=/srv/a.iso\nX=1\nDEV_PREFIX=hd\n")
    assert build("NAME = a\nDEV_PREFIX = vd").template.get("DEV_PREFIX") == "vd"
    assert (build("NAME = a").public, build("NAME = a").persistent) == (False, False)


def test_the_default_type_is_default_image_type():
    assert build("NAME = a", default_type="DATABLOCK").type == ImageType.DATABLOCK
    assert build("NAME = a\nTYPE = os", default_type="CDROM").type == ImageType.OS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TYPE = OS", "NAME is missing"),
        ('NAME = ""', "NAME is missing"),
        ('NAME = " padded"', 'NAME = " padded": must be 1-128 characters'),
        ('NAME = "two\nlines"', "NAME = .*must be 1-128 characters on one line"),
        (f"NAME = {'n' * 129}", "must be 1-128 characters"),
        ("NAME = a\nTYPE = KERNEL", 'TYPE = "KERNEL": must be OS, CDROM or DATABLOCK'),
        ("NAME = a\nTYPE = [ X = 1 ]", "TYPE = .*must be OS, CDROM or DATABLOCK"),
        ("NAME = a\nPUBLIC = maybe", 'PUBLIC = "maybe": must be YES or NO'),
        ("NAME = a\nPERSISTENT = 1", 'PERSISTENT = "1": must be YES or NO'),
        ("NAME = a\nPATH = /a\nSOURCE = /b", "PATH and SOURCE: an image has one source"),
        ("NAME = a\nTYPE = DATABLOCK\nPATH = /a\nSIZE = 2", "PATH and SIZE: an image has one"),
        ("NAME = a\nPATH = relative.img", 'PATH = "relative.img": must be an absolute path'),
        ("NAME = a\nPATH = ftp://h/a.img", 'PATH = "ftp://h/a.img": must be an absolute path'),
        ("NAME = a\nPATH = [ A = 1 ]", "PATH must be a single value"),
        ("NAME = a\nSOURCE = disk.img", 'SOURCE = "disk.img": must be an absolute path or a URL'),
        ("NAME = a\nSIZE = 10", "SIZE: only a DATABLOCK image is made empty"),
        ("NAME = a\nTYPE = CDROM\nFSTYPE = ext3", "FSTYPE: only a DATABLOCK image is made empty"),
        ("NAME = a\nTYPE = DATABLOCK\nFSTYPE = ext3", "FSTYPE: an empty DATABLOCK needs its SIZE"),
        ("NAME = a\nTYPE = DATABLOCK\nSIZE = 0", 'SIZE = "0": must be a whole number of MB'),
        ("NAME = a\nTYPE = DATABLOCK\nSIZE = -5", 'SIZE = "-5": must be a whole number of MB'),
        ("NAME = a\nTYPE = DATABLOCK\nSIZE = 1.5", 'SIZE = "1.5": must be a whole number'),
        ("NAME = a\nTYPE = DATABLOCK\nSIZE = 99999999999", "SIZE = .*must be a whole number"),
        ("NAME = a\nTYPE = DATABLOCK\nSIZE = 5\nFSTYPE = ntfs", 'FSTYPE = "ntfs": must be one'),
    ],
)
def test_every_bad_input_names_its_attribute(text, message):
    with pytest.raises(it.ImageTemplateError, match=message):
        build(text)


def test_every_problem_is_listed_at_once():
    with pytest.raises(it.ImageTemplateError) as caught:
        build("TYPE = X\nPUBLIC = Z")
    assert [p.split(" ")[0] for p in caught.value.problems] == ["NAME", "TYPE", "PUBLIC"]


def test_persistent_cdrom_is_allowed_as_in_opennebula():
    assert build("NAME = cd\nTYPE = CDROM\nPERSISTENT = YES").persistent


def test_chmod_sets_public_through_group_or_other_use():
    assert it.public_after_chmod(False, -1, 1) and it.public_after_chmod(False, 1, -1)
    assert not it.public_after_chmod(True, 0, 0)
    assert it.public_after_chmod(True, -1, -1) and not it.public_after_chmod(False, -1, -1)
    assert it.public_after_chmod(True, 0, -1)  # OTHER_U stays 1
