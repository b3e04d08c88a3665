"""oned's XML as the dashboard's JSON shapes (share/doc/dashboard.md, "Reading").

Pure: elements in, dicts out. The STAT words are the CLI's (`onevm list`, `onehost list`,
`oneimage list`), from the same functions. A VM costs a handful of `find`s: 10,000 of them
take ~0.1 s (the VM page's budget is 1 s in the browser, parsing and drawing included).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from typing import Any

from cli.common import int_of, text_of
from cli.image_view import short_state, type_name
from cli.onehost import host_stat
from cli.oneuser import user_enabled
from cli.onevm import notice_text, vm_stat
from cli.onevnet import TYPES, vnet_size
from econe import feed

Json = dict[str, Any]
_WAITING = ("pend", "hold")
HOST_STATES = ("on", "off", "err", "init")  # always in the overview, 0 or more


def _owner(element: ET.Element) -> str:
    return element.findtext("USERNAME") or element.findtext("UNAME") or ""


def _notice(vm: ET.Element, name: str) -> str:
    """The last `name` (ERROR, SCHED_MESSAGE) of USER_TEMPLATE, else of TEMPLATE, one line."""
    for section in ("USER_TEMPLATE", "TEMPLATE"):
        part = vm.find(section)
        found = part.findall(name) if part is not None else None
        if found:
            return notice_text(found[-1])
    return ""


def vm(element: ET.Element) -> Json:
    """A VM of one.vmpool.info (or one.vm.info) as /api/vms lists it."""
    state = vm_stat(element)
    if state in _WAITING:
        reason = _notice(element, "SCHED_MESSAGE")
    elif state == "fail":
        reason = _notice(element, "ERROR")
    else:
        reason = ""
    # direct children only (ElementTree looks those up in C; a path walks in Python)
    last, template = element.find("HISTORY"), element.find("TEMPLATE")
    nic = template.find("NIC") if template is not None else None
    return {
        "id": int_of(element, "ID"),
        "uid": int_of(element, "UID"),
        "owner": _owner(element),
        "name": element.findtext("NAME") or "",
        "state": state,
        "host": (last.findtext("HOSTNAME") or "") if last is not None else "",
        "ip": (nic.findtext("IP") or "") if nic is not None else "",
        "cpu": int_of(element, "CPU"),
        "memory": int_of(element, "MEMORY"),
        "stime": int_of(element, "STIME"),
        "etime": int_of(element, "ETIME"),
        "reason": reason,
    }


def vms(pool: ET.Element) -> list[Json]:
    return [vm(e) for e in pool.iterfind("VM")]


def history(element: ET.Element) -> list[Json]:
    """A VM's HISTORY_RECORDS (one.vm.info) in order."""
    return [
        {
            "seq": int_of(h, "SEQ"),
            "host": text_of(h, "HOSTNAME"),
            "stime": int_of(h, "STIME"),
            "etime": int_of(h, "ETIME"),
            "reason": int_of(h, "REASON"),
        }
        for h in element.iterfind("HISTORY_RECORDS/HISTORY")
    ]


def host(element: ET.Element) -> Json:
    share = element.find("HOST_SHARE")
    share = share if share is not None else ET.Element("HOST_SHARE")
    return {
        "id": int_of(element, "ID"),
        "name": text_of(element, "NAME"),
        "state": host_stat(element),
        "im_mad": text_of(element, "IM_MAD"),
        "vm_mad": text_of(element, "VM_MAD"),
        "tm_mad": text_of(element, "TM_MAD"),
        "rvm": int_of(share, "RUNNING_VMS"),
        "cpu_total": int_of(share, "MAX_CPU"),
        "cpu_used": int_of(share, "USED_CPU"),
        "cpu_alloc": int_of(share, "CPU_USAGE"),
        "mem_total": int_of(share, "MAX_MEM"),
        "mem_used": int_of(share, "USED_MEM"),
        "mem_alloc": int_of(share, "MEM_USAGE"),
        "last_mon": int_of(element, "LAST_MON_TIME"),
        "error": _host_error(element),
    }


