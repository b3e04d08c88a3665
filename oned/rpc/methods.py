"""The XML-RPC methods oned answers, with every signature accepted for each (reference §4).

A method lists its forms: the parameter types after the session ('i' int, 's' string,
'b' boolean, 'a' array) and how a form maps onto the API function's arguments. OpenNebula
1.4/2.0 and modern (pyone) signatures are both listed where they differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from oned.api import (
    changes,
    disks,
    ec2keys,
    hosts,
    images,
    purge,
    stubs,
    system,
    users,
    vm_actions,
    vm_modern,
    vms,
    vnets,
)
from oned.errors import BadCall

VERSION = "onecloud 0.1.0 (OpenNebula 1.4/2.0 API, modern signatures accepted)"

Adapter = Callable[..., tuple] | None
# NOTE: OpenNebula's integers are xmlrpc-c i4 (32-bit); ids are 32-bit columns in every backend.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Method:
    name: str
    call: Callable[..., object]
    forms: tuple[tuple[str, Adapter], ...]

    def arguments(self, params: tuple) -> tuple:
        """The API arguments for ``params`` (session excluded), or BadCall naming the forms."""
        for form, adapt in self.forms:
            if _fits(params, form):
                self._check_ranges(params)
                args = tuple(bool(p) if c == "b" else p for p, c in zip(params, form, strict=True))
                return adapt(*args) if adapt else args
        wanted = " or ".join(
            f"(session{''.join(', ' + _NAMES[c] for c in f)})" for f, _ in self.forms
        )
        got = ", ".join(_NAMES[type_code(p)] for p in params) or "nothing"
        raise BadCall(
            f"[{self.name}] wrong parameters: got ({got}) after the session, expected {wanted}"
        )

    def _check_ranges(self, params: tuple) -> None:
        """An integer outside 32 bits names no object and fits no column: a bad call."""
        for at, value in enumerate(params, 1):
            if type(value) is int and not INT_MIN <= value <= INT_MAX:
                raise BadCall(
                    f"[{self.name}] parameter {at} after the session is out of range: "
                    f"integers are 32-bit ({INT_MIN} to {INT_MAX})"
                )


_NAMES = {"i": "int", "s": "string", "b": "boolean", "a": "array", "d": "double", "x": "other"}


def type_code(value: object) -> str:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i"
    if isinstance(value, str):
        return "s"
    if isinstance(value, list | tuple):
        return "a"
    if isinstance(value, float):
        return "d"
    return "x"


def _fits(params: tuple, form: str) -> bool:
    """Exact types, except that a boolean parameter also takes the ints 0 and 1."""
    if len(params) != len(form):
        return False
    for value, code in zip(params, form, strict=True):
        found = type_code(value)
        if found != code and not (code == "b" and found == "i" and value in (0, 1)):
            return False
    return True


def _no_query(flt: int, start: int, end: int, state: int, query: str) -> tuple:
    if query:
        raise BadCall(
            "[one.vmpool.info] the query parameter is not supported; pass an empty string"
        )
    return flt, start, end, state


def _user_allocate(name: str, password: str, driver: str = "", groups: list | None = None) -> tuple:
    if driver not in ("", "core"):
        raise BadCall(f'[one.user.allocate] auth driver "{driver}" is not available; use "core"')
    return name, password


_INFO: tuple[tuple[str, Adapter], ...] = (("i", None), ("ib", None))  # id, [decrypt]

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("one.system.version", lambda cloud, caller: VERSION, (("", None),)),
        Method("one.system.config", system.config, (("", None),)),  # modern only
        Method("one.system.changes", changes.changes, (("ii", None), ("iis", None))),  # issue 17
        Method(
            "one.user.allocate",
            users.allocate,
            (("ss", None), ("sss", _user_allocate), ("sssa", _user_allocate)),
        ),
        Method("one.user.delete", users.delete, (("i", None),)),
        Method("one.user.info", users.info, (("i", None), ("ib", None))),
        Method("one.user.passwd", users.passwd, (("is", None),)),
        Method("one.userpool.info", users.pool_info, (("", None),)),
        # issue 15: EC2 credentials (onecloud's own methods)
        Method("one.user.ec2keycreate", ec2keys.create, (("i", None),)),
        Method("one.user.ec2keyinfo", ec2keys.info, (("i", None),)),
        Method("one.user.ec2keydelete", ec2keys.delete, (("s", None),)),
        Method("one.user.ec2keysecret", ec2keys.secret, (("s", None),)),
        Method(
            "one.host.allocate",
            hosts.allocate,
            (
                ("ssss", None),  # 1.4/2.0: name, im, vmm, tm
                (
                    "sssi",
                    lambda n, im, vmm, cluster: (n, im, vmm, ""),
                ),  # 5.x+: name, im, vmm, cluster
                (
                    "sssss",
                    lambda n, im, vmm, vnm, tm: (n, im, vmm, tm),
                ),  # 3.2: name, im, vmm, vnm, tm
                ("ssssi", lambda n, im, vmm, vnm, cluster: (n, im, vmm, "")),  # 3.4-4.x
            ),
        ),
        Method("one.host.info", hosts.info, (("i", None), ("ib", None))),
        Method("one.host.delete", hosts.delete, (("i", None),)),
        Method("one.host.enable", hosts.enable, (("ib", None),)),
        Method("one.host.status", hosts.status, (("ii", None),)),
        Method("one.host.update", hosts.update, (("is", None), ("isi", None))),  # modern only
        Method("one.hostpool.info", hosts.pool_info, (("", None),)),
        Method("one.vm.allocate", vms.allocate, (("s", None), ("sb", None))),
        Method("one.vm.info", vms.info, (("i", None), ("ib", None))),
        Method(
            "one.vm.deploy",
            vm_actions.deploy,
            (
                ("ii", None),
                ("iib", None),
                ("iibi", None),  # 1.4; 4.x+ (enforce, ds_id)
                ("iibis", lambda vid, hid, enforce, ds, extra: (vid, hid, enforce, ds)),
            ),
        ),
        Method("one.vm.action", vm_actions.action, (("si", None),)),
        Method("one.vm.update", vm_actions.update, (("is", None), ("isi", None))),  # modern only
        Method("one.vm.recover", vm_actions.recover, (("ii", None),)),  # modern only
        Method(
            "one.vm.migrate",
            vm_actions.migrate,
            (
                ("iib", None),
                ("iibb", None),
                ("iibbi", None),
                ("iibbii", None),
            ),
        ),
        Method(
            "one.vmpool.info",
            vms.pool_info,
            (
                ("i", None),  # 1.4
                ("ibi", lambda flt, extended, state: (flt, -1, -1, state, extended)),  # 2.0
                ("iiii", None),  # 3.x+
                ("iiiis", _no_query),  # 5.x+
            ),
        ),
        Method(
            "one.vmpool.infoextended",
            vms.pool_info_extended,
            (("iiii", None), ("iiiis", _no_query)),
        ),
        # modern only (issue 12): real for VMs, a fresh OpenNebula's objects for the others
        Method("one.vm.rename", vm_modern.rename, (("is", None),)),
        Method("one.vm.monitoring", vm_modern.monitoring, (("i", None),)),
        Method("one.vmpool.infoset", vm_modern.pool_infoset, (("sb", None),)),
        # issue 18: onecloud's own; before (epoch), dry run [, at most this many VMs]
        Method("one.vmpool.purgedone", purge.purgedone, (("ib", None), ("ibi", None))),
        Method("one.grouppool.info", stubs.group_pool_info, (("", None),)),
        Method("one.group.info", stubs.group_info, _INFO),
        Method("one.clusterpool.info", stubs.cluster_pool_info, (("", None),)),
        Method("one.cluster.info", stubs.cluster_info, _INFO),
        Method("one.datastorepool.info", stubs.datastore_pool_info, (("", None),)),
        Method("one.datastore.info", stubs.datastore_info, _INFO),
        Method("one.templatepool.info", stubs.template_pool_info, (("iii", None),)),
        Method(
            "one.template.info",
            stubs.template_info,
            (("i", None), ("ib", None), ("ibb", None)),
        ),
        Method("one.vn.allocate", vnets.allocate, (("s", None), ("si", None))),  # 1.4, 3.x+
        Method("one.vn.info", vnets.info, (("i", None), ("ib", None))),
        Method("one.vn.delete", vnets.delete, (("i", None),)),
        Method("one.vn.publish", vnets.publish, (("ib", None),)),  # 2.0 only
        Method("one.vn.hold", vnets.hold, (("is", None),)),  # modern
        Method("one.vn.release", vnets.release, (("is", None),)),  # modern
        Method("one.vnpool.info", vnets.pool_info, (("i", None), ("iii", None))),  # 1.4, 3.x+
        # issue 13: the image repository, 2.0 and modern forms
        Method(
            "one.image.allocate",
            images.allocate,
            (("s", None), ("si", None), ("sib", lambda text, ds, skip_check: (text, ds))),
        ),
        Method("one.image.info", images.info, _INFO),
        Method("one.image.delete", images.delete, (("i", None), ("ib", None))),
        # 2.0: iid, attribute, value; modern: iid, template [, merge]
        Method("one.image.update", images.update, (("iss", None), ("is", None), ("isi", None))),
        Method("one.image.rmattr", images.rmattr, (("is", None),)),  # 2.0 only
        Method("one.image.enable", images.enable, (("ib", None),)),
        Method("one.image.publish", images.publish, (("ib", None),)),  # 2.0 only
        Method("one.image.persistent", images.persistent, (("ib", None),)),
        Method("one.image.chmod", images.chmod, (("i" + "i" * 9, None),)),  # modern only
        Method("one.imagepool.info", images.pool_info, (("i", None), ("iii", None))),  # 2.0, 3.x+
        Method("one.vm.savedisk", disks.savedisk, (("iii", None),)),  # 2.0: vid, disk, image
        # modern: vid, disk_id, name, type, snap_id -> the new image's id
        Method("one.vm.disksaveas", disks.disksaveas, (("iissi", None),)),
    )
}
