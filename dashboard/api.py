"""The dashboard's /api routes as plain functions: the caller's oned session and the request's
JSON in, (HTTP status, JSON) out (share/doc/dashboard.md, "Reading" and "Acting").

Pure and blocking (the server runs them on worker threads). Every call goes to oned as the
signed-in user, so oned decides what they may see and do; the dashboard checks only the
shape of what it is sent. Refusals are `DashboardError`s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli.table import template_lines
from dashboard import views
from dashboard.oned import DashboardError, Oned

Json = dict[str, Any]
Answer = tuple[int, Any]
VM_ACTIONS = frozenset(
    {"shutdown", "cancel", "suspend", "resume", "stop", "delete", "hold", "release", "restart"}
    | {"migrate", "livemigrate"}
)
LOG_LINES = 200
LOG_TAIL = 256 * 1024  # bytes of vm.log read for its last lines
MAX_TEMPLATE = 64 * 1024
ALL = -2


@dataclass(frozen=True)
class Caller:
    """Who asks: `user:password` for oned, and whether the dashboard shows admin pages."""

    session: str
    uid: int
    admin: bool


@dataclass(frozen=True)
class Context:
    oned: Oned
    var: str  # <var>: the VMs' folders, whose vm.log `vm` reads
    templates_dir: str  # the shipped example templates (<etc>/templates)


def login(ctx: Context, user: str, password: str) -> Json:
    """The user's id and whether they are oneadmin's group, if oned accepts the password;
    401 with one message for a wrong user name or password (never which of the two)."""
    wrong = DashboardError(401, "wrong user name or password")
    if not user or not password or ":" in user or len(user) > 128 or len(password) > 1024:
        raise wrong
    if any(ord(c) < 32 for c in user + password):
        raise wrong
    try:
        me = ctx.oned.listing(f"{user}:{password}", "one.user.info", -1)
    except DashboardError as exc:
        if exc.status == 401 and "too many failed logins" in exc.message:
            raise DashboardError(429, "too many failed sign-ins; try again in a minute") from None
        if exc.status == 401:
            raise wrong from None
        raise
    uid = int(me.findtext("ID") or -1)
    return {"user": me.findtext("NAME") or user, "uid": uid, "admin": me.findtext("GID") == "0"}


def listings(oned: Oned, session: str) -> tuple[list[Json], list[Json]]:
    """The VMs (not DONE) and the hosts the user sees, as /api/vms and /api/hosts list them."""
    vm_pool = oned.listing(session, "one.vmpool.info", ALL, -1, -1, -1)
    host_pool = oned.listing(session, "one.hostpool.info")
    return views.vms(vm_pool), views.hosts(host_pool)


def still_valid(ctx: Context, caller: Caller) -> None:
    """oned still accepts the caller's session (one cheap call; `DashboardError` 401 if not)."""
    ctx.oned.call(caller.session, "one.user.info", -1)


def hosts(ctx: Context, caller: Caller) -> Answer:
    pool = ctx.oned.listing(caller.session, "one.hostpool.info")
    return 200, {"hosts": views.hosts(pool)}


def vms(ctx: Context, caller: Caller) -> Answer:
    pool = ctx.oned.listing(caller.session, "one.vmpool.info", ALL, -1, -1, -1)
    return 200, {"vms": views.vms(pool)}


def overview(ctx: Context, caller: Caller) -> Answer:
    return 200, views.overview(*reversed(listings(ctx.oned, caller.session)))


def from_listings(run: Callable[..., Answer], vm_list: list[Json], host_list: list[Json]) -> Answer:
    """What `run` (one of COPIED) answers, from listings already at hand (the feed's copy)."""
    if run is overview:
        return 200, views.overview(host_list, vm_list)
    return 200, {"vms": vm_list} if run is vms else {"hosts": host_list}


def vm(ctx: Context, caller: Caller, vid: int) -> Answer:
    element = ctx.oned.listing(caller.session, "one.vm.info", vid)
    found = views.vm(element)
    template = element.find("TEMPLATE")
    found["template"] = template_text(template) if template is not None else ""
    found["history"] = views.history(element)
    found["log"] = vm_log(ctx.var, vid)
    return 200, found


def template_text(template: Any) -> str:
    """A TEMPLATE element as `onevm show` prints it."""
    return "\n".join(template_lines(template))


