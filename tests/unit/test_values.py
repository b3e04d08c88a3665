"""drivers/values.py: the allow-lists every VMM driver checks its rendered values against, on
literal strings (issue 10, finding 2: "every driver also validates what it renders")."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from drivers import values
from drivers.values import BadValue

ACCEPTED = [
    (values.device, ["hda", "hdc", "sdb", "vda", "xvda", "fda", "xvdaa", "sda1"]),
    (values.mac, ["02:00:0a:00:00:2a", "00:03:C0:A8:00:05"]),
    (values.interface, ["br0", "eth0", "xenbr0", "one-42-0", "virbr0", "vlan.100", "a" * 15]),
    (values.ip, ["10.0.0.42", "192.168.0.5", "fe80::1"]),
    (values.listen, ["0.0.0.0", "::", "localhost", "loclahost", "vnc.example.org"]),
    (values.keymap, ["es", "en-us", "de-ch", "pt-br"]),
    (values.word, ["virtio", "e1000", "rtl8139", "pc-i440fx-2.1", "x86_64", "vif-bridge"]),
    (values.port, ["0", "5900", "65535"]),
    (values.positive, ["1", "512"]),
    (values.number, ["1", "1.5", "0.25"]),
    (values.path, ["/srv/kernels/vmlinuz", "/etc/one/qemu-ifup", "/a/b.c/d-e_f+g~h@i%j/"]),
    (values.script, ["/etc/one/qemu-ifup", "vif-bridge"]),
    (values.root, ["sda1", "/dev/vda1", "UUID=1234-abcd"]),
    (values.printable, ['s3cr"t&', "console=ttyS0 ro", ""]),
]

REFUSED = [
    (values.device, ["hda,w", "hda:cdrom", "sda/../x", "/dev/sda", "cdrom", "HDA", "", "xvda "]),
    (values.mac, ["02:00:0a:00:00", "02:00:0a:00:00:2a,ip=1", "zz:00:0a:00:00:2a", "02-00-0a"]),
    (
        values.interface,
        ["br0,script=/tmp/evil", "a" * 16, "..", ".", "-br0", "br 0", "br0\n", "br/0", "br:0"],
    ),
    (values.ip, ["10.0.0.256", "10.0.0.1,mac=x", "host", ""]),
    (values.listen, ["0.0.0.0,vncpasswd=x", "host name", "-x", "a..b", "1.2.3.4\n"]),
    (values.keymap, ["en-us,type=sdl", "../../etc/x", "EN", "e"]),
    (values.word, ["virtio,script=/x", "e1000 x", "../x", "-virtio", "", "a\nb"]),
    (values.port, ["-1", "65536", "59a", "5900,a=b", "", "٥٩٠٠"]),
    (values.positive, ["0", "-2", "two", "1.5", "", "٣"]),
    (values.number, ["nan", "inf", "1e9", "-1", "1,5", ""]),
    (
        values.path,
        [
            "relative/path", "/srv/../etc/shadow", "/srv/./x", "/a/..", "/a b", '/a"b', "/a,b",
            "/a=b", "/a\nb", "/a\\b", "/a'b", "/a:b", "", "/a\x00b", "//",
        ],
    ),
    (values.script, ["../evil", "/tmp/../evil", "evil script", "evil;rm"]),
    (values.root, ["sda1 init=/bin/sh", '/dev/sda"', "/dev/../x", ""]),
    (values.printable, ["a\nb", "a\x1bb", "é", "a\x7f"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "value"), [(check, value) for check, good in ACCEPTED for value in good]
)
def test_a_value_of_its_kind_passes_unchanged(check, value):
    """Every value the fixtures and OpenNebula's examples use goes through as it is."""
    assert check("X", value) == value


@pytest.mark.parametrize(
    ("check", "value"), [(check, value) for check, bad in REFUSED for value in bad]
)
def test_a_value_outside_its_allow_list_is_refused_naming_the_attribute(check, value):
    """Finding 2: commas, quotes, '..', spaces, line breaks and the like never pass."""
    with pytest.raises(BadValue, match=r"^NIC/BRIDGE = "):
        check("NIC/BRIDGE", value)


def test_the_refused_value_is_shown_escaped_and_cut():
    """A message stays one line and short, whatever the value held."""
    with pytest.raises(BadValue) as caught:
        values.interface("NIC/BRIDGE", "br0\nDEPLOY SUCCESS 1 x" + "y" * 200)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 160
    assert message.startswith('NIC/BRIDGE = "br0\\nDEPLOY SUCCESS 1 xyyy')


