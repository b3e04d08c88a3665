"""The instance actions: RunInstances, DescribeInstances, Terminate/Reboot/Stop/StartInstances,
as the caller's own calls to oned (`one.vm.allocate`, `one.system.changes` and
`one.vmpool.info`, `one.vm.action`).

Pure and blocking (the server runs them on worker threads). An instance is a VM; its EC2 facts
(type, image, key, client token, reservation, launch index) are the `ECONE = [ ... ]` vector
RunInstances appends to the rendered instance type. A user lists only the VMs oned lists for
them (filter -3); DONE ones stay listed `terminated_expiration` seconds after their ETIME.
The rows of a user's VMs are kept between calls and brought up to date by oned's change feed
(`econe.vm_rows`).
"""

from __future__ import annotations

import contextlib
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl

from econe import feed, filters, responses, states, vm_rows
from econe.addresses import ATTRIBUTE as ELASTIC_IP
from econe.addresses import elastic_ip
from econe.context import Context
from econe.errors import Ec2Error
from econe.one import quote
from econe.query import QueryRequest, as_list, format_id, parse_id, required
from econe.tags import launch_tags
from oned.states import VmState

NOT_FOUND = "InvalidInstanceID.NotFound"
CAPACITY = "InsufficientInstanceCapacity"  # oned could not allocate (a lease, its limits)


def run_instances(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """Allocate MaxCount VMs (at least MinCount) of the type's template for the image."""
    p = call.params
    image = parse_id(required(p, "ImageId"), "ami")
    low, high = _counts(p, ctx.settings.max_count)
    token = p.get("ClientToken")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 64):
        raise Ec2Error("InvalidParameterValue", "ClientToken must be 1 to 64 characters")
    type_name = p.get("InstanceType") or "m1.small"
    key_name = p.get("KeyName")
    public_key = ctx.services.keypairs.public_key(ctx.uid(), key_name) if key_name else None
    ctx.call("one.image.info", image, not_found="InvalidAMIID.NotFound")
    base = ctx.services.types.render(
        str(type_name),
        image_id=image,
        key_name=key_name,
        public_key=public_key,
        user_data=_user_data(p.get("UserData")),
        network=ctx.settings.public_network,
    )
    base += launch_tags(p.get("TagSpecification"))
    extra = {"INSTANCE_TYPE": type_name, "IMAGE_ID": format_id(image, "ami")}
    extra |= {"KEY_NAME": key_name, "CLIENT_TOKEN": token}
    index = ctx.services.tokens
    if token is None or index is None:
        vids = _allocate(ctx, base, extra, low, high)
    else:
        user = ctx.creds.name if ctx.creds else ctx.user
        with index.lock(user):
            vids = index.find(user, token, lambda: _tokens(ctx))
            if not vids:
                vids = _allocate(ctx, base, extra, low, high)
                index.add(user, token, vids)
    return _reservation(ctx, [_row(vm) for vm in _vms(ctx, vids)])


def _counts(p: dict[str, Any], limit: int) -> tuple[int, int]:
    try:
        low, high = int(required(p, "MinCount")), int(required(p, "MaxCount"))
    except (TypeError, ValueError):
        raise Ec2Error("InvalidParameterValue", "MinCount and MaxCount are numbers") from None
    if not 1 <= low <= high:
        raise Ec2Error("InvalidParameterValue", "1 <= MinCount <= MaxCount is needed")
    if low > limit:
        raise Ec2Error("InstanceLimitExceeded", f"at most {limit} instances per request")
    return low, min(high, limit)


