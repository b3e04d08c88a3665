"""onehost: add, list, show, update, enable, disable and delete the hosts of the cloud.

Rendering (``list_lines``, ``show_lines``) is pure: XML text from oned in, lines out. The command
functions only call oned and print. Column sizes and sources are OpenNebula 1.4's (reference
§12.2); ``show`` follows §12.3.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cli.common import (
    Arg,
    Command,
    Context,
    Flag,
    chosen_columns,
    int_of,
    parse_xml,
    run_cli,
    text_of,
)
from cli.names import Pool, resolve_ids
from cli.table import Column, show_field, show_header, table_lines, template_lines, top
from cli.template_file import read_template
from oned.states import HOST_SHORT, HostState

PROG = "onehost"
DESCRIPTION = "Manage the hosts (cluster nodes) of onecloud."
HOST_POOL = Pool("host", "one.hostpool.info", "HOST")


def _share(host: ET.Element, name: str) -> int:
    return int_of(host, f"HOST_SHARE/{name}")


def host_stat(host: ET.Element) -> str:
    """The STAT column: on (INIT/MONITORING/MONITORED), err, off; unknown numbers print as is."""
    state = int_of(host, "STATE", -1)
    return HOST_SHORT.get(HostState(state), "unkn") if state in _HOST_STATES else str(state)


def host_state_name(host: ET.Element) -> str:
    """The long state name of ``onehost show`` (MONITORED, DISABLED...)."""
    state = int_of(host, "STATE", -1)
    return HostState(state).name if state in _HOST_STATES else str(state)


def _available_cpu(host: ET.Element) -> int:
    # NOTE: 1.4 counts a never-monitored host (MAX_CPU 0) as 100 and subtracts the monitored
    # USED_CPU (2.0 subtracts the allocated CPU_USAGE instead).
    return (_share(host, "MAX_CPU") or 100) - _share(host, "USED_CPU")


HOST_COLUMNS: dict[str, Column] = {
    "id": Column("ID", 4, lambda h: text_of(h, "ID"), desc="ONE identifier for host"),
    "name": Column("NAME", 25, lambda h: text_of(h, "NAME"), left=True, desc="Hostname"),
    "rvm": Column(
        "RVM", 3, lambda h: _share(h, "RUNNING_VMS"), desc="Number of virtual machines running"
    ),
    "tcpu": Column("TCPU", 6, lambda h: _share(h, "MAX_CPU"), desc="Total cpu percentage"),
    "fcpu": Column(
        "FCPU",
        6,
        lambda h: _share(h, "MAX_CPU") - _share(h, "USED_CPU"),
        desc="Free cpu percentage",
    ),
    "acpu": Column(
        "ACPU", 6, _available_cpu, desc="Available cpu percentage (not reserved by VMs)"
    ),
    # NOTE: 1.4 sized TMEM/FMEM 7 and truncated larger values (16 GB in KB printed as 1677721);
    # 10 columns fit 9 TB without misleading anyone.
    "tmem": Column("TMEM", 10, lambda h: _share(h, "MAX_MEM"), desc="Total memory (KB)"),
    "fmem": Column("FMEM", 10, lambda h: _share(h, "FREE_MEM"), desc="Free memory (KB)"),
    "stat": Column("STAT", 4, host_stat, desc="Host status"),
}
DEFAULT_COLUMNS = tuple(HOST_COLUMNS)


def list_lines(
    pool_xml: str, columns: Sequence[Column] | None = None, tty: bool = False
) -> list[str]:
    """``onehost list`` for a ``<HOST_POOL>`` document: header, then one line per host."""
    cols = columns or [HOST_COLUMNS[k] for k in DEFAULT_COLUMNS]
    return table_lines(cols, parse_xml(pool_xml).iter("HOST"), tty)


def show_lines(host_xml: str, tty: bool = False) -> list[str]:
    """``onehost show`` for a ``<HOST>`` document (reference §12.3)."""
    host = parse_xml(host_xml)
    width = 22
    info = [
        ("ID", text_of(host, "ID")),
        ("NAME", text_of(host, "NAME")),
        # NOTE: CLUSTER is 2.0's addition; printed only when oned sends it.
        *([("CLUSTER", text_of(host, "CLUSTER"))] if host.find("CLUSTER") is not None else []),
        ("STATE", host_state_name(host)),
        ("IM_MAD", text_of(host, "IM_MAD")),
        ("VM_MAD", text_of(host, "VM_MAD")),
        ("TM_MAD", text_of(host, "TM_MAD")),
    ]
    shares = [
        ("MAX MEM", _share(host, "MAX_MEM")),
        ("USED MEM (REAL)", _share(host, "USED_MEM")),
        ("USED MEM (ALLOCATED)", _share(host, "MEM_USAGE")),
        ("MAX CPU", _share(host, "MAX_CPU")),
        ("USED CPU (REAL)", _share(host, "USED_CPU")),
        ("USED CPU (ALLOCATED)", _share(host, "CPU_USAGE")),
        ("RUNNING VMS", _share(host, "RUNNING_VMS")),
    ]
    return [
        show_header(f"HOST {text_of(host, 'ID')} INFORMATION", tty, underline=True),
        *(show_field(label, value, width) for label, value in info),
        "",
        show_header("HOST SHARES", tty),
        *(show_field(label, value, width) for label, value in shares),
        "",
        show_header("MONITORING INFORMATION", tty),
        *template_lines(host.find("TEMPLATE")),
    ]


# ---------------------------------------------------------------------------- commands


def create(ctx: Context, opts: argparse.Namespace) -> None:
    hid = ctx.call("one.host.allocate", opts.hostname, opts.im_mad, opts.vmm_mad, opts.tm_mad)
    ctx.verbose(f"ID: {hid}")


def delete(ctx: Context, opts: argparse.Namespace) -> None:
    """Delete each host; one still running VMs is disabled instead (as 1.4 did)."""
    for hid in resolve_ids(ctx, HOST_POOL, opts.hosts):
        host = parse_xml(ctx.call("one.host.info", hid))
        if _share(host, "RUNNING_VMS") != 0:
            ctx.print("Host still has associated VMs. It will be disabled instead.")
            ctx.call("one.host.enable", hid, False)
            ctx.verbose("Host disabled")
        else:
            ctx.call("one.host.delete", hid)
            ctx.verbose("Host deleted")


def update(ctx: Context, opts: argparse.Namespace) -> None:
    """``update HOST FILE [--append]``: modern one.host.update, the file replaces the host's
    template (monitored again at once) or, with --append, is merged into it."""
    (hid,) = resolve_ids(ctx, HOST_POOL, [opts.host])
    ctx.call("one.host.update", hid, read_template(opts.template), 1 if opts.append else 0)
    ctx.verbose("Host updated")


def _set_enabled(ctx: Context, opts: argparse.Namespace, enabled: bool) -> None:
    for hid in resolve_ids(ctx, HOST_POOL, opts.hosts):
        ctx.call("one.host.enable", hid, enabled)
        ctx.verbose("Host enabled" if enabled else "Host disabled")


def enable(ctx: Context, opts: argparse.Namespace) -> None:
    _set_enabled(ctx, opts, True)


def disable(ctx: Context, opts: argparse.Namespace) -> None:
    _set_enabled(ctx, opts, False)


def show(ctx: Context, opts: argparse.Namespace) -> None:
    for hid in resolve_ids(ctx, HOST_POOL, opts.hosts):
        text = ctx.call("one.host.info", hid)
        if not ctx.document(text):
            ctx.print(*show_lines(text, ctx.tty))


def _render(ctx: Context, opts: argparse.Namespace) -> list[str]:
    text = ctx.call("one.hostpool.info")
    doc = ctx.formatted(text)
    if doc is not None:
        return [doc]
    return list_lines(text, chosen_columns(opts, HOST_COLUMNS, DEFAULT_COLUMNS), ctx.tty)


def list_(ctx: Context, opts: argparse.Namespace) -> None:
    ctx.print(*_render(ctx, opts))


def top_(ctx: Context, opts: argparse.Namespace) -> int:
    chosen_columns(opts, HOST_COLUMNS, DEFAULT_COLUMNS)  # a bad --list fails before the loop
    return top(lambda: _render(ctx, opts), ctx.write_now, opts.delay)


UPDATE_HELP = """\
mm_sched places VMs by the CPU and memory oned allocated on a host against its total. In the
host's template, RESERVED_CPU (percent, 100 = one CPU) and RESERVED_MEM (KB) keep capacity
from the VMs; a negative value over-commits:
  echo "RESERVED_CPU = -100" > reserve.tmpl
  onehost update --append host01 reserve.tmpl   # one more CPU's worth of VMs"""

