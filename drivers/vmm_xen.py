"""VMM (virtual machine manager) driver for Xen with xl: ``one_vmm_xen [options]``.

DEPLOY renders the xl domain configuration from the local copy of the deployment file (the VM's
XML document; OpenNebula 1.4's XenDriver wrote the same keys; every value through its allow-list
in drivers/values.py, so none can add a key to a vif, vfb or disk spec or a line to the file),
copies it (mode 0600: CONTEXT may hold secrets) to the remote path and runs ``xl create``; the
deploy_id is the domain name ``one-<vid>``. The other actions run ``xl shutdown`` (then ``xl
list`` until the domain is gone, at most ``--shutdown-timeout`` s), ``xl destroy``, ``xl
save``, ``xl restore``, ``xl migrate`` (on the source host: xl reaches the destination over its
own SSH), ``xl reboot`` (REBOOT; RESET adds ``-F``) and ``xl list`` for POLL: STATE from the
state column (r or b: a, p: p, c: e, not found: d), USEDMEMORY from Mem, USEDCPU from Time(s)
between two POLLs. Commands go over each host's reused SSH connection (drivers/ssh.py), or run
here for the front-end's own names (localhost, its host name).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from drivers.protocol import DriverFailure, Request
from drivers.runner import RunResult, front_end_var, local_names, run_local, write_local
from drivers.serve import Action, Logger, driver_parser, host_lane, parse_driver_args, serve
from drivers.ssh import SshPool
from drivers.values import (
    GRAPHICS,
    NIC,
    OS,
    BadValue,
    checked,
    device,
    ip,
    number,
    path,
    port,
    positive,
    secret,
    xl_raw,
)

GONE = "invalid domain identifier"  # what xl says of a domain it does not know
_REMOTE_FILE = re.compile(r"/(\d+)/images/(deployment\.\d+)$")
VECTORS = frozenset({"OS", "FEATURES", "DISK", "NIC", "INPUT", "GRAPHICS", "RAW", "CONTEXT"})
BOOT = {"hd": "c", "disk": "c", "cdrom": "d", "network": "n", "fd": "a", "floppy": "a"}
Run = Callable[[str, Sequence[str], float, "bytes | None"], RunResult]


XL_NIC = NIC | {"IP": ip}
XL_GRAPHICS = GRAPHICS | {"PORT": partial(port, low=5900), "PASSWD": partial(secret, forbidden=",")}


# ---------------------------------------------------------------------------------------------
# The xl configuration (pure)


def template_of(text: str) -> tuple[int, dict[str, list[str | dict[str, str]]]]:
    """The id and template of a ``<VM>`` document; ValueError when it is not one."""
    root = ET.fromstring(text)
    if root.tag != "VM" or not (root.findtext("ID") or "").isdigit():
        raise ValueError("not a <VM> document with an <ID>")
    template: dict[str, list[str | dict[str, str]]] = {}
    for item in root.find("TEMPLATE") or ():
        vector = {c.tag.upper(): (c.text or "").strip() for c in item}
        is_vector = vector or item.tag.upper() in VECTORS
        template.setdefault(item.tag.upper(), []).append(
            vector if is_vector else (item.text or "").strip()
        )
    return int(root.findtext("ID") or 0), template


def quote(value: object) -> str:
    """A double-quoted xl string (backslash and quote escaped); a line break is an error."""
    text = str(value)
    if "\n" in text:
        raise ValueError(f"{text!r}: a value on more than one line")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spec(pairs: Sequence[tuple[str, str]]) -> str:
    """``'k=v,k=v'`` of the non-empty values (a vif or vfb entry); the values were checked, and
    a comma (the next key) is refused here again."""
    if any("," in value for _, value in pairs):
        raise BadValue(f"{', '.join(k for k, v in pairs if ',' in v)}: a comma in a spec value")
    return quote(",".join(f"{key}={value}" for key, value in pairs if value))


def render_config(vid: int, template: Mapping[str, list], images: str) -> str:
    """The xl configuration of VM ``vid``; ValueError naming the attribute that is wrong."""

    def single(name: str, default: str = "") -> str:
        return next((v for v in template.get(name, ()) if isinstance(v, str)), default)

    def vectors(name: str) -> list[dict[str, str]]:
        return [v for v in template.get(name, ()) if isinstance(v, dict)]

    memory = positive("MEMORY", single("MEMORY"))
    path("the images folder", images)
    if not images.rstrip("/").endswith(f"/{vid}/images"):
        raise BadValue(f"the images folder {images} is not <VM_DIR>/{vid}/images")
    lines = [f"name = {quote(f'one-{vid}')}", f"memory = {memory}"]
    lines.append(f"vcpus = {positive('VCPU', single('VCPU', '1') or '1')}")
    if single("CPU"):
        cpu = float(number("CPU", single("CPU")))
        lines.append(f"cpu_weight = {int(cpu * 256)}")  # NOTE: 1.4's CREDIT
    lines += os_lines(next(iter(vectors("OS")), {}))
    lines += disk_lines(vectors("DISK"), vectors("CONTEXT"), images)
    nics = [nic_entry(nic) for nic in vectors("NIC")]
    lines += [f"vif = [ {', '.join(nics)} ]"] if nics else []
    lines += vfb_lines(next(iter(vectors("GRAPHICS")), {}))
    for raw in vectors("RAW"):
        if raw.get("TYPE", "").lower() == "xen":
            lines += xl_raw("RAW/DATA", raw.get("DATA", ""))
    return "\n".join(lines) + "\n"


def os_lines(vector: dict[str, str]) -> list[str]:
    """PV boot (KERNEL, INITRD, ROOT, KERNEL_CMD), BOOTLOADER, or else an HVM guest."""
    vector = checked(vector, "OS", OS)
    keys = [("kernel", "KERNEL"), ("ramdisk", "INITRD"), ("extra", "KERNEL_CMD")]
    lines = [f"{key} = {quote(vector[name])}" for key, name in keys if vector.get(name)]
    if vector.get("ROOT"):
        root = vector["ROOT"]
        lines.append(f"root = {quote(root if root.startswith('/') else '/dev/' + root)}")
    if vector.get("BOOTLOADER"):
        lines.append(f"bootloader = {quote(vector['BOOTLOADER'])}")
    if not vector.get("KERNEL") and not vector.get("BOOTLOADER"):
        boot = vector.get("BOOT", "hd").lower()
        if boot not in BOOT:
            raise ValueError(f'OS/BOOT = "{vector["BOOT"]}": not one of hd, cdrom, fd, network')
        lines += ['type = "hvm"', f'boot = "{BOOT[boot]}"']
    return lines


def disk_lines(
    disks: list[dict[str, str]], context: list[dict[str, str]], images: str
) -> list[str]:
    """``disk = [...]``: DISK i at ``<images>/disk.i``, the CONTEXT cdrom after them."""
    taken = {v["TARGET"] for v in disks + context if v.get("TARGET")}

    def target(wanted: str, prefix: str, attribute: str = "DISK/TARGET") -> str:
        free = (prefix + c for c in "abcdefghijklmnop" if prefix + c not in taken)
        name = device(attribute, wanted) if wanted else next(free)
        taken.add(name)
        return name

    entries = []
    for i, disk in enumerate(disks):
        kind = disk.get("TYPE", "disk").lower() or "disk"
        if kind not in ("disk", "fs", "swap", "block", "cdrom", "floppy"):
            raise ValueError(f'DISK/TYPE = "{disk["TYPE"]}": not a disk type')
        prefix = "xvd" if disk.get("BUS", "").lower() == "xen" else "hd"
        name = target(disk.get("TARGET", ""), prefix) + (":cdrom" if kind == "cdrom" else "")
        mode = "r" if kind == "cdrom" or disk.get("READONLY", "").lower() == "yes" else "w"
        entries.append(f"{'phy:' if kind == 'block' else 'file:'}{images}/disk.{i},{name},{mode}")
    if context:
        name = target(context[0].get("TARGET", ""), "hd", "CONTEXT/TARGET")
        entries.append(f"file:{images}/disk.{len(disks)},{name}:cdrom,r")
    return [f"disk = [ {', '.join(quote(e) for e in entries)} ]"] if entries else []


def nic_entry(nic: dict[str, str]) -> str:
    nic = checked(nic, "NIC", XL_NIC)
    keys = ("MAC", "IP", "BRIDGE", "SCRIPT", "MODEL")
    return spec([(k.lower(), nic.get(k, "")) for k in keys] + [("vifname", nic.get("TARGET", ""))])


def vfb_lines(vector: dict[str, str]) -> list[str]:
    """GRAPHICS: vnc (port 5900+N is display N) or sdl, as 1.4's XenDriver wrote them."""
    kind = vector.get("TYPE", "").lower()
    if not vector:
        return []
    if kind == "sdl":
        return [f"vfb = [ {spec([('type', 'sdl')])} ]"]
    if kind != "vnc":
        raise ValueError(f'GRAPHICS/TYPE = "{vector.get("TYPE", "")}": must be vnc or sdl')
    vector = checked(vector, "GRAPHICS", XL_GRAPHICS)
    vnc = vector.get("PORT", "")
    display = [("vncdisplay", str(int(vnc) - 5900))] if vnc else [("vncunused", "1")]
    pairs = [("type", "vnc"), ("vnclisten", vector.get("LISTEN", "")), *display]
    pairs += [("vncpasswd", vector.get("PASSWD", "")), ("keymap", vector.get("KEYMAP", ""))]
    return [f"vfb = [ {spec(pairs)} ]"]


