"""one.image.* and one.imagepool.info against a real oned, in both dialects: pyone (modern
signatures) and the 2.0 call forms sent as plain XML-RPC; two users' visibility; SOURCE, INIT
and PATH images; the API-level bad input of issue 13, each refused naming the thing with
nothing created."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
import xmlrpc.client

import pyone
import pytest

from tests.functional.conftest import as_user
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

SESSION = "oneadmin:onecloud"
INIT, READY, USED, DISABLED, LOCKED = 0, 1, 2, 3, 4


@pytest.fixture
def cloud(tmp_path):
    """oned whose users may read files under <tmp>/safe (SAFE_DIRS)."""
    (tmp_path / "safe").mkdir()
    oned = OnedProcess(tmp_path / "one").set(SAFE_DIRS=f'"{tmp_path}/safe"').start()
    try:
        yield oned
    finally:
        oned.stop()


class Legacy:
    """OpenNebula 2.0's OCA: positional XML-RPC calls, the session first."""

    def __init__(self, oned: OnedProcess, session: str = SESSION):
        self.proxy = xmlrpc.client.ServerProxy(oned.endpoint)
        self.session = session

    def call(self, method: str, *params) -> list:
        return getattr(self.proxy, method)(self.session, *params)

    def __call__(self, method: str, *params):
        reply = self.call(method, *params)
        assert reply[0], f"{method}{params}: {reply[1]}"
        return reply[1]

    def xml(self, method: str, *params) -> ET.Element:
        return ET.fromstring(self(method, *params))


def ids(pool: ET.Element) -> list[int]:
    return [int(e.findtext("ID", "-1")) for e in pool.iter("IMAGE")]


def pool_ids(client: pyone.OneServer, flt: int = -2) -> list[int]:
    return [img.ID for img in client.imagepool.info(flt, -1, -1).IMAGE]


def test_a_modern_session_with_pyone(cloud):
    """allocate (ds 1), info, pool, enable/disable, persistent, update, chmod, delete."""
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    iid = admin.image.allocate('NAME = base\nSOURCE = "/srv/base.img"\nDESCRIPTION = "a"', 1)
    img = admin.image.info(iid)
    assert (img.ID, img.NAME, img.UNAME, img.STATE, img.TYPE) == (iid, "base", "oneadmin", READY, 0)
    assert (img.SOURCE, img.PERSISTENT, img.DATASTORE_ID) == ("/srv/base.img", 0, 1)
    assert img.TEMPLATE["DESCRIPTION"] == "a"
    admin.image.enable(iid, False)
    assert admin.image.info(iid).STATE == DISABLED
    admin.image.enable(iid, True)
    admin.image.persistent(iid, True)
    admin.image.update(iid, 'DESCRIPTION = "b"\nOWNER_NOTE = "x"', 1)
    admin.image.chmod(iid, -1, -1, -1, 1, -1, -1, 1, -1, -1)
    img = admin.image.info(iid)
    assert (img.STATE, img.PERSISTENT, img.PERMISSIONS.OTHER_U) == (READY, 1, 1)
    assert (img.TEMPLATE["DESCRIPTION"], img.TEMPLATE["OWNER_NOTE"]) == ("b", "x")
    admin.image.update(iid, "ONLY = 1", 0)
    assert "DESCRIPTION" not in admin.image.info(iid).TEMPLATE
    second = admin.image.allocate("NAME = empty", -1)
    assert admin.image.info(second).STATE == INIT
    assert pool_ids(admin) == [iid, second]
    assert [i.ID for i in admin.imagepool.info(-2, 0, 0).IMAGE] == [iid]  # ids 0 to 0
    assert [i.ID for i in admin.imagepool.info(-2, 1, -1).IMAGE] == [second]  # ids from 1 on
    admin.image.delete(iid, False)
    with pytest.raises(pyone.OneNoExistsException, match=r"Error getting image \[0\]"):
        admin.image.info(iid)
    assert pool_ids(admin) == [second]
    with pytest.raises(pyone.OneApiException, match=r"datastore \[100\] is not an image datastore"):
        admin.image.allocate("NAME = elsewhere", 100)