_HOSTS = Arg("hosts", "name|id", "host names or ids (ranges like 1-3 allowed)", nargs="+")

COMMANDS = (
    Command(
        "create",
        "Adds a new host to the pool",
        create,
        (
            Arg("hostname", "hostname", "name or IP address of the host"),
            Arg("im_mad", "im_mad", "information driver (IM_MAD name in oned.conf)"),
            Arg("vmm_mad", "vmm_mad", "virtualization driver (VM_MAD name in oned.conf)"),
            Arg("tm_mad", "tm_mad", "transfer driver (TM_MAD name in oned.conf)"),
        ),
    ),
    Command("show", "Gets info from a host", show, (_HOSTS,)),
    Command(
        "delete", "Removes a host from the pool (disables it if VMs still run)", delete, (_HOSTS,)
    ),
    Command(
        "update",
        "Sets the host's own attributes (RESERVED_CPU, RESERVED_MEM) from a template file",
        update,
        (
            Arg("host", "name|id", "the host"),
            Arg("template", "file", "template file, e.g. RESERVED_CPU = -100"),
        ),
        flags=(
            Flag(
                ("-a", "--append"),
                "[--append]",
                {"action": "store_true", "help": "merge the file's attributes into the template"},
            ),
        ),
        details=UPDATE_HELP,
    ),
    Command("list", "Lists hosts in the pool", list_, options=("list",), columns=HOST_COLUMNS),
    Command("enable", "Enables a host", enable, (_HOSTS,)),
    Command("disable", "Disables a host", disable, (_HOSTS,)),
    Command(
        "top", "Lists hosts continuously", top_, options=("list", "delay"), columns=HOST_COLUMNS
    ),
)

_HOST_STATES = {s.value for s in HostState}


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``onehost``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