def _host_error(element: ET.Element) -> str:
    """The monitoring error of a failed host (its TEMPLATE's last ERROR), else ''."""
    if host_stat(element) != "err":
        return ""
    found = element.findall("TEMPLATE/ERROR")
    return notice_text(found[-1]) if found else ""


def hosts(pool: ET.Element) -> list[Json]:
    return [host(e) for e in pool.iterfind("HOST")]


def overview(host_list: Iterable[Json], vm_list: Iterable[Json]) -> Json:
    """Hosts by state, VMs by state, and the capacity of the hosts that are not disabled."""
    host_list = list(host_list)
    by_state = dict.fromkeys(HOST_STATES, 0) | Counter(h["state"] for h in host_list)
    counted = [h for h in host_list if h["state"] != "off"]
    return {
        "hosts": by_state,
        "vms": dict(Counter(v["state"] for v in vm_list)),
        "capacity": {
            "cpu_used": sum(h["cpu_alloc"] for h in counted),
            "cpu_total": sum(h["cpu_total"] for h in counted),
            "mem_used": sum(h["mem_alloc"] for h in counted),
            "mem_total": sum(h["mem_total"] for h in counted),
        },
    }


def vnet(element: ET.Element) -> Json:
    return {
        "id": int_of(element, "ID"),
        "uid": int_of(element, "UID"),
        "owner": _owner(element),
        "name": text_of(element, "NAME"),
        "type": TYPES.get(text_of(element, "TYPE"), text_of(element, "TYPE")),
        "bridge": text_of(element, "BRIDGE"),
        "public": bool(int_of(element, "PUBLIC")),
        "leases_used": int_of(element, "TOTAL_LEASES") or int_of(element, "USED_LEASES"),
        "size": vnet_size(element),
    }


def vnets(pool: ET.Element) -> list[Json]:
    return [vnet(e) for e in pool.iterfind("VNET")]


def leases(element: ET.Element) -> list[Json]:
    """The leases one.vn.info lists (1.4/2.0's LEASES/LEASE: those in use, every one of a
    FIXED network), with the VM that holds each (-1: none)."""
    return [
        {
            "ip": text_of(lease, "IP"),
            "mac": text_of(lease, "MAC"),
            "vid": int_of(lease, "VID", -1) if int_of(lease, "USED", 1) else -1,
        }
        for lease in element.iterfind("LEASES/LEASE")
    ]


def user(element: ET.Element) -> Json:
    return {
        "id": int_of(element, "ID"),
        "name": text_of(element, "NAME"),
        "enabled": user_enabled(element) == "True",
    }


def users(pool: ET.Element) -> list[Json]:
    return [user(e) for e in pool.iterfind("USER")]


def image(element: ET.Element) -> Json:
    return {
        "id": int_of(element, "ID"),
        "uid": int_of(element, "UID"),
        "owner": _owner(element),
        "name": text_of(element, "NAME"),
        "type": type_name(element),
        "state": short_state(element),
        "size": int_of(element, "SIZE"),
        "public": bool(int_of(element, "PUBLIC")),
        "persistent": bool(int_of(element, "PERSISTENT")),
        "running_vms": int_of(element, "RUNNING_VMS"),
    }


def images(pool: ET.Element) -> list[Json]:
    return [image(e) for e in pool.iterfind("IMAGE")]


# The kinds of one.system.changes (`econe.feed`), their event name and their view.
KINDS = {
    "VM": ("vm", vm),
    "HOST": ("host", host),
    "VNET": ("vnet", vnet),
    "IMAGE": ("image", image),
    "USER": ("user", user),
}


def changes(root: ET.Element) -> tuple[str, int, bool, list[tuple[str, Json]]]:
    """A `<CHANGES>` reply as (epoch, seq, reset, [(event name, JSON)...]): the objects as the
    listings show them, then `removed` events."""
    found = feed.read(root)
    events = [
        (KINDS[kind][0], KINDS[kind][1](element))
        for kind, elements in found.listed.items()
        if kind in KINDS
        for element in elements
    ]
    events += [
        ("removed", {"kind": KINDS[kind][0], "id": vid})
        for kind, ids in found.removed.items()
        if kind in KINDS
        for vid in ids
    ]
    return found.epoch, found.seq, found.reset, events
