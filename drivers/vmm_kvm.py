"""VMM (virtual machine manager) driver for KVM/QEMU through libvirt: ``one_vmm_kvm [options]``.

Each host's libvirtd is reached with libvirt-python over libvirt's own SSH transport,
``qemu+ssh://<host>/system`` (``--uri`` with ``{host}``, ``--host-uri NAME=URI``): one connection
per host, kept, with keepalives (a host that stops answering is dropped within ~20 s and
reconnected by the next action). DEPLOY renders the domain from the local deployment file (the
VM's XML; drivers/vmm_kvm_xml.py), writes it to the remote path over the host's reused SSH
connection (drivers/ssh.py), creates a transient domain ``one-<vid>`` (the deploy_id) and checks
that it runs (its CPU time advancing for a second: else DEPLOY fails with what it does). Whether
KVM really runs guests is probed once per host (drivers/kvm_probe.py): ``--domain-type auto``
falls back to qemu (TCG) where it does not, with a ``LOG W`` line; forced ``kvm`` fails DEPLOY.
SHUTDOWN (ACPI, then at most ``--shutdown-timeout`` s for the domain to go), CANCEL (destroy),
REBOOT (ACPI reboot, best effort) and RESET (hard reset), both in place,
SAVE and RESTORE (the checkpoint file), MIGRATE (live, driven by this driver over its connections
to both hosts; libvirt's storage check skipped on tm_nfs: drivers/kvm_migration.py) and POLL
(STATE, USEDMEMORY, USEDCPU from the second POLL on, NETRX, NETTX).
Every action may be sent again after a crash (oned re-issues what was in flight): a domain
already running answers DEPLOY and RESTORE, one already gone SHUTDOWN and CANCEL, one gone
whose checkpoint is there SAVE, one running on the destination MIGRATE.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from drivers.kvm_connections import Connections, libvirt, start_event_loop
from drivers.kvm_files import exists_on, remove_remote, write_remote
from drivers.kvm_migration import unsafe_allowed, unsafe_hint, vm_tm
from drivers.kvm_probe import BOOT_SECTOR, CHECK_SECONDS, Verdicts, kvm_problem, not_running, warn
from drivers.protocol import DriverFailure, Request, one_line
from drivers.runner import front_end_var
from drivers.serve import Action, Logger, driver_parser, host_lane, parse_driver_args, serve
from drivers.ssh import SshPool
from drivers.vmm_kvm_xml import (
    RenderError,
    cpu_percent,
    domain_for,
    interface_devices,
    local_deployment_file,
    poll_state,
)

DEFAULT_URI = "qemu+ssh://{host}/system?no_tty=1"
_NO_KVM = re.compile(r"kvm.*not available|domaintype=kvm|unsupported.*kvm", re.I)


@dataclass
class Context:
    """The driver's settings and what it keeps between actions."""

    uri: str = DEFAULT_URI
    host_uris: Mapping[str, str] = field(default_factory=dict)
    domain_type: str = "auto"
    shutdown_timeout: float = 60.0
    var_dir: str = "/var/lib/one"
    unsafe_migration: bool = False
    timeout: float = 30.0
    pool: SshPool | None = None
    hosts: Connections = field(init=False)
    verdicts: Verdicts = field(default_factory=Verdicts)  # host -> domain type that runs guests
    check_seconds: float = CHECK_SECONDS  # a new domain's CPU time must advance within (0: not)
    samples: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hosts = Connections(self.uri_of, self.timeout)

    def uri_of(self, host: str) -> str:
        return self.host_uris.get(host) or self.uri.format(host=host)