def test_one_of_answers_the_lower_case_word():
    assert values.one_of("DISK/BUS", "VirtIO", ("virtio", "ide")) == "virtio"
    with pytest.raises(BadValue, match=r'^DISK/BUS = "virtio,x": not one of virtio, ide$'):
        values.one_of("DISK/BUS", "virtio,x", ("virtio", "ide"))


def test_checked_looks_at_each_named_non_empty_value():
    """A vector's values are checked by name; the message names ``PREFIX/KEY``."""
    nic = {"BRIDGE": "br0", "MAC": "", "NETWORK": "any text, not rendered"}
    assert values.checked(nic, "NIC", values.NIC) is nic
    with pytest.raises(BadValue, match=r'^NIC/SCRIPT = "/tmp/\.\./evil"'):
        values.checked({"SCRIPT": "/tmp/../evil"}, "NIC", values.NIC)


# ---------------------------------------------------------------------------------------------
# RAW


@pytest.mark.parametrize(
    "data",
    [
        '<clock offset="localtime"/><on_crash>preserve</on_crash>',
        "<cpu mode='host-model'/>",
        "<devices><video><model type='vga'/></video><memballoon model='none'/></devices>",
        "",
    ],
)
def test_libvirt_raw_that_tunes_the_guest_is_appended(data):
    """The RAW of the fixtures and of OpenNebula's documentation passes."""
    expected = [e.tag for e in ET.fromstring(f"<r>{data}</r>")]
    assert [e.tag for e in values.libvirt_raw("RAW/DATA", data)] == expected


@pytest.mark.parametrize(
    "data",
    [
        'on_crash = "preserve"',
        "on_crash='restart'\n# a comment\n\nacpi = 1\ncpus = \"0-3,5\"  # pinned",
        'cpus = [ "0", "1", ]',
        "",
    ],
)
def test_xl_raw_of_quoted_settings_is_kept_line_by_line(data):
    assert values.xl_raw("RAW/DATA", data) == (data.split("\n") if data else [])


LIBVIRT = values.libvirt_raw
XL = values.xl_raw


@pytest.mark.parametrize(
    ("check", "data", "message"),
    [
        (
            LIBVIRT,
            "<devices><disk type='file' device='disk'><source file='/etc/shadow'/>"
            "<target dev='vdz'/></disk></devices>",
            "a device in <devices> must be one of",
        ),
        (LIBVIRT, "<devices><video><source file='/x'/></video></devices>", "<source> may not"),
        (
            LIBVIRT,
            "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
            "<qemu:arg value='-drive'/></qemu:commandline>",
            "is not an element RAW may add",
        ),
        (LIBVIRT, "<cpu xmlns:q='urn:x'><q:x/></cpu>", "may not be added"),
        (LIBVIRT, "<os><kernel>/etc/shadow</kernel></os>", "<os> is not an element RAW may add"),
        (LIBVIRT, "<seclabel type='none'/>", "<seclabel> is not an element RAW may add"),
        (LIBVIRT, "<name>other</name>", "<name> is not an element RAW may add"),
        (LIBVIRT, "</raw></domain><domain><devices/>", "is not well-formed XML"),
        (LIBVIRT, "]]></DATA><x>", "is not well-formed XML"),
        (LIBVIRT, "<!DOCTYPE x [<!ENTITY e SYSTEM '/etc/shadow'>]><clock>&e;</clock>", "not well"),
        (LIBVIRT, "text<clock/>", "must hold XML elements only"),
        (XL, 'disk = [ "file:/etc/shadow,xvdz,r" ]', "disk is not a key RAW may set"),
        (XL, 'device_model_args = [ "-x" ]', "device_model_args is not a key RAW may set"),
        (XL, "memory = 99999", "memory is not a key RAW may set"),
        (XL, "on_crash = preserve", "not a line key = value"),
        (XL, 'on_crash = "pre"serve"', "not a line key = value"),
        (XL, 'on_crash = "pre\\"; disk = [ "x" ]', "not a line key = value"),
        (XL, 'on_crash = "a"; disk = [ "file:/etc/shadow,xvdz,r" ]', "not a line key = value"),
        (XL, 'on_crash = "a\r"', "not a line key = value"),
        (XL, 'on_crash = [ "a"', "not a line key = value"),
        (XL, "just words", "not a line key = value"),
    ],
)
def test_raw_that_reaches_a_host_file_or_breaks_the_configuration_is_refused(check, data, message):
    """Finding 2: RAW for kvm attached /etc/shadow as a disk and Xen RAW was appended as is; now
    each must be elements (kvm) or quoted settings (xen) of an allow-list, RAW/DATA named."""
    with pytest.raises(BadValue, match=r"^RAW/DATA") as caught:
        check("RAW/DATA", data)
    assert message in str(caught.value)