def vm_log(var: str, vid: int) -> str:
    """The last LOG_LINES lines of <var>/<vid>/vm.log; '' when it cannot be read (another
    machine's oned, or no log yet). Only called after oned showed the VM to the caller."""
    try:
        with open(os.path.join(var, str(vid), "vm.log"), "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LOG_TAIL))
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    if size > LOG_TAIL:
        lines = lines[1:]  # the first may be cut
    return "\n".join(lines[-LOG_LINES:])


def vnets(ctx: Context, caller: Caller) -> Answer:
    pool = ctx.oned.listing(caller.session, "one.vnpool.info", ALL)
    return 200, {"vnets": views.vnets(pool)}


def vnet(ctx: Context, caller: Caller, nid: int) -> Answer:
    element = ctx.oned.listing(caller.session, "one.vn.info", nid)
    return 200, {**views.vnet(element), "leases": views.leases(element)}


def users(ctx: Context, caller: Caller) -> Answer:
    pool = ctx.oned.listing(caller.session, "one.userpool.info")
    return 200, {"users": views.users(pool)}


def images(ctx: Context, caller: Caller) -> Answer:
    pool = ctx.oned.listing(caller.session, "one.imagepool.info", ALL)
    return 200, {"images": views.images(pool)}


_NETWORK = re.compile(r"^\s*(NETWORK_ADDRESS|LEASES)\s*=", re.M | re.I)


def templates(ctx: Context, caller: Caller) -> Answer:
    """The shipped example VM templates (`*.one` without a network's NETWORK_ADDRESS/LEASES)."""
    found = []
    try:
        names = sorted(n for n in os.listdir(ctx.templates_dir) if n.endswith(".one"))
    except OSError:
        names = []
    for name in names:
        try:
            with open(os.path.join(ctx.templates_dir, name), encoding="utf-8") as f:
                text = f.read(MAX_TEMPLATE + 1)
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) <= MAX_TEMPLATE and not _NETWORK.search(text):
            found.append({"name": name[: -len(".one")], "text": text})
    return 200, {"templates": found}


def create_vm(ctx: Context, caller: Caller, body: Json) -> Answer:
    text = body.get("template")
    if not isinstance(text, str) or not text.strip():
        raise DashboardError(400, "template: a VM template's text is needed")
    if len(text) > MAX_TEMPLATE:
        raise DashboardError(400, f"template: over {MAX_TEMPLATE} characters")
    return 201, {"id": ctx.oned.call(caller.session, "one.vm.allocate", text)}


def vm_action(ctx: Context, caller: Caller, vid: int, body: Json) -> Answer:
    action = body.get("action")
    if not isinstance(action, str) or action not in VM_ACTIONS:
        raise DashboardError(400, f"action: one of {', '.join(sorted(VM_ACTIONS))}")
    if action in ("migrate", "livemigrate"):
        hid = body.get("host")
        if not isinstance(hid, int) or isinstance(hid, bool) or hid < 0:
            raise DashboardError(400, "host: the id of the host to migrate to")
        ctx.oned.call(caller.session, "one.vm.migrate", vid, hid, action == "livemigrate")
    else:
        ctx.oned.call(caller.session, "one.vm.action", action, vid)
    return 200, {"ok": True}


def host_enable(enabled: bool) -> Callable[..., Answer]:
    def run(ctx: Context, caller: Caller, hid: int, body: Json) -> Answer:
        ctx.oned.call(caller.session, "one.host.enable", hid, enabled)
        return 200, {"ok": True}

    return run


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    run: Callable[..., Answer]

    def match(self, method: str, path: str) -> tuple[int, ...] | None:
        found = self.pattern.fullmatch(path) if method == self.method else None
        return tuple(int(g) for g in found.groups()) if found else None


def _route(method: str, path: str, run: Callable[..., Answer]) -> Route:
    return Route(method, re.compile(path.replace("<id>", r"(\d{1,9})")), run)


# GET routes take (ctx, caller, *ids); POST routes (ctx, caller, *ids, body).
ROUTES = (
    _route("GET", "/api/overview", overview),
    _route("GET", "/api/hosts", hosts),
    _route("GET", "/api/vms", vms),
    _route("GET", "/api/vms/<id>", vm),
    _route("GET", "/api/vnets", vnets),
    _route("GET", "/api/vnets/<id>", vnet),
    _route("GET", "/api/users", users),
    _route("GET", "/api/images", images),
    _route("GET", "/api/templates", templates),
    _route("POST", "/api/vms", create_vm),
    _route("POST", "/api/vms/<id>/action", vm_action),
    _route("POST", "/api/hosts/<id>/enable", host_enable(True)),
    _route("POST", "/api/hosts/<id>/disable", host_enable(False)),
)


COPIED = (overview, vms, hosts)  # answered from the user's feed's copy when it runs


def find(method: str, path: str) -> tuple[Route, tuple[int, ...]] | None:
    """The route for `method path` and its ids; None when no route has that path (404) —
    a path known under another method is a 405, told by `allowed`."""
    for route in ROUTES:
        ids = route.match(method, path)
        if ids is not None:
            return route, ids
    return None


def allowed(path: str) -> list[str]:
    return sorted({r.method for r in ROUTES if r.pattern.fullmatch(path)})