def test_a_2_0_session_with_its_call_forms(cloud):
    """2.0: allocate(tmpl), update(iid, attr, value), rmattr, publish, persistent, enable,
    imagepool.info(flag), delete; each answers [true, iid]."""
    one = Legacy(cloud)
    iid = one("one.image.allocate", 'NAME = "ttylinux"\nSOURCE = /srv/tty.img\nTYPE = os')
    assert one.call("one.image.update", iid, "DESCRIPTION", "seed image")[:2] == [True, iid]
    assert one("one.image.rmattr", iid, "DEV_PREFIX") == iid
    assert one("one.image.publish", iid, True) == iid
    assert one("one.image.persistent", iid, False) == iid
    assert one("one.image.enable", iid, False) == iid
    doc = one.xml("one.image.info", iid)
    fields = ("ID", "UID", "NAME", "TYPE", "PUBLIC", "PERSISTENT", "SOURCE", "STATE")
    assert [doc.findtext(f) for f in fields] == [
        str(iid), "0", "ttylinux", "0", "1", "0", "/srv/tty.img", str(DISABLED),
    ]  # fmt: skip
    assert doc.findtext("TEMPLATE/DESCRIPTION") == "seed image"
    assert doc.find("TEMPLATE/DEV_PREFIX") is None
    assert int(doc.findtext("REGTIME", "0")) > 0 and doc.findtext("RUNNING_VMS") == "0"
    assert ids(one.xml("one.imagepool.info", -1)) == [iid]
    ok, message = one.call("one.imagepool.info", -5)[:2]
    assert not ok and "wrong filter flag -5" in message
    assert one("one.image.delete", iid) == iid
    assert ids(one.xml("one.imagepool.info", -2)) == []


def test_private_images_are_seen_by_their_owner_and_oneadmin_only(cloud):
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    helen_uid = admin.user.allocate("helen", "pw", "")
    admin.user.allocate("dan", "pw", "")
    helen, dan = as_user(cloud, "helen:pw"), as_user(cloud, "dan:pw")
    mine = helen.image.allocate("NAME = mine", 1)
    shared = helen.image.allocate("NAME = shared\nPUBLIC = YES", 1)
    with pytest.raises(pyone.OneAuthorizationException) as refused:
        dan.image.info(mine)
    assert str(refused.value) == (
        f"[one.image.info] User [{helen_uid + 1}] not authorized to perform INFO on IMAGE [{mine}]."
    )
    assert dan.image.info(shared).NAME == "shared"
    assert pool_ids(dan) == [shared] and pool_ids(helen) == [mine, shared]
    assert pool_ids(admin) == [mine, shared] and pool_ids(helen, -3) == [mine, shared]
    with pytest.raises(pyone.OneAuthorizationException, match="perform DELETE on IMAGE"):
        dan.image.delete(shared)
    with pytest.raises(pyone.OneAuthorizationException, match="perform MANAGE on IMAGE"):
        dan.image.enable(shared, False)
    dan_own = dan.image.allocate("NAME = mine", 1)  # names are unique per user
    helen.image.chmod(mine, -1, -1, -1, -1, -1, -1, 1, -1, -1)
    assert pool_ids(dan) == [mine, shared, dan_own]
    with pytest.raises(pyone.OneAuthorizationException, match="restricted attribute SOURCE"):
        helen.image.allocate("NAME = sneaky\nSOURCE = /etc/shadow", 1)
    assert pool_ids(admin) == [mine, shared, dan_own]


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ('NAME = x\nPATH = "{safe}/missing.img"', pyone.OneApiException, "missing.img.*No such"),
        ('NAME = x\nPATH = "{safe}"', pyone.OneApiException, "not a regular file"),
        ('NAME = x\nPATH = "/etc/hostname"', pyone.OneAuthorizationException, "attribute PATH"),
        ("NAME = x\nPATH = relative/x.img", pyone.OneApiException, "must be an absolute path"),
        ("NAME = x\nTYPE = FLOPPY", pyone.OneApiException, r'TYPE = "FLOPPY": must be OS'),
        ("NAME = x\nSIZE = 10", pyone.OneApiException, "SIZE: only a DATABLOCK"),
        ("NAME = x\nTYPE = DATABLOCK\nSIZE = 10\nFSTYPE = ntfs", pyone.OneApiException, "FSTYPE"),
        ("NAME = x\nTYPE = DATABLOCK\nPATH = /a\nSIZE = 2", pyone.OneApiException, "PATH and SIZE"),
        ("TYPE = OS", pyone.OneApiException, "NAME is missing"),
    ],
)
def test_bad_input_names_the_thing_and_creates_nothing(cloud, text, error, message):
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    admin.user.allocate("helen", "pw", "")
    helen = as_user(cloud, "helen:pw")
    safe = str(cloud.location.parent / "safe")
    with pytest.raises(error, match=r"^\[one\.image\.allocate\] .*" + message):
        helen.image.allocate(text.replace("{safe}", safe), 1)
    assert pool_ids(admin) == []
    assert admin.image.allocate("NAME = first", 1) == 0  # no id was burnt
    assert os.listdir(cloud.location / "var" / "images") == []