class XlDomain(NamedTuple):
    """One line of ``xl list``."""

    name: str
    id: int
    memory_mb: int
    state: str
    cpu_seconds: float


def parse_xl_list(text: str) -> dict[str, XlDomain]:
    """The domains of ``xl list`` output, by name (the header and odd lines skipped)."""
    found = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 6 and words[1].isdigit():
            domain = XlDomain(words[0], int(words[1]), int(words[2]), words[4], float(words[5]))
            found[domain.name] = domain
    return found


def state_of(flags: str) -> str:
    """OpenNebula's STATE for xl's state flags (r b p s c d)."""
    return "e" if "c" in flags else "p" if "p" in flags else "a"


# ---------------------------------------------------------------------------------------------
# The actions


@dataclass
class Context:
    run: Run
    put: Callable[[str, str, bytes], RunResult]
    var_dir: str = "/var/lib/one"
    timeout: float = 120.0
    shutdown_timeout: float = 60.0
    interval: float = 1.0  # between the ``xl list`` of a SHUTDOWN
    samples: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


def xl(ctx: Context, host: str, *args: str) -> RunResult:
    return ctx.run(host, ["xl", *args], ctx.timeout, None)


def listed(ctx: Context, host: str, name: str) -> XlDomain | None:
    """The domain as ``xl list <name>`` shows it, None when xl does not know it."""
    result = xl(ctx, host, "list", name)
    if not result.ok and GONE in result.stderr:
        return None
    if not result.ok:
        raise DriverFailure(f"xl list failed on {host}: {result.reason()}")
    return parse_xl_list(result.stdout).get(name)


