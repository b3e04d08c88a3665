"""A user's template against a real oned: restricted attributes, files, control characters, size.

Issue 10, finding 2 ("Reading any file into the user's VM"): as a plain user, DISK SOURCE =
/etc/shadow, a symbolic link to it in a safe directory, host:/path, a URL, CONTEXT FILES naming
oneadmin's one_auth, RAW, NIC SCRIPT/BRIDGE/MAC and OS KERNEL were all stored and later handed
to the drivers. Each is refused now, naming the attribute, and nothing is stored. Finding 1:
a newline in a value; finding 5: a template of 100,000 attributes; finding 3: absurd CPU/MEMORY.
"""

from __future__ import annotations

import pyone
import pytest

from tests.functional.conftest import as_user
from tests.functional.oned_process import OnedProcess

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """One oned for the module, SAFE_DIRS = <tmp>/safe holding disk.img and a link to
    /etc/shadow; helen is a plain user."""
    root = tmp_path_factory.mktemp("restricted")
    safe = root / "safe"
    safe.mkdir()
    (safe / "disk.img").write_bytes(b"\0" * 512)
    (safe / "shadow").symlink_to("/etc/shadow")
    process = OnedProcess(root / "one", conf_extra=f'SAFE_DIRS = "{safe}"').start()
    admin = pyone.OneServer(process.endpoint, session="oneadmin:onecloud")
    admin.user.allocate("helen", "pw", "core", [])
    yield process, admin, as_user(process, "helen:pw"), safe
    process.stop()


def vm_ids(admin: pyone.OneServer) -> list[int]:
    return [vm.ID for vm in admin.vmpool.info(-2, -1, -1, -1).VM]


def refused(cloud, template: str, error: type, match: str) -> None:
    """helen's allocate of ``template`` fails with ``error`` matching ``match``; nothing stored."""
    _, admin, helen, _ = cloud
    before = vm_ids(admin)
    with pytest.raises(error, match=match):
        helen.vm.allocate(template)
    assert vm_ids(admin) == before


@pytest.mark.parametrize(
    ("template", "attribute"),
    [
        ('DISK = [ SOURCE = "/etc/shadow" ]', r'DISK/SOURCE = "/etc/shadow"'),
        ('DISK = [ SOURCE = "{safe}/shadow", CLONE = no ]', r"DISK/SOURCE = .*/shadow"),
        ('DISK = [ SOURCE = "{safe}/../../../etc/shadow" ]', r"DISK/SOURCE = "),
        ('DISK = [ SOURCE = "host01:/etc/shadow" ]', r"DISK/SOURCE = .*host-prefixed"),
        ('DISK = [ SOURCE = "http://evil.example/x.img" ]', r"DISK/SOURCE = .*URL"),
        ('DISK = [ SOURCE = "disk.img" ]', r"DISK/SOURCE = .*absolute"),
        ('CONTEXT = [ FILES = "{safe}/disk.img {auth}" ]', r"CONTEXT/FILES = .*one_auth"),
        ('CONTEXT = [ FILES = "{conf}" ]', r"CONTEXT/FILES = .*oned.conf"),
        ('OS = [ KERNEL = "/boot/vmlinuz" ]', r'OS/KERNEL = "/boot/vmlinuz"'),
        ('OS = [ INITRD = "/boot/initrd.img" ]', r"OS/INITRD"),
        ('OS = [ BOOTLOADER = "/usr/bin/pygrub" ]', r"OS/BOOTLOADER"),
        ('RAW = [ TYPE = kvm, DATA = "<devices/>" ]', r"restricted attribute RAW$"),
        ('NIC = [ SCRIPT = "/tmp/x" ]', r"restricted attribute NIC/SCRIPT$"),
        ("NIC = [ BRIDGE = br0, MAC = 02:00:0a:00:00:01 ]", r"attributes NIC/BRIDGE, NIC/MAC$"),
    ],
)
def test_a_user_may_not_name_files_or_plumbing(cloud, template, attribute):
    """Each refused with 0x200 naming the attribute; the VM pool is unchanged."""
    oned, _, _, safe = cloud
    template = template.format(
        safe=safe, auth=oned.auth_file, conf=oned.location / "etc" / "oned.conf"
    )
    refused(cloud, f"MEMORY = 64\n{template}", pyone.OneAuthorizationException, attribute)


@pytest.mark.parametrize(
    "template",
    [
        'DISK = [ SOURCE = "/etc/hostname" ]',
        'DISK = [ SOURCE = "host01:/srv/disk.img", CLONE = no ]',
        'CONTEXT = [ FILES = "/etc/hostname" ]',
        'OS = [ KERNEL = "/boot/vmlinuz", INITRD = "/boot/initrd.img" ]',
        'RAW = [ TYPE = kvm, DATA = "<devices/>" ]',
        "NIC = [ SCRIPT = /tmp/x, BRIDGE = br0, MAC = 02:00:0a:00:00:01 ]",
    ],
)
def test_oneadmin_may_use_restricted_attributes(cloud, template):
    """The same attributes are oneadmin's to set, and stored as written."""
    _, admin, _, _ = cloud
    vid = admin.vm.allocate(f"MEMORY = 64\n{template}")
    assert admin.vm.info(vid).ID == vid


