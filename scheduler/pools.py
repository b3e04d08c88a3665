"""The scheduler's view of oned's pools: hosts and pending VMs, read over XML-RPC.

``fetch_*`` make one call each through a ``OneClient``; ``parse_*`` are pure functions from the
pool XML to small frozen records, so placement never sees XML.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from oned.client import OneClientError
from oned.expr import number_of
from scheduler.ec2 import Section

ALL_USERS = -2
PENDING = 1
ACTIVE = 3

_SHARE_FIELDS = (
    "MAX_CPU",
    "MAX_MEM",
    "CPU_USAGE",
    "MEM_USAGE",
    "FREE_CPU",
    "FREE_MEM",
    "USED_CPU",
    "USED_MEM",
    "RUNNING_VMS",
)


class Client(Protocol):
    """What the scheduler needs of ``oned.client.OneClient``."""

    def call(self, method: str, *params: Any) -> Any: ...


_VM_ID = re.compile(r"<VM>\s*<ID>\s*(\d+)\s*</ID>")


@dataclass(frozen=True)
class HostView:
    """One host as the scheduler sees it; CPU in percent (100 = one core), memory in KB.

    ``attrs`` is what REQUIREMENTS and RANK read: the host's own fields, overridden by its
    HOST_SHARE, overridden by its monitored TEMPLATE (OpenNebula 2.0's lookup order).
    """

    id: int
    name: str
    state: int
    last_mon_time: int
    max_cpu: int = 0
    max_mem: int = 0
    cpu_usage: int = 0
    mem_usage: int = 0
    free_cpu: int = 0
    free_mem: int = 0
    used_cpu: int = 0
    used_mem: int = 0
    running_vms: int = 0
    reserved_cpu: int = 0  # the host template's RESERVED_CPU (negative: over-commit)
    reserved_mem: int | None = None  # RESERVED_MEM; None: sched.conf's HYPERVISOR_MEM share
    attrs: Mapping[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PendingVm:
    """A PENDING VM: ``cpu`` as in its template (1.0 = one CPU), ``memory`` in MB."""

    id: int
    uid: int
    name: str
    cpu: float = 0.0
    memory: int = 0
    requirements: str = ""
    rank: str = ""
    ec2: tuple[Section, ...] = ()  # its EC2 = [ CLOUD, INSTANCETYPE, ... ] sections


def _text(element: ET.Element, path: str) -> str:
    found = element.find(path)
    return (found.text or "") if found is not None else ""


def _int(element: ET.Element, path: str) -> int:
    return int(number_of(_text(element, path)))


def _leaves(element: ET.Element | None) -> dict[str, str]:
    """The single (non-vector) children of ``element`` as NAME -> text."""
    if element is None:
        return {}
    return {child.tag.upper(): child.text or "" for child in element if len(child) == 0}


def host_from_xml(host: ET.Element) -> HostView:
    """A ``<HOST>`` element as a HostView."""
    share = host.find("HOST_SHARE")
    numbers = {name: _int(share, name) if share is not None else 0 for name in _SHARE_FIELDS}
    attrs: dict[str, object] = {**_leaves(host), **numbers, **_leaves(host.find("TEMPLATE"))}
    name = _text(host, "NAME")
    reserved_mem = attrs.get("RESERVED_MEM")
    # NOTE: onecloud extension: HOSTNAME defaults to the host's name (im_dummy reports none).
    attrs.setdefault("HOSTNAME", name)
    return HostView(
        id=_int(host, "ID"),
        name=name,
        state=_int(host, "STATE"),
        last_mon_time=_int(host, "LAST_MON_TIME"),
        **{key.lower(): value for key, value in numbers.items()},
        reserved_cpu=int(number_of(attrs.get("RESERVED_CPU"))),
        reserved_mem=None if reserved_mem in (None, "") else int(number_of(reserved_mem)),
        attrs=MappingProxyType(attrs),
    )


def vm_from_xml(vm: ET.Element) -> PendingVm:
    """A ``<VM>`` element of the pool (summary or full) as a PendingVm."""
    fields = _leaves(vm)
    tmpl = vm.find("TEMPLATE")
    template = _leaves(tmpl)
    return PendingVm(
        id=int(number_of(fields.get("ID"))),
        uid=int(number_of(fields.get("UID"))),
        name=fields.get("NAME", ""),
        cpu=number_of(template.get("CPU")),
        memory=int(number_of(template.get("MEMORY"))),
        requirements=template.get("REQUIREMENTS", ""),
        rank=template.get("RANK", ""),
        ec2=_sections(tmpl),
    )


def _sections(template: ET.Element | None) -> tuple[Section, ...]:
    if template is None:
        return ()
    return tuple(
        Section(_text(ec2, "CLOUD").strip(), _text(ec2, "INSTANCETYPE").strip())
        for ec2 in template.findall("EC2")
    )


def _root(xml: str, tag: str) -> ET.Element:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise OneClientError(f"malformed {tag}: {e}") from e
    if root.tag != tag:
        raise OneClientError(f"expected <{tag}>, got <{root.tag}>")
    return root


def parse_hosts(xml: str) -> list[HostView]:
    """Every host of a ``<HOST_POOL>`` document, by id."""
    hosts = [host_from_xml(h) for h in _root(xml, "HOST_POOL").findall("HOST")]
    return sorted(hosts, key=lambda h: h.id)


def parse_pending(xml: str, limit: int | None = None) -> list[PendingVm]:
    """The VMs of a ``<VM_POOL>`` document by id, the first ``limit`` of them when given."""
    vms = sorted((vm_from_xml(v) for v in _root(xml, "VM_POOL").findall("VM")), key=lambda v: v.id)
    return vms if limit is None else vms[:limit]


def pending_ids(xml: str) -> frozenset[int]:
    """The ids in a ``<VM_POOL>`` document, read without building the tree (the live check)."""
    return frozenset(int(vid) for vid in _VM_ID.findall(xml))


def fetch_hosts(client: Client) -> list[HostView]:
    """``one.hostpool.info``, parsed."""
    return parse_hosts(client.call("one.hostpool.info"))


def fetch_active(client: Client) -> ET.Element:
    """``one.vmpool.info(-2, -1, -1, 3)``: every user's ACTIVE VMs (what EC2 hosts run)."""
    return _root(str(client.call("one.vmpool.info", ALL_USERS, -1, -1, ACTIVE)), "VM_POOL")


def fetch_pending_xml(client: Client) -> str:
    """``one.vmpool.info(-2, -1, -1, 1)``: every user's PENDING VMs, as XML."""
    return str(client.call("one.vmpool.info", ALL_USERS, -1, -1, PENDING))


__all__ = [
    "Client",
    "HostView",
    "PendingVm",
    "fetch_active",
    "fetch_hosts",
    "fetch_pending_xml",
    "host_from_xml",
    "parse_hosts",
    "parse_pending",
    "pending_ids",
    "vm_from_xml",
]