def needs(request: Request, count: int) -> tuple[str, ...]:
    if len(request.args) < count:
        raise DriverFailure(f"{request.action} needs {count} arguments")
    return request.args[:count]


def deploy(ctx: Context, request: Request, log: Logger) -> str:
    """DEPLOY vid host remote_file: render, copy, ``xl create``; answers ``one-<vid>``."""
    host, remote = needs(request, 2)
    match = _REMOTE_FILE.search(remote)
    if not match:
        raise DriverFailure(f"{remote} is not <VM_DIR>/<vid>/images/deployment.<seq>")
    local = os.path.join(ctx.var_dir, match.group(1), match.group(2))
    try:
        with open(local) as file:
            vid, template = template_of(file.read())
        config = render_config(vid, template, os.path.dirname(remote))
    except (OSError, ValueError, ET.ParseError) as err:
        raise DriverFailure(f"cannot make the Xen configuration from {local}: {err}") from None
    result = ctx.put(host, remote, config.encode())
    if not result.ok:
        raise DriverFailure(f"cannot write {host}:{remote}: {result.reason()}")
    name, result = f"one-{vid}", xl(ctx, host, "create", remote)
    if not result.ok:
        if listed(ctx, host, name) is None:
            raise DriverFailure(f"xl create failed on {host}: {result.reason()}")
        log(f"{name} is running on {host} already: deployed before")
    return name


def shutdown(ctx: Context, request: Request, log: Logger) -> str:
    """SHUTDOWN vid host deploy_id: ``xl shutdown``, then wait (bounded) for the domain to go."""
    host, name = needs(request, 2)
    result = xl(ctx, host, "shutdown", name)
    if GONE in result.stderr:
        log(f"{name} is not running on {host}: nothing to shut down")
        return "-"
    if not result.ok:
        raise DriverFailure(f"xl shutdown failed on {host}: {result.reason()}")
    stop, deadline = threading.Event(), time.monotonic() + ctx.shutdown_timeout
    log.on_cancel(stop.set)
    while listed(ctx, host, name) is not None:
        if time.monotonic() >= deadline or stop.wait(ctx.interval):
            raise DriverFailure(f"{name} still running {ctx.shutdown_timeout:g} s after shutdown")
    return "-"


