"""The values a VMM driver may render into a hypervisor's configuration: one allow-list pattern
per kind of field, shared by the libvirt and the xl renderers.

oned checks a user's template before it reaches a driver; these checks are the drivers' own, so
that a value oned let through by mistake still cannot reach a host. Each function takes the
attribute's name (``NIC/BRIDGE``) and its value, and returns the value, or raises BadValue naming
the attribute and showing the value (escaped, cut to 64 characters). Values are never rewritten
or dropped: a template that does not fit fails its DEPLOY.
"""

from __future__ import annotations

import ipaddress
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping

_DEVICE = re.compile(r"(hd|sd|vd|xvd|fd)[a-z]{1,3}[0-9]{0,3}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_INTERFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")  # Linux: IFNAMSIZ - 1, no / : space
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")
_KEYMAP = re.compile(r"[a-z]{2,3}(-[a-z]{2,4})?")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # models, machine types, script names
_PATH = re.compile(r"(/[A-Za-z0-9_.+~@%-]+)+/?")
_ROOT = re.compile(r"[A-Za-z0-9/_.:=-]{1,128}")
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


class BadValue(ValueError):
    """A value that may not be rendered; the message names the attribute."""


def shown(value: str) -> str:
    """The value as a message shows it: double-quoted, escaped, at most 64 characters."""
    return json.dumps(value if len(value) <= 64 else value[:64] + "...")


def refuse(name: str, value: str, what: str) -> BadValue:
    return BadValue(f"{name} = {shown(value)}: {what}")


def matching(pattern: re.Pattern[str], what: str, name: str, value: str) -> str:
    if not pattern.fullmatch(value):
        raise refuse(name, value, what)
    return value


def device(name: str, value: str) -> str:
    """A guest disk's device name: hd, sd, vd, xvd or fd and a letter or three (hda, xvdb)."""
    return matching(_DEVICE, "not a disk device name such as hda, sdb, vdc or xvda", name, value)


def mac(name: str, value: str) -> str:
    return matching(_MAC, "not a MAC address such as 02:00:0a:00:00:01", name, value)


def interface(name: str, value: str) -> str:
    """A Linux network interface or bridge name: 1-15 letters, digits, '_', '.', '-'."""
    return matching(_INTERFACE, "not a network interface name (15 characters at most)", name, value)


