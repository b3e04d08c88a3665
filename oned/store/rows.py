"""Records to row parameters and rows back to records: the only place that knows both shapes.

Column names are the record field names, except ``id`` which is the table's ``oid``. Rows are
read positionally, in the order of the record's fields, so loading 100,000 VMs builds no
intermediate dicts; the column lists below are derived from the dataclasses, which makes a new
record field without a column fail at import rather than load garbage.
A template is stored as the JSON of its ``[[name, value], ...]`` pairs (value: str or dict);
a VM's USER_TEMPLATE likewise, or NULL when it is empty (the rows of revision 0001 have NULL).
An image's copy progress (``done``/``total``) lives in memory only and has no column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import sqlalchemy as sa

from oned.records import History, Host, HostShare, Image, Lease, User, Vm, Vnet
from oned.store.errors import StoreError
from oned.store.schema import (
    NAME_LENGTH,
    history,
    host_pool,
    image_pool,
    leases,
    network_pool,
    user_pool,
    vm_pool,
)
from oned.template import Template
from oned.template_parser import SHARED_MAX
from oned.vnet import HeldLease

Params = dict[str, Any]


def _column_name(field_name: str) -> str:
    return "oid" if field_name == "id" else field_name


def _columns(table: sa.Table, names: Sequence[str]) -> list[sa.Column]:
    return [table.c[_column_name(name)] for name in names]


USER_FIELDS = [f.name for f in fields(User)]
SHARE_FIELDS = [f.name for f in fields(HostShare)]
HOST_FIELDS = [f.name for f in fields(Host) if f.name not in ("share", "template")]
_VM_TEMPLATES = ("template", "user_template", "history")
VM_FIELDS = [f.name for f in fields(Vm) if f.name not in _VM_TEMPLATES]
HISTORY_FIELDS = [f.name for f in fields(History)]
VNET_FIELDS = [f.name for f in fields(Vnet) if f.name not in ("template", "leases")]
# done/total: the bytes of a copy in progress, memory only
IMAGE_FIELDS = [f.name for f in fields(Image) if f.name not in ("template", "done", "total")]

USER_COLUMNS = _columns(user_pool, USER_FIELDS)
HOST_COLUMNS = [
    *_columns(host_pool, HOST_FIELDS),
    *_columns(host_pool, SHARE_FIELDS),
    host_pool.c.template,
]
VM_COLUMNS = [*_columns(vm_pool, VM_FIELDS), vm_pool.c.template, vm_pool.c.user_template]
HISTORY_COLUMNS = _columns(history, HISTORY_FIELDS)
VNET_COLUMNS = [*_columns(network_pool, VNET_FIELDS), network_pool.c.template]
IMAGE_COLUMNS = [*_columns(image_pool, IMAGE_FIELDS), image_pool.c.template]
# A lease row: (network oid, ip, mac_prefix, mac_suffix, vid); ``used`` is vid >= 0.
LEASE_COLUMNS = [leases.c.oid, leases.c.ip, leases.c.mac_prefix, leases.c.mac_suffix, leases.c.vid]

_N_HOST = len(HOST_FIELDS)
_N_SHARE = len(SHARE_FIELDS)
_N_VM = len(VM_FIELDS)
_VM_TEMPLATE_AT = [f.name for f in fields(Vm)].index("template")
assert [f.name for f in fields(Vm)][-2:] == ["user_template", "history"], (
    "vm_from passes every Vm field but history by position, user_template last"
)


def template_text(template: Template) -> str:
    return json.dumps(list(template), ensure_ascii=False, separators=(",", ":"))


def template_from(text: str) -> Template:
    """The template written by ``template_text``.

    It was checked when it was built, so it skips Template's per-attribute checks: they took
    two thirds of load_vms for 100,000 VMs. Names and short values are shared as the parser
    shares them (``oned.template_parser.SHARED_MAX``): 6.3 -> ~4 KB per VM loaded at start,
    ~15 us a VM.
    """
    pairs = json.loads(text, object_pairs_hook=_shared_vector)
    return Template.trusted([(sys.intern(name), _shared(value)) for name, value in pairs])


def _shared(value: object) -> object:
    if isinstance(value, str) and len(value) <= SHARED_MAX:
        return sys.intern(value)
    return value


def _shared_vector(pairs: list[tuple[str, object]]) -> dict[str, object]:
    return {sys.intern(key): _shared(value) for key, value in pairs}


def optional_template_text(template: Template) -> str | None:
    """``template_text``, or None (SQL NULL) for an empty template."""
    return template_text(template) if len(template) else None


def optional_template_from(text: str | None) -> Template:
    """The template written by ``optional_template_text``; NULL is an empty template."""
    return Template() if text is None else template_from(text)


def check_name(kind: str, name: str) -> None:
    """Names longer than the column would be cut or refused depending on the backend."""
    if len(name) > NAME_LENGTH:
        raise StoreError(f"{kind} name is longer than {NAME_LENGTH} characters: {name[:40]}...")


def user_params(user: User) -> Params:
    check_name("user", user.name)
    return {"name": user.name, "password": user.password, "enabled": bool(user.enabled)}


def user_from(row: Sequence[Any]) -> User:
    return User(**dict(zip(USER_FIELDS, row, strict=True)))


def host_params(host: Host) -> Params:
    """Every column but ``oid``."""
    check_name("host", host.name)
    params = {name: getattr(host, name) for name in HOST_FIELDS[1:]}
    share = host.share
    for name in SHARE_FIELDS:
        params[name] = getattr(share, name)
    params["template"] = template_text(host.template)
    return params


def host_from(row: Sequence[Any]) -> Host:
    share = HostShare(*row[_N_HOST : _N_HOST + _N_SHARE])
    template = template_from(row[_N_HOST + _N_SHARE])
    values = dict(zip(HOST_FIELDS, row[:_N_HOST], strict=True))
    return Host(**values, share=share, template=template)


def vm_params(vm: Vm) -> Params:
    """Every column but ``oid``."""
    check_name("VM", vm.name)
    params = {name: getattr(vm, name) for name in VM_FIELDS[1:]}
    params["template"] = template_text(vm.template)
    params["user_template"] = optional_template_text(vm.user_template)
    return params


def vm_from(row: Sequence[Any], records: list[History]) -> Vm:
    """``row`` holds VM_COLUMNS; the VM takes ``records`` (ordered by seq) as its history."""
    at = _VM_TEMPLATE_AT
    template, user_template = template_from(row[_N_VM]), optional_template_from(row[_N_VM + 1])
    vm = Vm(*row[:at], template, *row[at:_N_VM], user_template)  # type: ignore[misc,call-arg]
    vm.history = records
    return vm


def history_params(record: History) -> Params:
    return {name: getattr(record, name) for name in HISTORY_FIELDS}


def history_from(row: Sequence[Any]) -> History:
    return History(*row)


def vnet_params(net: Vnet) -> Params:
    """Every network_pool column but ``oid``."""
    check_name("network", net.name)
    params = {name: getattr(net, name) for name in VNET_FIELDS[1:]}
    params["public"] = bool(net.public)
    params["template"] = template_text(net.template)
    return params


def vnet_from(row: Sequence[Any]) -> Vnet:
    """``row`` holds VNET_COLUMNS; the network comes without leases (``lease_from`` adds them)."""
    values = dict(zip(VNET_FIELDS, row[:-1], strict=True))
    values["public"] = bool(values["public"])
    return Vnet(**values, template=template_from(row[-1]))


def lease_params(lease: Lease) -> Params:
    """Every leases column: OpenNebula's split of the MAC into a 16-bit prefix and 32 bits."""
    return {
        "oid": lease.vnet,
        "ip": lease.ip,
        "mac_prefix": lease.mac >> 32,
        "mac_suffix": lease.mac & 0xFFFFFFFF,
        "vid": lease.vid,
        "used": lease.used,
    }


def lease_from(row: Sequence[Any]) -> Lease:
    """A row with vid -1 is a lease on hold (one.vn.hold): free leases have no row."""
    vnet, ip, mac_prefix, mac_suffix, vid = row
    mac = (mac_prefix << 32) | mac_suffix
    return Lease(vnet, ip, mac, vid) if vid >= 0 else HeldLease(vnet, ip, mac)


def image_params(image: Image) -> Params:
    """Every image_pool column but ``oid``."""
    check_name("image", image.name)
    params = {name: getattr(image, name) for name in IMAGE_FIELDS[1:]}
    params["public"] = bool(image.public)
    params["persistent"] = bool(image.persistent)
    params["template"] = template_text(image.template)
    return params


def image_from(row: Sequence[Any]) -> Image:
    """``row`` holds IMAGE_COLUMNS; nothing is being copied (done = total = 0)."""
    values = dict(zip(IMAGE_FIELDS, row[:-1], strict=True))
    values["public"] = bool(values["public"])
    values["persistent"] = bool(values["persistent"])
    return Image(**values, template=template_from(row[-1]))