def test_a_user_may_use_files_in_a_safe_dir_and_the_template_keeps_them(cloud):
    """SAFE_DIRS are readable; the template keeps the path as the user wrote it."""
    _, _, helen, safe = cloud
    written = f"{safe}/sub/../disk.img"
    vid = helen.vm.allocate(
        f'MEMORY = 64\nDISK = [ SOURCE = "{written}" ]\nCONTEXT = [ FILES = "{safe}/disk.img" ]'
    )
    assert helen.vm.info(vid).TEMPLATE["DISK"]["SOURCE"] == written


def test_a_user_may_not_name_a_file_of_the_image_repository(cloud):
    """Issue 13: the repository holds every user's images, private ones too; a user reaches
    them by IMAGE or IMAGE_ID (owner and PUBLIC checked), never by a path into it."""
    oned, _, helen, _ = cloud
    repository = oned.location / "var" / "images" / "0"
    with pytest.raises(pyone.OneAuthorizationException, match=r"DISK/SOURCE = .*images/0"):
        helen.vm.allocate(f'MEMORY = 64\nDISK = [ SOURCE = "{repository}" ]')


@pytest.mark.parametrize(
    ("template", "attribute"),
    [
        ('DISK = [ SOURCE = "/x/img H:/x/d\nDELETE H:/victim\nCLONE /x/img" ]', r"DISK/SOURCE"),
        ('NAME = "vm\rforged"', r"NAME"),
        ("<VM><CONTEXT><A>x&#9;y</A></CONTEXT></VM>", r"CONTEXT/A"),
    ],
)
def test_a_control_character_is_refused_for_everyone(cloud, template, attribute):
    """Finding 1: a newline in a value became a line of a TM script; 0x1000 naming it."""
    _, admin, helen, _ = cloud
    before = vm_ids(admin)
    for one in (admin, helen):
        with pytest.raises(pyone.OneException, match=rf"{attribute} contains a control character"):
            one.vm.allocate(template)
    assert vm_ids(admin) == before


def test_absurd_capacity_is_refused(cloud):
    """Finding 3: CPU and MEMORY the scheduler would then count against a host."""
    refused(cloud, "CPU = 100000\nMEMORY = 64", pyone.OneException, "CPU .* at most 1024")
    refused(cloud, "MEMORY = 99999999999", pyone.OneException, "MEMORY .* at most 16777216")


def test_a_huge_template_is_refused_naming_the_limit(cloud):
    """Finding 5: 100,000 attributes stalled oned for 4 s; the text is refused unparsed."""
    template = "".join(f"A{i} = {i}\n" for i in range(100_000))
    refused(cloud, template, pyone.OneException, "MAX_TEMPLATE_SIZE")
    vector = "V = [ " + ", ".join(f"K{i} = 1" for i in range(5000)) + " ]"
    refused(cloud, vector, pyone.OneException, "MAX_ATTRIBUTES")


def test_update_refuses_what_allocate_refuses_and_keeps_what_oneadmin_set(cloud):
    """one.vm.update: a user may not add RAW, a file or a control character; sending back the
    RAW oneadmin set is fine. Nothing changes on a refusal."""
    _, admin, helen, _ = cloud
    vid = helen.vm.allocate("MEMORY = 64")
    raw = 'RAW = [ TYPE = kvm, DATA = "<devices/>" ]'
    for template, error in (
        (raw, pyone.OneAuthorizationException),
        ('DISK = [ SOURCE = "/etc/shadow" ]', pyone.OneAuthorizationException),
        ('NOTE = "a\nb"', pyone.OneException),
    ):
        with pytest.raises(error):
            helen.vm.update(vid, template, 1)
    assert dict(helen.vm.info(vid).USER_TEMPLATE or {}) == {}
    admin.vm.update(vid, raw, 1)
    helen.vm.update(vid, f'{raw}\nNOTE = "mine"', 0)
    assert dict(helen.vm.info(vid).USER_TEMPLATE)["NOTE"] == "mine"


def test_a_user_network_with_a_bridge_is_refused_by_default(cloud):
    """VNET_RESTRICTED_ATTR: BRIDGE is oneadmin's (modern OpenNebula's default)."""
    _, admin, helen, _ = cloud
    net = "NAME = {}\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.1.2.3 ]"
    with pytest.raises(pyone.OneAuthorizationException, match=r"restricted attribute BRIDGE$"):
        helen.vn.allocate(net.format("hers"))
    with pytest.raises(pyone.OneException, match=r"NAME contains a control character \(\\n\)"):
        admin.vn.allocate('NAME = "a\nb"\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.1.2.4 ]')
    assert admin.vn.allocate(net.format("admins")) >= 0
    assert [n.NAME for n in admin.vnpool.info(-2, -1, -1).VNET] == ["admins"]