def failure(what: str, err: Exception) -> DriverFailure:
    return DriverFailure(f"{what}: {one_line(str(err))}")


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Turns a libvirtError into DriverFailure("<what>: <libvirt's message>")."""
    try:
        yield
    except libvirt().libvirtError as err:
        raise failure(what, err) from None


def arguments(request: Request, count: int, usage: str) -> tuple[str, ...]:
    if len(request.args) < count:
        raise DriverFailure(f"{request.action} needs {usage}")
    return request.args[:count]


def create(conn: Any, xml: str) -> tuple[Any, bool]:
    """createXML: the domain and True; a domain of that name already running is taken as the one
    deployed (False)."""
    lv = libvirt()
    try:
        return conn.createXML(xml, 0), True
    except lv.libvirtError as err:
        if err.get_error_code() != lv.VIR_ERR_OPERATION_FAILED or "already" not in str(err):
            raise
        name = ET.fromstring(xml).findtext("name") or ""
        domain = conn.lookupByName(name)
        if not domain.isActive():
            raise
        return domain, False


def deploy(ctx: Context, request: Request, log: Logger) -> str:
    """DEPLOY vid host remote_file: render, copy, create, check it runs; answers its name."""
    host, remote = arguments(request, 2, "a host and a deployment file")
    text = deployment_text(ctx, remote)
    kind = domain_type_for(ctx, host, remote, log)
    try:
        domain, new = create_on(ctx, host, remote, text, kind)
    except libvirt().libvirtError as err:
        if ctx.domain_type != "auto" or kind != "kvm" or not _NO_KVM.search(str(err)):
            raise failure(f"cannot create the domain on {host}", err) from None
        warn(log, f"KVM is not available on {host}: domain type qemu (TCG)")
        ctx.verdicts.set(host, "qemu", one_line(str(err)))
        with guarded(f"cannot create the domain on {host}"):
            domain, new = create_on(ctx, host, remote, text, "qemu")
    with guarded(f"cannot check the domain on {host}"):
        problem = not_running(domain, new, ctx.check_seconds)
    if problem:
        with suppress(libvirt().libvirtError):
            domain.destroy()
        raise DriverFailure(f"the domain does not run on {host}: {problem}")
    return domain.name()


def deployment_text(ctx: Context, remote: str) -> str:
    """The VM's document oned wrote for this DEPLOY (DriverFailure naming it if unreadable)."""
    try:
        local = local_deployment_file(remote, ctx.var_dir)
        with open(local) as file:
            return file.read()
    except RenderError as err:
        raise DriverFailure(str(err)) from None
    except OSError as err:
        raise DriverFailure(f"cannot read the deployment file {local}: {err.strerror}") from None


def domain_type_for(ctx: Context, host: str, remote: str, log: Logger) -> str:
    """The domain type for ``host``: ``--domain-type qemu``, else the probe's verdict (once per
    host); forced kvm where KVM does not run guests fails, auto falls back to qemu and warns."""
    if ctx.domain_type == "qemu":
        return "qemu"
    known = ctx.verdicts.get(host)
    with guarded(f"cannot probe KVM on {host}"):
        kind, why = known or ctx.verdicts.probe(host, partial(probe_kvm, ctx, host, remote))
    if kind == "kvm":
        return "kvm"
    if ctx.domain_type == "kvm":
        raise DriverFailure(
            f"KVM cannot run guests on {host} ({why}; nested virtualisation off?): "
            "start one_vmm_kvm with --domain-type auto or qemu"
        )
    if known is None:
        warn(log, f"KVM cannot run guests on {host} ({why}): domain type qemu (TCG emulation)")
    return "qemu"


def probe_kvm(ctx: Context, host: str, remote: str) -> str | None:
    """kvm_problem on ``host``, its boot image beside the VM's deployment file."""
    image = os.path.join(os.path.dirname(remote), "kvm-probe.img")
    write_remote(ctx, host, image, BOOT_SECTOR)
    try:
        return kvm_problem(ctx.hosts.get(host), image)
    finally:
        remove_remote(ctx, host, image)


def create_on(ctx: Context, host: str, remote: str, text: str, kind: str) -> tuple[Any, bool]:
    """Render for ``kind``, write the file to the host, create: the domain, and whether new."""
    try:
        xml = domain_for(text, remote, kind)
    except RenderError as err:
        raise DriverFailure(f"cannot make the domain from {remote}: {err}") from None
    write_remote(ctx, host, remote, xml)
    return create(ctx.hosts.get(host), xml)


def lookup(ctx: Context, host: str, name: str) -> Any | None:
    """The domain ``name`` on ``host``, or None when the host does not know it."""
    lv = libvirt()
    conn = ctx.hosts.get(host)
    try:
        return conn.lookupByName(name)
    except lv.libvirtError as err:
        if err.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
            return None
        raise failure(f"cannot look up {name} on {host}", err) from None


def gone(domain: Any) -> bool:
    """Whether the domain has stopped (a transient one vanishes)."""
    lv = libvirt()
    try:
        return domain.state()[0] == lv.VIR_DOMAIN_SHUTOFF
    except lv.libvirtError as err:
        if err.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
            return True
        raise


