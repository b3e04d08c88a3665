"""Tags: CreateTags, DeleteTags, DescribeTags on instances (VMs) and AMIs (images).

Pure and blocking. A resource's tags are one attribute, `EC2_TAGS`, of the VM's USER_TEMPLATE
(`one.vm.update`, merge) or the image's TEMPLATE (`one.image.update`, merge), written as a URL
query string (`Name=web&env=prod`): EC2 keys may hold characters a template attribute name
cannot, and this needs no escaping rule of its own. At most 50 tags per resource, keys up to
128 characters and values up to 256, as EC2.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, urlencode

from econe import filters
from econe.context import Context
from econe.errors import Ec2Error
from econe.one import attribute, quote, text, xml
from econe.query import QueryRequest, as_list, format_id, parse_id

ATTRIBUTE = "EC2_TAGS"
MAX_TAGS = 50


def tags_of(element: ET.Element) -> dict[str, str]:
    """The tags of a VM or image document."""
    raw = attribute(element, ATTRIBUTE)
    return dict(parse_qsl(raw, keep_blank_values=True)) if raw else {}


def _resources(call: QueryRequest) -> list[tuple[str, int]]:
    """(kind, number) of each ResourceId.N: `i-…` an instance, `ami-…` an image."""
    ids = as_list(call.params, "ResourceId")
    if not ids:
        raise Ec2Error("MissingParameter", "the request must contain the parameter ResourceId")
    found = []
    for rid in ids:
        kind = "ami" if isinstance(rid, str) and rid.startswith("ami-") else "i"
        if not (isinstance(rid, str) and rid.startswith(("i-", "ami-"))):
            raise Ec2Error("InvalidID", f"the ID {str(rid)[:40]!r} is not valid")
        found.append((kind, parse_id(rid, kind)))
    return found


def _tags(call: QueryRequest, values: bool) -> list[tuple[str, str | None]]:
    tags = []
    for tag in as_list(call.params, "Tag"):
        key = tag.get("Key") if isinstance(tag, dict) else None
        value = tag.get("Value") if isinstance(tag, dict) else None
        if not isinstance(key, str) or not 0 < len(key) <= 128 or key.startswith("aws:"):
            raise Ec2Error("InvalidParameterValue", "a tag key must be 1 to 128 characters")
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise Ec2Error("InvalidParameterValue", "a tag value must be at most 256 characters")
        tags.append((key, value if value is not None or not values else ""))
    return tags


def _read(ctx: Context, kind: str, number: int) -> ET.Element:
    if kind == "i":
        found = ctx.call("one.vm.info", number, not_found="InvalidInstanceID.NotFound")
    else:
        found = ctx.call("one.image.info", number, not_found="InvalidAMIID.NotFound")
    return xml(found)


def _write(ctx: Context, kind: str, number: int, tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise Ec2Error("TagLimitExceeded", f"at most {MAX_TAGS} tags per resource")
    method = "one.vm.update" if kind == "i" else "one.image.update"
    ctx.call(method, number, f"{ATTRIBUTE} = {quote(urlencode(tags))}\n", 1)


def launch_tags(specs: Any) -> str:
    """RunInstances' `TagSpecification` (resource type `instance`) as the VM's EC2_TAGS line."""
    tags: dict[str, str] = {}
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict) or spec.get("ResourceType") != "instance":
            raise Ec2Error("InvalidParameterValue", "only instances can be tagged at launch")
        call = QueryRequest("RunInstances", "", {"Tag": spec.get("Tag")})
        tags |= {k: v or "" for k, v in _tags(call, values=True)}
    if len(tags) > MAX_TAGS:
        raise Ec2Error("TagLimitExceeded", f"at most {MAX_TAGS} tags per resource")
    return f"\n{ATTRIBUTE} = {quote(urlencode(tags))}\n" if tags else ""


def create_tags(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    resources, tags = _resources(call), _tags(call, values=True)
    current = [(k, n, tags_of(_read(ctx, k, n))) for k, n in resources]  # all exist first
    for kind, number, had in current:
        _write(ctx, kind, number, {**had, **{k: v or "" for k, v in tags}})
    return {"return": True}


def delete_tags(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """A Tag with a Value deletes the key only when it has that value (EC2's rule)."""
    resources, tags = _resources(call), _tags(call, values=False)
    current = [(k, n, tags_of(_read(ctx, k, n))) for k, n in resources]
    for kind, number, had in current:
        kept = dict(had)
        for key, value in tags or [(k, None) for k in had]:
            if key in kept and (value is None or kept[key] == value):
                del kept[key]
        if kept != had:
            _write(ctx, kind, number, kept)
    return {"return": True}


READERS: dict[str, filters.Reader] = {
    "resource-id": lambda r: r["resourceId"],
    "resource-type": lambda r: r["resourceType"],
    "key": lambda r: r["key"],
    "value": lambda r: r["value"],
}


def describe_tags(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """The tags of the caller's instances and images."""
    rows = []
    for method, params, kind, name in (
        ("one.vmpool.infoextended", (-3, -1, -1, -1), "i", "instance"),
        ("one.imagepool.info", (-3, -1, -1), "ami", "image"),
    ):
        for element in ctx.listing(method, *params):
            rid = format_id(int(text(element, "ID")), kind)
            for key, value in sorted(tags_of(element).items()):
                rows.append({"resourceId": rid, "resourceType": name, "key": key, "value": value})
    return {"tagSet": filters.select(rows, call.params.get("Filter"), READERS)}


ACTIONS = {"CreateTags": create_tags, "DeleteTags": delete_tags, "DescribeTags": describe_tags}
