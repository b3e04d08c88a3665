"""Restricted attributes and the directory rule (oned/restricted.py), as tables.

Issue 10, finding 2 ("Reading any file into the user's VM"): a user's DISK SOURCE, CONTEXT
FILES or OS KERNEL could name any front-end file, a host path or a URL; RAW and NIC SCRIPT
reached the hypervisor. No function of this module existed before.
"""

import posixpath

import pytest

from oned.restricted import Dirs, allowed, path_problems, path_refusal, restricted_attributes
from oned.template import parse

DEFAULT_VM = ("RAW", "NIC/SCRIPT", "NIC/BRIDGE", "NIC/MAC", "NIC/VLAN_ID")
DIRS = Dirs(
    safe=("/srv/images", "/var/tmp", "/one/var/images"),
    restricted=("/", "/one/etc", "/one/var"),
)
LINKS = {"/var/tmp/shadow": "/etc/shadow", "/var/tmp/img": "/srv/images/a.img"}


def resolve(path: str) -> str:
    """realpath on a pretend file system: LINKS are symbolic links, ".." is folded."""
    path = posixpath.normpath(path)
    return LINKS.get(path, path)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("RAW = [ TYPE = kvm, DATA = x ]", ["RAW"]),
        ('RAW = "<devices/>"', ["RAW"]),
        ("NIC = [ NETWORK = net ]", []),
        ("NIC = [ NETWORK = net ]\nNIC = [ SCRIPT = /bin/evil ]", ["NIC/SCRIPT"]),
        ("NIC = [ BRIDGE = br0, MAC = 02:00:00:00:00:01 ]", ["NIC/BRIDGE", "NIC/MAC"]),
        ("nic = [ vlan_id = 7 ]", ["NIC/VLAN_ID"]),
        ("DISK = [ SCRIPT = x ]\nSCRIPT = y", []),
        ("MEMORY = 64", []),
    ],
)
def test_restricted_attributes_are_found_in_any_instance_of_a_vector(text, found):
    """NAME or VECTOR/KEY, whichever NIC carries it, upper-cased."""
    assert restricted_attributes(parse(text), DEFAULT_VM) == found


def test_a_restricted_value_already_in_the_old_template_may_be_sent_back():
    """one.vm.update: a user resending what oneadmin set is not refused; changing it is."""
    old = parse("RAW = [ TYPE = kvm, DATA = x ]\nNIC = [ MAC = 02:00:00:00:00:01 ]")
    same = parse("NIC = [ MAC = 02:00:00:00:00:01 ]\nRAW = [ DATA = x, TYPE = kvm ]")
    assert restricted_attributes(same, DEFAULT_VM, old) == []
    changed = parse("RAW = [ TYPE = kvm, DATA = y ]\nNIC = [ MAC = 02:00:00:00:00:02 ]")
    assert restricted_attributes(changed, DEFAULT_VM, old) == ["RAW", "NIC/MAC"]


@pytest.mark.parametrize(
    ("real_path", "verdict"),
    [
        ("/srv/images/ttylinux.img", True),
        ("/srv/images", True),
        ("/srv/imagesX/a.img", False),
        ("/etc/shadow", False),
        ("/var/tmp/a/b/c.img", True),
        ("/one/var/images/3.img", True),  # the repository inside restricted var/
        ("/one/var/0/disk.0", False),  # another VM's folder
        ("/one/etc/one_auth", False),
        ("/one/var", False),
    ],
)
def test_the_most_specific_directory_decides(real_path, verdict):
    """SAFE_DIRS inside RESTRICTED_DIRS are usable; the longest containing directory wins."""
    assert allowed(real_path, DIRS) is verdict


@pytest.mark.parametrize(
    ("dirs", "real_path", "verdict"),
    [
        (Dirs(safe=("/a",), restricted=("/a",)), "/a/x", False),  # in both: restricted
        (Dirs(safe=(), restricted=()), "/etc/shadow", True),  # in none: allowed
        (Dirs(safe=("/a/",), restricted=("/",)), "/a/x", True),  # trailing slash
        (Dirs(safe=("/",), restricted=("/etc",)), "/etc/passwd", False),
        (Dirs(safe=("/",), restricted=("/etc",)), "/home/u/x", True),
    ],
)
def test_the_directory_rule_edge_cases(dirs, real_path, verdict):
    assert allowed(real_path, dirs) is verdict


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/srv/images/a.img", None),
        ("/var/tmp/img", None),  # a link to a safe file
        ("/etc/shadow", "SAFE_DIRS"),
        ("/var/tmp/shadow", "SAFE_DIRS"),  # a link to /etc/shadow
        ("/srv/images/../../etc/shadow", "SAFE_DIRS"),
        ("host01:/etc/shadow", "host-prefixed"),
        ("/srv/images/a:b", "host-prefixed"),  # the TM would read a host in it
        ("http://evil.example/disk.img", "URL"),
        ("file:///etc/shadow", "URL"),
        ("disk.img", "absolute"),
        ("../etc/shadow", "absolute"),
        ("~oneadmin/.one/one_auth", "absolute"),
    ],
)
def test_a_user_path_is_refused_with_a_reason(path, reason):
    """URLs, host prefixes and relative paths first; then the resolved path's directory."""
    refusal = path_refusal(path, DIRS, resolve)
    assert refusal is None if reason is None else reason in refusal


@pytest.mark.parametrize(
    ("text", "attributes"),
    [
        ('DISK = [ SOURCE = "/srv/images/a.img" ]', []),
        ('DISK = [ SOURCE = "/etc/shadow" ]', ["DISK/SOURCE"]),
        ('DISK = [ TYPE = swap, SIZE = 64 ]\nDISK = [ SOURCE = "/etc/shadow" ]', ["DISK/SOURCE"]),
        ('CONTEXT = [ FILES = "/var/tmp/a /one/etc/one_auth" ]', ["CONTEXT/FILES"]),
        ('CONTEXT = [ FILES = "/var/tmp/a  /srv/images/b" ]', []),
        ('OS = [ KERNEL = "/boot/vmlinuz", INITRD = "/srv/images/initrd" ]', ["OS/KERNEL"]),
        ('OS = [ INITRD = "/boot/initrd" ]', ["OS/INITRD"]),
        ('OS = [ BOOTLOADER = "/usr/bin/pygrub" ]', ["OS/BOOTLOADER"]),
        ('OS = [ ROOT = "sda1" ]', []),  # a device name, not a file
        ('DISK = [ SOURCE = "" ]', []),  # the TM refuses it later
    ],
)
def test_every_file_a_template_names_is_checked(text, attributes):
    """Each problem starts with the attribute and the path as the user wrote it."""
    problems = path_problems(parse(text), DIRS, resolve)
    assert [p.split(" = ")[0] for p in problems] == attributes


def test_a_file_already_in_the_old_template_passes():
    """one.vm.update: a path oneadmin set stays acceptable when the user sends it back."""
    old = parse('DISK = [ SOURCE = "/etc/skel/disk" ]')
    assert path_problems(parse('DISK = [ SOURCE = "/etc/skel/disk" ]'), DIRS, resolve, old) == []
    assert path_problems(parse('DISK = [ SOURCE = "/etc/shadow" ]'), DIRS, resolve, old) != []


def test_configured_directories_are_resolved_like_the_paths():
    """A safe directory given through a symbolic link still holds the files behind it."""
    dirs = Dirs(safe=("/link",), restricted=("/",))
    tmpl = parse('DISK = [ SOURCE = "/link/a.img" ]')
    assert path_problems(tmpl, dirs, lambda p: p.replace("/link", "/real", 1)) == []
