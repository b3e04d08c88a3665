"""The EC2 side of a VM for vmm_ec2: its template's EC2 section, the RunInstances arguments made
from it, EC2 instance states as POLL states, and the POLL answer. Pure: text in, values out.

A VM template may carry several sections, one per EC2 host (region or account)::

    EC2 = [ AMI = "ami-ccf615a5", KEYPAIR = "keypair", AUTHORIZED_PORTS = "22",
            INSTANCETYPE = "m1.small", ELASTICIP = "...", CLOUD = "ec2",
            SECURITYGROUPS = "sg-1,web", SUBNETID = "subnet-1", AVAILABILITYZONE = "us-east-1a",
            TAGS = "team=web,env=prod", USERDATA = "#!/bin/sh ..." ]

Missing keys come from the driver's configuration (its template defaults).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.ec2_conf import Limit
from drivers.protocol import format_attribute

KEYS = ("AMI", "KEYPAIR", "AUTHORIZEDPORTS", "INSTANCETYPE", "ELASTICIP", "CLOUD",
        "SECURITYGROUPS", "SUBNETID", "AVAILABILITYZONE", "TAGS", "USERDATA")  # fmt: skip
# EC2 instance state -> POLL STATE (reference §11.2 and §1.5). A stopped instance looks paused
# (oned suspends the VM); shutting-down and terminated are gone. Any other name: unknown.
STATES = {"pending": "a", "running": "a", "stopping": "-", "stopped": "p",
          "shutting-down": "d", "terminated": "d"}  # fmt: skip
GONE = frozenset({"shutting-down", "terminated"})
NOT_IMPLEMENTED = "Action not implemented by driver EC2Driver"
_ID = re.compile(r"[a-z]+-[0-9a-f]{8,17}")
_AMI = re.compile(r"ami-[0-9a-zA-Z]{1,32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/()#,@\[\]+=&;{}!$*-]{0,254}")
_PORTS = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_TAG_KEY = re.compile(r"[A-Za-z0-9 _.:/=+@-]{1,128}")
MAX_USERDATA = 16384


class SectionError(ValueError):
    """An EC2 section that cannot be deployed; the message names the attribute."""


@dataclass(frozen=True)
class Vm:
    """What vmm_ec2 reads from the deployment file (the VM's XML)."""

    id: str
    name: str
    sections: tuple[dict[str, str], ...]


def parse_vm(text: str) -> Vm:
    """The VM's id, name and EC2 sections from oned's XML of it; SectionError if unreadable."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise SectionError(f"the deployment file is not XML: {err}") from None
    template = root.find("TEMPLATE") if root.tag == "VM" else root
    if template is None:
        raise SectionError("the deployment file has no TEMPLATE")
    sections = tuple(
        {child.tag.upper(): (child.text or "").strip() for child in element}
        for element in template.findall("EC2")
    )
    return Vm(root.findtext("ID", "").strip(), root.findtext("NAME", "").strip(), sections)


def choose_section(sections: tuple[dict[str, str], ...], host: str) -> dict[str, str]:
    """The section whose CLOUD is ``host`` (case-insensitive); else the only section, unless
    its CLOUD names another host. NOTE: 1.4's driver also took a lone section meant for another
    cloud; here it fails, naming CLOUD."""
    if not sections:
        raise SectionError(f"EC2: the template has no EC2 section for host {host}")
    for section in sections:
        if section.get("CLOUD", "").lower() == host.lower():
            return section
    if len(sections) == 1 and not sections[0].get("CLOUD"):
        return sections[0]
    clouds = ", ".join(s.get("CLOUD") or "(none)" for s in sections)
    raise SectionError(f"EC2 CLOUD: no EC2 section for host {host} (CLOUD: {clouds})")


def merged(section: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    """The section over the driver's defaults; AUTHORIZED_PORTS read as 2.0's AUTHORIZEDPORTS."""
    values = {k: v for k, v in defaults.items() if v}
    for key, value in section.items():
        key = "AUTHORIZEDPORTS" if key == "AUTHORIZED_PORTS" else key
        if value:
            values[key] = value
    return values


def parse_ports(text: str) -> tuple[tuple[int, int], ...]:
    """``22,80,8000-8080`` as (from, to) ranges; SectionError naming AUTHORIZED_PORTS."""
    ranges = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _PORTS.fullmatch(part)
        low = int(match.group(1)) if match else 0
        high = int(match.group(2) or low) if match else 0
        if not match or not 1 <= low <= high <= 65535:
            raise SectionError(f"EC2 AUTHORIZED_PORTS: {part!r} is not a port or a range a-b")
        ranges.append((low, high))
    return tuple(sorted(set(ranges)))


def parse_tags(text: str) -> dict[str, str]:
    """``key=value,key=value``; keys starting with ``aws:`` or ``one:`` are refused."""
    tags = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _TAG_KEY.fullmatch(key) or key.lower().startswith(("aws:", "one:")):
            raise SectionError(f"EC2 TAGS: {part[:64]!r} is not key=value (no aws: or one: key)")
        if len(value) > 256:
            raise SectionError(f"EC2 TAGS: the value of {key} is longer than 256 characters")
        tags[key] = value
    return tags


def security_groups(text: str) -> tuple[list[str], list[str]]:
    """SECURITYGROUPS split into group ids (``sg-...``) and group names."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    for part in parts:
        if not _NAME.fullmatch(part):
            raise SectionError(f"EC2 SECURITYGROUPS: {part[:64]!r} is not a group id or name")
    return [p for p in parts if p.startswith("sg-")], [p for p in parts if not p.startswith("sg-")]


def instance_type(values: Mapping[str, str], limits: Mapping[str, Limit]) -> str:
    """INSTANCETYPE (m1.small by default), which the limits must allow at least once."""
    name = values.get("INSTANCETYPE", "m1.small")
    limit = limits.get(name)
    if limit is None:
        allowed = ", ".join(sorted(limits)) or "none"
        raise SectionError(f"EC2 INSTANCETYPE: {name!r} has no limit here (allowed: {allowed})")
    if limit.count <= 0:
        raise SectionError(f"EC2 INSTANCETYPE: the limit of {name} instances is 0")
    return name


def checked(values: Mapping[str, str], key: str, pattern: re.Pattern[str]) -> str | None:
    value = values.get(key)
    if value is not None and not pattern.fullmatch(value):
        raise SectionError(f"EC2 {key}: {value[:64]!r} is not valid")
    return value


def run_arguments(values: Mapping[str, str], kind: str, token: str, tags: dict[str, str]) -> dict:
    """RunInstances's keyword arguments (one instance) for a merged section."""
    ami = values.get("AMI")
    if not ami:
        raise SectionError("EC2 AMI: missing (the AMI of the VM's EC2 section is mandatory)")
    checked(values, "AMI", _AMI)
    args: dict[str, Any] = {"ImageId": ami, "MinCount": 1, "MaxCount": 1, "InstanceType": kind,
                            "ClientToken": token}  # fmt: skip
    if keypair := checked(values, "KEYPAIR", _NAME):
        args["KeyName"] = keypair
    if subnet := checked(values, "SUBNETID", _ID):
        args["SubnetId"] = subnet
    if zone := checked(values, "AVAILABILITYZONE", re.compile(r"[a-z0-9-]{1,64}")):
        args["Placement"] = {"AvailabilityZone": zone}
    if userdata := values.get("USERDATA"):
        if len(userdata.encode()) > MAX_USERDATA:
            raise SectionError(f"EC2 USERDATA: longer than {MAX_USERDATA} bytes")
        args["UserData"] = userdata  # boto3 base64-encodes it
    pairs = [{"Key": k, "Value": v} for k, v in tags.items()]
    args["TagSpecifications"] = [{"ResourceType": "instance", "Tags": pairs}]
    return args


def client_token(cloud: str, vid: str, seq: str) -> str:
    """The same for a re-issued DEPLOY of one history record, different for a new one (a VM
    resumed or rescheduled), and never shared by two installs (EC2 allows 64 ASCII chars)."""
    return f"one-{cloud}-{vid}-{seq}"[:64]


def instance_tags(cloud: str, vm: Vm, vid: str, token: str, extra: Mapping[str, str]) -> dict:
    return {**extra, "Name": vm.name or f"one-{vid}", "one:vmid": vid, "one:cloud": cloud,
            "one:token": token}  # fmt: skip


def address_of(instance: Mapping[str, Any]) -> str:
    """The instance's public DNS name, else its public IP, else its private IP."""
    for key in ("PublicDnsName", "PublicIpAddress", "PrivateIpAddress"):
        if instance.get(key):
            return str(instance[key])
    return ""


def poll_info(instance: Mapping[str, Any] | None) -> str:
    """POLL's INFO (1.4's figures are always 0); STATE=d for an instance that is not there."""
    figures = "USEDMEMORY=0 USEDCPU=0 NETTX=0 NETRX=0"
    if instance is None:
        return f"{figures} STATE=d"
    name = instance.get("State", {}).get("Name", "")
    info = f"{figures} STATE={STATES.get(name, '-')}"
    address = address_of(instance)
    if name == "running" and address:
        info += " " + format_attribute("IP", address)
    return info