def ip(name: str, value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise refuse(name, value, "not an IP address") from None
    return value


def listen(name: str, value: str) -> str:
    """An address to listen on: an IP address or a host name."""
    try:
        return ip(name, value)
    except BadValue:
        if len(value) > 253:
            raise
        return matching(_HOST_NAME, "not an IP address or a host name", name, value)


def keymap(name: str, value: str) -> str:
    return matching(_KEYMAP, "not a keymap such as en-us or es", name, value)


def word(name: str, value: str) -> str:
    """A model or machine name: letters, digits, '_', '.', '-' (virtio, e1000, pc-i440fx-2.1)."""
    return matching(_WORD, "must be letters, digits, '_', '.' or '-'", name, value)


def port(name: str, value: str, low: int = 0) -> str:
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= 65535:
        raise refuse(name, value, f"not a port number ({low}-65535)")
    return value


def positive(name: str, value: str) -> str:
    if not value.isascii() or not value.strip().isdigit() or int(value) <= 0:
        raise refuse(name, value, "must be a positive integer")
    return str(int(value))


def number(name: str, value: str) -> str:
    return matching(_NUMBER, "not a number", name, value)


def path(name: str, value: str) -> str:
    """An absolute path of letters, digits and ``_ . + ~ @ % -`` (no quote, comma, '=', space,
    control character or backslash), without a ``.`` or ``..`` segment."""
    what = "must be an absolute path without '..' of letters, digits and _ . + ~ @ % -"
    matching(_PATH, what, name, value)
    if any(part in (".", "..") for part in value.split("/")):
        raise refuse(name, value, what)
    return value


def script(name: str, value: str) -> str:
    """A script: an absolute path (as ``path``) or a bare name the hypervisor looks up."""
    return path(name, value) if value.startswith("/") else word(name, value)


def root(name: str, value: str) -> str:
    """The guest's root device (sda1, /dev/vda1, UUID=...): no space, quote or '..'."""
    matching(_ROOT, "not a root device such as sda1 or /dev/vda1", name, value)
    if ".." in value:
        raise refuse(name, value, "not a root device such as sda1 or /dev/vda1")
    return value


def printable(name: str, value: str, limit: int = 1024) -> str:
    """Free text (a kernel command line, a password): printable ASCII, ``limit`` at most."""
    if len(value) > limit or not _PRINTABLE.fullmatch(value):
        raise refuse(name, value, f"must be printable ASCII ({limit} characters at most)")
    return value


def secret(name: str, value: str, forbidden: str = "") -> str:
    """A password: printable ASCII, 64 characters at most, none of ``forbidden``; the message
    of a refusal does not show it (it goes to the VM's log)."""
    if len(value) > 64 or not _PRINTABLE.fullmatch(value) or any(c in value for c in forbidden):
        but = f", without {shown(forbidden)}" if forbidden else ""
        raise BadValue(f"{name} (not shown): must be printable ASCII, 64 characters at most{but}")
    return value


def one_of(name: str, value: str, allowed: Collection[str]) -> str:
    """``value`` lower-cased, when it is one of ``allowed`` (lower-case words)."""
    if value.lower() not in allowed:
        raise refuse(name, value, f"not one of {', '.join(allowed)}")
    return value.lower()


Check = Callable[[str, str], str]
OS: dict[str, Check] = {"ARCH": word, "MACHINE": word, "KERNEL": path, "INITRD": path}
OS |= {"BOOTLOADER": path, "ROOT": root, "KERNEL_CMD": printable}
NIC: dict[str, Check] = {"BRIDGE": interface, "MAC": mac, "TARGET": interface, "SCRIPT": script}
NIC["MODEL"] = word
GRAPHICS: dict[str, Check] = {"LISTEN": listen, "PORT": port, "KEYMAP": keymap}
GRAPHICS["PASSWD"] = secret


def checked(vector: dict[str, str], prefix: str, checks: Mapping[str, Check]) -> dict[str, str]:
    """``vector`` after each of its non-empty values named in ``checks`` passed its check."""
    for key, check in checks.items():
        if vector.get(key):
            check(f"{prefix}/{key}", vector[key])
    return vector


# ---------------------------------------------------------------------------------------------
# RAW: hypervisor configuration oneadmin adds as it is, within what reaches no host resource

LIBVIRT_RAW = frozenset(
    {"cpu", "clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm", "cputune"}
    | {"memtune", "numatune", "iothreads", "devices"}
)
LIBVIRT_RAW_DEVICES = frozenset({"video", "sound", "watchdog", "memballoon", "controller"})
LIBVIRT_RAW_DEVICES |= {"input", "panic"}
XL_RAW = frozenset(
    {"on_poweroff", "on_reboot", "on_crash", "on_watchdog", "on_soft_reset", "cpus", "cpus_soft"}
    | {"cap", "acpi", "acpi_s3", "acpi_s4", "apic", "pae", "hap", "nestedhvm", "viridian"}
    | {"localtime", "rtc_timeoffset", "timer_mode", "hpet", "tsc_mode", "stdvga", "videoram"}
    | {"vga", "nographic", "usb", "xen_platform_pci", "shadow_memory"}
)
_XL_ITEM = r"""(?:"[^"\\\x00-\x1f\x7f]*"|'[^'\x00-\x1f\x7f]*'|[0-9][0-9a-fA-FxX]*)"""
_XL_VALUE = rf"(?:{_XL_ITEM}|\[ *(?:{_XL_ITEM} *(?:, *{_XL_ITEM} *)*,? *)?\])"
_XL_LINE = re.compile(
    rf"[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*{_XL_VALUE}[ \t]*(?:#[^\x00-\x1f\x7f]*)?"
)
_XL_BLANK = re.compile(r"[ \t]*(?:#[^\x00-\x1f\x7f]*)?")


def libvirt_raw(name: str, data: str) -> list[ET.Element]:
    """The elements of RAW DATA for libvirt, to append to ``<domain>``: well-formed XML elements
    only (parsed, so nothing can close ``<domain>``), each one of LIBVIRT_RAW, a ``<devices>``
    holding only LIBVIRT_RAW_DEVICES, no namespaced element (qemu:commandline) and no
    ``<source>`` anywhere (a host file, disk or socket)."""
    try:
        wrapper = ET.fromstring(f"<raw>{data}</raw>")
    except ET.ParseError as err:
        raise BadValue(f"{name} is not well-formed XML: {err}") from None
    if (wrapper.text or "").strip() or any((e.tail or "").strip() for e in wrapper):
        raise BadValue(f"{name} must hold XML elements only")
    for element in wrapper:
        if element.tag not in LIBVIRT_RAW:
            raise BadValue(f"{name}: <{element.tag}> is not an element RAW may add")
        if element.tag == "devices" and any(e.tag not in LIBVIRT_RAW_DEVICES for e in element):
            kinds = ", ".join(sorted(LIBVIRT_RAW_DEVICES))
            raise BadValue(f"{name}: a device in <devices> must be one of {kinds}")
        for inner in element.iter():
            if inner.tag.startswith("{") or inner.tag == "source":
                raise BadValue(f"{name}: <{inner.tag}> may not be added")
    return list(wrapper)


def xl_raw(name: str, data: str) -> list[str]:
    """The lines of RAW DATA for xl: each ``key = value`` with a key of XL_RAW and a number, a
    quoted string (without backslash or line break) or a list of those, or blank, or a comment."""
    lines = data.strip("\n").split("\n") if data.strip() else []
    for line in lines:
        match = _XL_LINE.fullmatch(line)
        if match is None and not _XL_BLANK.fullmatch(line):
            raise refuse(name, line, "not a line key = value with a quoted string or a number")
        if match is not None and match.group(1) not in XL_RAW:
            raise refuse(name, line, f"{match.group(1)} is not a key RAW may set")
    return lines