def still_there(ctx: Context, request: Request, log: Logger, what: str) -> Any | None:
    """The domain of a SHUTDOWN or CANCEL; None (and a LOG line) when it is already gone."""
    host, name = arguments(request, 2, "a host and a deploy id")
    domain = lookup(ctx, host, name)
    if domain is None:
        log(f"{name} is not running on {host}: nothing to {what}")
    return domain


def shutdown(ctx: Context, request: Request, log: Logger) -> str:
    """SHUTDOWN vid host deploy_id: ACPI shutdown, then wait (bounded) for the domain to go."""
    domain = still_there(ctx, request, log, "shut down")
    if domain is None:
        return "-"
    name, stop = domain.name(), threading.Event()
    deadline = time.monotonic() + ctx.shutdown_timeout
    log.on_cancel(stop.set)
    with guarded(f"cannot shut {name} down"):
        domain.shutdown()
        while not gone(domain):
            if time.monotonic() >= deadline or stop.wait(0.25):
                raise DriverFailure(f"{name} still running {ctx.shutdown_timeout:g} s after ACPI")
    return "-"


def cancel(ctx: Context, request: Request, log: Logger) -> str:
    """CANCEL vid host deploy_id: destroy the domain at once."""
    domain = still_there(ctx, request, log, "cancel")
    if domain is not None:
        with guarded(f"cannot destroy {domain.name()}"):
            domain.destroy()
    return "-"


def reboot(ctx: Context, request: Request, log: Logger) -> str:
    """REBOOT vid host deploy_id: libvirt's reboot (ACPI, as ``virsh reboot``). It returns once
    libvirt has asked: a guest that ignores ACPI goes on running and REBOOT still succeeds (best
    effort, as virsh's); ``onevm reboot --hard`` (RESET) is the way out."""
    return in_place(ctx, request, "reboot", lambda domain: domain.reboot(0))


def reset(ctx: Context, request: Request, log: Logger) -> str:
    """RESET vid host deploy_id: a hard reset (as ``virsh reset``); the guest boots again."""
    return in_place(ctx, request, "reset", lambda domain: domain.reset(0))


def in_place(ctx: Context, request: Request, what: str, act: Callable[[Any], object]) -> str:
    """REBOOT and RESET of a running domain; one that is not there fails (the POLL oned sends
    after the FAILURE finds it gone)."""
    host, name = arguments(request, 2, "a host and a deploy id")
    domain = lookup(ctx, host, name)
    if domain is None:
        raise DriverFailure(f"{name} is not running on {host}: nothing to {what}")
    with guarded(f"cannot {what} {name}"):
        act(domain)
    return "-"


def save(ctx: Context, request: Request, log: Logger) -> str:
    """SAVE vid host deploy_id checkpoint: the domain's state to the file; the domain stops.
    Sent again once the domain is gone and the checkpoint is there: saved before, SUCCESS."""
    host, name, checkpoint = arguments(request, 3, "a host, a deploy id and a checkpoint file")
    domain = lookup(ctx, host, name)
    if domain is None and exists_on(ctx, host, checkpoint):
        log(f"{name} is not running on {host} and {checkpoint} is there: saved before")
        return "-"
    if domain is None:
        raise DriverFailure(f"{name} is not running on {host}")
    with guarded(f"cannot save {name} to {checkpoint}"):
        domain.save(checkpoint)
    return "-"


def restore(ctx: Context, request: Request, log: Logger) -> str:
    """RESTORE vid host deploy_id checkpoint: the domain runs again from the file (a domain
    running by that name already was restored before: SUCCESS)."""
    host, name, checkpoint = arguments(request, 3, "a host, a deploy id and a checkpoint file")
    try:
        ctx.hosts.get(host).restore(checkpoint)
    except libvirt().libvirtError as err:
        domain = lookup(ctx, host, name)
        if domain is None or not domain.isActive():
            raise failure(f"cannot restore {host}:{checkpoint}", err) from None
        log(f"{name} is running on {host} already: restored before")
    return "-"