def test_a_name_taken_by_the_same_user_is_refused_naming_the_image(cloud):
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    admin.image.allocate("NAME = ttylinux", 1)
    taken = r'^\[one\.image\.allocate\] NAME is already taken by IMAGE 0 "ttylinux"\.$'
    with pytest.raises(pyone.OneInternalException, match=taken):
        admin.image.allocate("NAME = ttylinux\nTYPE = CDROM", 1)
    assert pool_ids(admin) == [0]


def test_a_path_is_copied_into_the_repository_and_deleting_it_removes_the_file(cloud):
    """Needs the image manager and one_image (issue 13's copy): LOCKED, then READY with SIZE
    and CHECKSUM; the repository's file holds the same bytes; delete removes it."""
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    content = os.urandom(3 * 1024 * 1024 + 5)
    path = cloud.location.parent / "safe" / "small.img"
    path.write_bytes(content)
    iid = admin.image.allocate(f'NAME = small\nPATH = "{path}"', 1)
    wait_for(lambda: admin.image.info(iid).STATE == READY, timeout=60)
    img = admin.image.info(iid)
    assert (img.SIZE, img.PATH) == (4, str(path))  # MB, rounded up
    assert img.SOURCE == str(cloud.location / "var" / "images" / str(iid))
    with open(img.SOURCE, "rb") as copied:
        assert hashlib.sha256(copied.read()).hexdigest() == hashlib.sha256(content).hexdigest()
    one = Legacy(cloud)
    assert one.xml("one.image.info", iid).findtext("CHECKSUM") == (
        f"sha256:{hashlib.sha256(content).hexdigest()}"
    )
    admin.image.delete(iid)
    wait_for(lambda: not os.path.exists(img.SOURCE), timeout=30)


def test_an_image_a_vm_uses_is_not_deleted_disabled_or_made_persistent(cloud):
    """Needs DISK = [ IMAGE_ID ] at one.vm.allocate (helper "disks")."""
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    iid = admin.image.allocate('NAME = base\nSOURCE = "/srv/base.img"', 1)
    vid = admin.vm.allocate(f"NAME = user\nMEMORY = 64\nDISK = [ IMAGE_ID = {iid} ]")
    img = admin.image.info(iid)
    assert (img.STATE, img.RUNNING_VMS) == (USED, 1)
    in_use = rf'image "base" \[{iid}\]: it is used by VM {vid}'
    with pytest.raises(pyone.OneActionException, match=in_use):
        admin.image.delete(iid)
    with pytest.raises(pyone.OneActionException, match="in state USED"):
        admin.image.enable(iid, False)
    with pytest.raises(pyone.OneActionException, match=in_use):
        admin.image.persistent(iid, True)
    admin.vm.action("terminate-hard", vid)
    wait_for(lambda: admin.image.info(iid).STATE == READY)
    admin.image.delete(iid)
    assert pool_ids(admin) == []
