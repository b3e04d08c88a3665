"""EC2 hosts in placement: a VM goes to an EC2 region only with an EC2 section meant for it and
while the region has room for its instance type; pure.

An EC2 region is a host whose monitoring says ``HYPERVISOR = ec2`` (drivers/im_ec2.py). Its
capacity is a number of instances per type, which it reports as ``EC2_FREE_<TYPE>`` (how many
more of that type may start: ``EC2_FREE_M1_SMALL = 5``). CPU and MEMORY of the VM template do
not say how big an instance is, so counting them against TOTALCPU is not enough: the type's
count is what the driver enforces, and what the scheduler must respect first.

Monitoring is periodic, so ``EC2_FREE_<TYPE>`` does not yet count the instances deployed since
the region was last monitored. The region also reports its limits, ``EC2_LIMIT_<TYPE>``, and
the scheduler counts the VMs oned has on it (ACTIVE, by the section they run with): the room
left is the smaller of the limit less those VMs and the monitored free count, each less what
the round gives away.

A VM's sections are its ``EC2 = [ ... ]`` vectors; the one for a host is chosen as vmm_ec2
chooses it (drivers/ec2_section.py): CLOUD equal to the host's name (case-insensitive), else
the only section if it names no CLOUD.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """The parts of a VM's EC2 section placement needs: its CLOUD and INSTANCETYPE."""

    cloud: str = ""
    instance_type: str = ""


def is_ec2(attrs: Mapping[str, object]) -> bool:
    return str(attrs.get("HYPERVISOR", "")).lower() == "ec2"


def section_for(sections: Sequence[Section], host: str) -> Section | None:
    """The section vmm_ec2 would use on ``host``, or None."""
    for section in sections:
        if section.cloud.lower() == host.lower():
            return section
    if len(sections) == 1 and not sections[0].cloud:
        return sections[0]
    return None


def free_attribute(instance_type: str) -> str:
    """NOTE: the names drivers/im_ec2.py gives the free count and the limit of a type (a wire
    contract): EC2_FREE_M1_SMALL, EC2_LIMIT_M1_SMALL."""
    return "EC2_FREE_" + _suffix(instance_type)


def limit_attribute(instance_type: str) -> str:
    return "EC2_LIMIT_" + _suffix(instance_type)


def _suffix(instance_type: str) -> str:
    return instance_type.upper().replace(".", "_").replace("-", "_")


def reason(
    host: str,
    attrs: Mapping[str, object],
    given: Mapping[str, int],
    sections: Sequence[Section],
    active: Mapping[str, int] | None = None,
) -> str | None:
    """Why a VM with ``sections`` may not go to ``host`` (None for hosts that are not EC2, or
    when it may); ``given`` counts the instances of each type this round already sent there,
    ``active`` the VMs oned has there by type (None: not counted)."""
    if not is_ec2(attrs):
        return None
    section = section_for(sections, host)
    if section is None:
        return "no EC2 section for this host (EC2 = [ CLOUD = ... ])"
    kind = section.instance_type
    if not kind:
        return None  # the driver's default type, which the host does not name
    free, limit = attrs.get(free_attribute(kind)), attrs.get(limit_attribute(kind))
    if free is None:
        return f"instance type {kind} is not offered (no {free_attribute(kind)})"
    try:
        left = int(float(str(free))) - given.get(kind, 0)
        if limit is not None and active is not None:
            left = min(left, int(float(str(limit))) - active.get(kind, 0) - given.get(kind, 0))
    except ValueError:
        return f"{free_attribute(kind)} = {free} or {limit_attribute(kind)} is not a number"
    if left <= 0:
        return f"no {kind} instance left (its limit is reached)"
    return None


def active_instances(vm_pool: ET.Element) -> dict[int, Counter[str]]:
    """Host id -> how many VMs of each instance type oned has there, from a ``<VM_POOL>`` of
    ACTIVE VMs (the summary documents carry the EC2 sections and the last HISTORY)."""
    found: dict[int, Counter[str]] = {}
    for vm in vm_pool.findall("VM"):
        hid, host = vm.findtext("HISTORY_RECORDS/HISTORY/HID"), vm.findtext("HISTORY/HOSTNAME")
        if hid is None or host is None:
            continue
        sections = tuple(
            Section((e.findtext("CLOUD") or "").strip(), (e.findtext("INSTANCETYPE") or "").strip())
            for e in vm.findall("TEMPLATE/EC2")
        )
        if sections:
            found.setdefault(int(hid), Counter())[instance_type(sections, host)] += 1
    return found


def instance_type(sections: Sequence[Section], host: str) -> str:
    """The instance type a VM would start as on ``host`` ('' when unknown)."""
    section = section_for(sections, host)
    return section.instance_type if section is not None else ""