def migrate(ctx: Context, request: Request, log: Logger) -> str:
    """MIGRATE vid source deploy_id destination: live migration between the two libvirtds.
    Sent again once the domain left the source and runs on the destination: SUCCESS."""
    source, name, dest = arguments(request, 3, "a source host, a deploy id and a destination")
    lv = libvirt()
    domain = lookup(ctx, source, name)
    if domain is None:
        there = lookup(ctx, dest, name)
        if there is None or not there.isActive():
            raise DriverFailure(f"{name} is not running on {source}")
        log(f"{name} is running on {dest} already: migrated before")
        return "-"
    tm = vm_tm(ctx.var_dir, request.id)
    unsafe = unsafe_allowed(tm, ctx.unsafe_migration)
    flags = lv.VIR_MIGRATE_LIVE | (lv.VIR_MIGRATE_UNSAFE if unsafe else 0)
    try:
        domain.migrate(ctx.hosts.get(dest), flags, None, None, 0)
    except lv.libvirtError as err:
        hint = f" ({unsafe_hint(tm)})" if err.get_error_code() == lv.VIR_ERR_MIGRATE_UNSAFE else ""
        raise DriverFailure(
            f"cannot migrate {name} from {source} to {dest}: {one_line(str(err))}{hint}"
        ) from None
    ctx.samples.pop((source, name), None)
    return "-"


def net_bytes(domain: Any) -> tuple[int, int]:
    """(received, sent) bytes of every interface of the domain, as the guest sees them."""
    stats = [domain.interfaceStats(dev) for dev in interface_devices(domain.XMLDesc(0))]
    return sum(s[0] for s in stats), sum(s[4] for s in stats)


def poll(ctx: Context, request: Request, log: Logger) -> str:
    """POLL vid host deploy_id: STATE, USEDMEMORY, USEDCPU, NETRX, NETTX."""
    host, name = arguments(request, 2, "a host and a deploy id")
    lv = libvirt()
    domain = lookup(ctx, host, name)
    try:
        if domain is not None:
            state, _, memory, _, cpu_ns = domain.info()
            reason = domain.state()[1] if state == lv.VIR_DOMAIN_PAUSED else 0
            rx, tx = net_bytes(domain)
    except lv.libvirtError as err:
        if err.get_error_code() != lv.VIR_ERR_NO_DOMAIN:
            raise failure(f"cannot poll {name} on {host}", err) from None
        domain = None
    if domain is None:
        ctx.samples.pop((host, name), None)
        return "STATE=d"
    sample = (time.monotonic(), cpu_ns)
    cpu, ctx.samples[(host, name)] = cpu_percent(ctx.samples.get((host, name)), sample), sample
    used_cpu = "" if cpu is None else f" USEDCPU={cpu}"
    figures = f"USEDMEMORY={memory}{used_cpu} NETRX={rx} NETTX={tx}"
    return f"STATE={poll_state(state, reason)} {figures}"


def host_uri(text: str) -> tuple[str, str]:
    name, sep, uri = text.partition("=")
    if not sep or not name or not uri:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=URI")
    return name, uri


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = driver_parser("one_vmm_kvm", __doc__ or "")
    add = parser.add_argument
    add("--uri", default=DEFAULT_URI, help=f"libvirt URI of a host ({DEFAULT_URI})")
    add("--host-uri", type=host_uri, action="append", default=[], help="NAME=URI for one host")
    add("--domain-type", choices=("auto", "kvm", "qemu"), default="auto", help="(auto)")
    add("--shutdown-timeout", type=float, default=60.0, help="seconds SHUTDOWN waits (60)")
    add("--timeout", type=float, default=30.0, help="seconds to connect to a host (30)")
    add("--unsafe-migration", action="store_true", help="migrate even when libvirt cannot")
    return parse_driver_args(parser, argv)


def actions(ctx: Context) -> dict[str, Action]:
    table = {"DEPLOY": deploy, "SHUTDOWN": shutdown, "CANCEL": cancel, "SAVE": save}
    table |= {"RESTORE": restore, "MIGRATE": migrate, "POLL": poll}
    table |= {"REBOOT": reboot, "RESET": reset}
    return {name: partial(action, ctx) for name, action in table.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    libvirt().registerErrorHandler(lambda *_: None, None)  # answered, not printed on stderr
    start_event_loop()
    pool = SshPool(max_idle=args.concurrency)
    ctx = Context(
        args.uri, dict(args.host_uri), args.domain_type, args.shutdown_timeout, front_end_var(),
        args.unsafe_migration, args.timeout, pool,
    )  # fmt: skip
    try:
        return serve(actions(ctx), concurrency=args.concurrency, lane=host_lane)
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