def _user_data(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 22000:
        raise Ec2Error("InvalidParameterValue", "UserData must be base64 text of at most 16 KiB")
    return value


def _allocate(ctx: Context, base: str, extra: dict, low: int, high: int) -> list[int]:
    """VMs allocated one by one; fewer than `low` → those made are deleted, the error raised."""
    made: list[int] = []
    for index in range(high):
        values = {**extra, "LAUNCH_INDEX": str(index)}
        if made:
            values["RESERVATION"] = f"r-{made[0]:08x}"
        vector = ", ".join(f"{k} = {quote(str(v))}" for k, v in values.items() if v is not None)
        try:
            template = f"{base}\nECONE = [ {vector} ]\n"
            made.append(int(ctx.call("one.vm.allocate", template, failed=CAPACITY)))
        except Ec2Error as exc:
            if len(made) >= low:
                break
            for vid in made:
                _quietly(ctx, "finalize", vid)
            if made:
                raise Ec2Error(CAPACITY, exc.message) from None
            raise
    return made


def _quietly(ctx: Context, action: str, vid: int) -> None:
    with contextlib.suppress(Ec2Error):
        ctx.call("one.vm.action", action, vid)


def _tokens(ctx: Context) -> dict[str, list[int]]:
    """The ClientTokens of the caller's VMs (DONE ones too) and the VMs of each (their rows,
    which DescribeInstances then finds kept)."""
    found: dict[str, list[int]] = {}
    for row in _pool_rows(ctx):
        if row["token"]:
            found.setdefault(row["token"], []).append(row["vid"])
    return found


def _vms(ctx: Context, vids: list[int]) -> list[ET.Element]:
    if not vids:
        return []
    return list(ctx.listing(*_infoset(vids)))


def _infoset(vids: list[int]) -> tuple[str, str, bool]:
    """The summary of the VMs `vids` (DONE ones too) that are the caller's."""
    return "one.vmpool.infoset", ",".join(map(str, vids)), False


def _row(vm: ET.Element) -> dict[str, Any]:
    """What Describe filters and answers of one VM. Only direct-child lookups (`_child`):
    ElementTree does those in C, a path such as `TEMPLATE/ECONE` in Python."""
    vid = int(_child(vm, "ID"))
    state, lcm = int(_child(vm, "STATE", "0")), int(_child(vm, "LCM_STATE", "0"))
    name, code = states.instance_state(state, lcm)
    template = vm.find("TEMPLATE")
    if template is None:
        template = ET.Element("TEMPLATE")
    vector = template.find("ECONE")
    econe = {e.tag: e.text or "" for e in vector} if vector is not None else {}
    image = econe.get("IMAGE_ID")
    if image is None:
        disk = _first(template, "DISK", "IMAGE_ID")
        image = format_id(int(disk), "ami") if disk.isdigit() else ""
    ip = _first(template, "NIC", "IP")
    user = vm.find("USER_TEMPLATE")
    public = elastic_ip({ELASTIC_IP: _child(user, ELASTIC_IP)}) if user is not None else None
    return {
        "id": format_id(vid, "i"),
        "vid": vid,
        "uid": _child(vm, "UID"),
        "owner": _child(vm, "UNAME"),
        "state": name,
        "code": str(code),
        "image": image,
        "type": econe.get("INSTANCE_TYPE", ""),
        "key": econe.get("KEY_NAME"),
        "token": econe.get("CLIENT_TOKEN"),
        "reservation": econe.get("RESERVATION") or f"r-{vid:08x}",
        "index": econe.get("LAUNCH_INDEX", "0"),
        "ip": ip,
        # the address clients reach the instance at (ipAddress, dnsName, filter ip-address):
        # its elastic address (EC2_ELASTIC_IP in USER_TEMPLATE, econe.addresses) when it has one
        "public_ip": public or ip,
        "stime": int(_child(vm, "STIME", "0")),
        "etime": int(_child(vm, "ETIME", "0")),
        "done": state in (VmState.DONE, VmState.FAILED),
        "tags": _tags(template, user),
    }


def _tags(template: ET.Element, user: ET.Element | None) -> dict[str, str]:
    """EC2_TAGS (`econe.tags.tags_of`: the USER_TEMPLATE's, updated, else the launch tags)
    split by hand when nothing in it is encoded (the common case), else by `parse_qsl`."""
    found = user.find("EC2_TAGS") if user is not None else None
    if found is None:
        found = template.find("EC2_TAGS")
    raw = found.text if found is not None else None
    if not raw:
        return {}
    if "%" in raw or "+" in raw:
        return dict(parse_qsl(raw, keep_blank_values=True))
    return dict(part.partition("=")[::2] for part in raw.split("&") if part)


def _child(element: ET.Element, tag: str, default: Any = "") -> Any:
    """The text of the first child `tag` (`econe.one.text` for a plain tag, in C)."""
    found = element.find(tag)
    return default if found is None or found.text is None else found.text


def _first(template: ET.Element, vector: str, tag: str) -> str:
    """`text(template, f"{vector}/{tag}")`: `tag` of the first `vector` that has one."""
    for element in template.iterfind(vector):
        found = element.find(tag)
        if found is not None:
            return found.text or ""
    return ""


def _item(ctx: Context, row: dict[str, Any]) -> tuple[str, str]:
    """The row's `<item>`, and its reservation's `<item>` up to the instances (`reservation_item`
    without `_TAIL`), both kept in the row (a user's mirror keeps a row while its VM is the
    same; the zone is the server's): 10,000 reservation ids would miss `responses`' cache."""
    zone = ctx.settings.zones[0]
    kept = row.get("xml")
    if kept is None or kept[0] != zone:
        head = responses.reservation_item(row["reservation"], row["owner"], "")
        kept = row["xml"] = (zone, _instance_xml(row, zone), head.removesuffix(_TAIL))
    return kept[1], kept[2]


_TAIL = "</instancesSet></item>"


def _instance_xml(row: dict[str, Any], zone: str) -> str:
    return responses.instance_xml(
        row["id"],
        row["image"],
        row["state"],
        row["type"],
        row["stime"],
        zone,
        amiLaunchIndex=row["index"],
        keyName=row["key"],
        privateIpAddress=row["ip"] or None,
        ipAddress=row["public_ip"] or None,
        privateDnsName=row["ip"],
        dnsName=row["public_ip"],
        clientToken=row["token"],
        tags=row["tags"],
    )


def _reservation(ctx: Context, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """RunInstances' answer: one reservation. NOTE: its ownerId is the user's name, as
    OpenNebula's econe wrote it (the seed's tools print it), not an AWS account number."""
    owner = rows[0]["owner"] if rows else (ctx.creds.name if ctx.creds else ctx.user)
    rid = rows[0]["reservation"] if rows else "r-00000000"
    items = responses.Raw("".join(_item(ctx, r)[0] for r in rows))
    return responses.reservation(rid, owner, items)


POOL = ("one.vmpool.info", -3, -1, -1, -2)  # the caller's VMs (summary form), in any state
MIRRORS = vm_rows.Mirrors(_row)

READERS: dict[str, filters.Reader] = {
    "instance-id": lambda r: r["id"],
    "instance-state-name": lambda r: r["state"],
    "instance-state-code": lambda r: r["code"],
    "instance-type": lambda r: r["type"],
    "image-id": lambda r: r["image"],
    "key-name": lambda r: r["key"],
    "reservation-id": lambda r: r["reservation"],
    "client-token": lambda r: r["token"],
    "private-ip-address": lambda r: r["ip"],
    "ip-address": lambda r: r["public_ip"],
    "owner-id": lambda r: (r["owner"], r["uid"]),
    "tag-key": lambda r: list(r["tags"]),
}


def listed(ctx: Context, ids: list[str]) -> list[dict[str, Any]]:
    """The caller's instances (`ids` only, when given: any unknown is NotFound)."""
    horizon = time.time() - ctx.settings.terminated_expiration
    rows = _pool_rows(ctx)
    rows = [r for r in rows if not r["done"] or r["etime"] >= horizon]
    if ids:
        by_id = {r["id"]: r for r in rows}
        missing = [i for i in ids if _canonical(i) not in by_id]
        if missing:
            raise Ec2Error(NOT_FOUND, f"The instance IDs '{', '.join(missing)}' do not exist")
        rows = [by_id[_canonical(i)] for i in dict.fromkeys(ids)]
    return rows


def _pool_rows(ctx: Context) -> list[dict[str, Any]]:
    """The rows of the caller's VMs (DONE ones too), from their mirror brought up to date by
    oned's change feed (`econe.vm_rows`); a stand-in oned without the feed is listed whole."""
    if ctx.creds is None or not hasattr(ctx.services.oned, "escaped"):
        return [_row(vm) for vm in ctx.listing(*POOL)]
    return MIRRORS.of(ctx.uid()).sync(_Caller(ctx))


class _Caller:
    """oned as a mirror asks it (`vm_rows.Oned`): the caller's own calls."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def changes(self, since: int, epoch: str) -> feed.Changes:
        return feed.read(self.ctx.listing(feed.METHOD, *feed.arguments(since, epoch)))

    def listing(self) -> ET.Element:
        return self.ctx.listing(*POOL)

    def vms(self, ids: list[int]) -> ET.Element:
        return self.ctx.listing(*_infoset(ids))


def _canonical(instance_id: str) -> str:
    return format_id(parse_id(instance_id, "i"), "i")


def describe_instances(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    rows = listed(ctx, as_list(call.params, "InstanceId"))
    if call.params.get("Filter") is not None:
        rows = filters.select(rows, call.params["Filter"], READERS)
    groups: dict[str, list[str]] = {}  # reservation head -> its instances' items
    for row in rows:
        instance, head = _item(ctx, row)
        group = groups.get(head)
        if group is None:
            groups[head] = [instance]
        else:
            group.append(instance)
    items = "".join(head + "".join(group) + _TAIL for head, group in groups.items())
    return {"reservationSet": responses.Raw(items)}


def _change(ctx: Context, call: QueryRequest, choose: Any) -> dict[str, Any]:
    """Check every id first (nothing is done on a bad one), then act on each."""
    ids = as_list(call.params, "InstanceId")
    if not ids:
        raise Ec2Error("MissingParameter", "the request must contain the parameter InstanceId")
    rows = listed(ctx, ids)
    changes = []
    for row in rows:
        action, current = choose(row)
        if action:
            ctx.call("one.vm.action", action, row["vid"], not_found=NOT_FOUND)
        changes.append(responses.state_change(row["id"], current, row["state"]))
    return {"instancesSet": changes}


def terminate_instances(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    def choose(row: dict[str, Any]) -> tuple[str | None, str]:
        if row["done"]:
            return None, "terminated"
        if row["state"] == "shutting-down":
            return None, "shutting-down"
        if row["state"] == "running":
            return "shutdown", "shutting-down"
        return "finalize", "terminated"

    return _change(ctx, call, choose)


def reboot_instances(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """A running instance: oned's `reboot` (the guest restarts in place, ACPI, as EC2's soft
    reboot). Any other: oned's `restart`, which boots again a VM its host lost (UNKNOWN) or that
    is stuck in BOOT; in other states oned refuses (IncorrectInstanceState)."""

    def choose(row: dict[str, Any]) -> tuple[str, str]:
        return ("reboot" if row["state"] == "running" else "restart"), row["state"]

    _change(ctx, call, choose)
    return {"return": True}


def stop_instances(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    return _change(ctx, call, lambda row: ("stop", "stopping"))


def start_instances(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    return _change(ctx, call, lambda row: ("resume", "pending"))


ACTIONS = {
    "RunInstances": run_instances,
    "DescribeInstances": describe_instances,
    "TerminateInstances": terminate_instances,
    "RebootInstances": reboot_instances,
    "StopInstances": stop_instances,
    "StartInstances": start_instances,
}