def simple(subcommand: str, ctx: Context, request: Request, log: Logger) -> str:
    """CANCEL (destroy), SAVE, RESTORE, MIGRATE, REBOOT (``xl reboot``: the guest's PV reboot,
    best effort) and RESET (``xl reboot -F``: an HVM guest without PV drivers gets an ACPI
    reset, as OpenNebula 4.x's xen4 driver): one xl command each. Sent again after a crash,
    each answers SUCCESS when what it does is done already (``done_before``)."""
    host, name, extra = needs(request, 3)
    args = {"destroy": [name], "save": [name, extra], "restore": [extra], "migrate": [name, extra],
            "reboot": [name], "reboot -F": [name]}  # fmt: skip
    result = xl(ctx, host, *subcommand.split(), *args[subcommand])
    if not result.ok:
        try:
            why = done_before(ctx, subcommand, host, name, extra, result)
        except DriverFailure:  # cannot tell: xl's own reason says more
            why = None
        if why is None:
            raise DriverFailure(f"xl {subcommand} failed on {host}: {result.reason()}")
        log(why)
    return "-"


def done_before(
    ctx: Context, subcommand: str, host: str, name: str, extra: str, result: RunResult
) -> str | None:
    """Why a failed xl command is nonetheless done (a LOG line), or None: the domain to destroy
    is gone, the one to save is gone and its checkpoint is there, the one to restore runs, the
    one to migrate is gone from ``host`` and runs on the destination."""
    gone = GONE in result.stderr
    if subcommand == "destroy" and gone:
        return f"{name} is not running on {host}: nothing to cancel"
    if subcommand == "save" and gone and ctx.run(host, ["test", "-e", extra], ctx.timeout, None).ok:
        return f"{name} is not running on {host} and {extra} is there: saved before"
    if subcommand == "restore" and listed(ctx, host, name) is not None:
        return f"{name} is running on {host} already: restored before"
    if subcommand == "migrate" and gone and listed(ctx, extra, name) is not None:
        return f"{name} is running on {extra} already: migrated before"
    return None


def poll(ctx: Context, request: Request, log: Logger) -> str:
    """POLL vid host deploy_id: STATE, USEDMEMORY and (from the second POLL) USEDCPU."""
    host, name = needs(request, 2)
    domain = listed(ctx, host, name)
    if domain is None:
        ctx.samples.pop((host, name), None)
        return "STATE=d"
    now = time.monotonic()
    before, ctx.samples[(host, name)] = ctx.samples.get((host, name)), (now, domain.cpu_seconds)
    info = f"STATE={state_of(domain.state)} USEDMEMORY={domain.memory_mb * 1024}"
    if before is not None and now > before[0]:
        info += (
            f" USEDCPU={max(0, round((domain.cpu_seconds - before[1]) / (now - before[0]) * 100))}"
        )
    return info


def runners(
    pool: SshPool, local: frozenset[str]
) -> tuple[Run, Callable[[str, str, bytes], RunResult]]:
    """Run and put on a host: over SSH, or here for the front-end's own names."""

    def run(host: str, argv: Sequence[str], timeout: float, data: bytes | None) -> RunResult:
        if host in local:
            return run_local(argv, timeout=timeout, input=data)
        return pool.run(host, argv, timeout=timeout, input=data)

    def put(host: str, path: str, data: bytes) -> RunResult:
        """The deployment file, 0600: it may hold CONTEXT values."""
        if host in local:
            return write_local(path, data, 0o600)
        return pool.put(host, path, data, 0o600)

    return run, put


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_vmm_xen", __doc__ or "")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per xl command")
    parser.add_argument("--shutdown-timeout", type=float, default=60.0, help="SHUTDOWN wait (60)")
    return parse_driver_args(parser, argv)


def actions(ctx: Context) -> dict[str, Action]:
    table: dict[str, Action] = {"DEPLOY": partial(deploy, ctx), "POLL": partial(poll, ctx)}
    table["SHUTDOWN"] = partial(shutdown, ctx)
    for action, subcommand in (("CANCEL", "destroy"), ("SAVE", "save"), ("RESTORE", "restore"),
                               ("MIGRATE", "migrate"), ("REBOOT", "reboot"),
                               ("RESET", "reboot -F")):  # fmt: skip
        table[action] = partial(simple, subcommand, ctx)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pool = SshPool(max_idle=args.concurrency)
    run, put = runners(pool, local_names())
    ctx = Context(run, put, front_end_var(), args.timeout, args.shutdown_timeout)
    try:
        return serve(actions(ctx), concurrency=args.concurrency, lane=host_lane)
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
