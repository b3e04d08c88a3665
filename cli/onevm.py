"""onevm: submit, list and show virtual machines (more actions are added as table rows).

Rendering (``list_lines``, ``show_lines``) is pure: XML text from oned in, lines out. Each action
is one small function and one row of ``COMMANDS``; ``main`` is the console script.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cli.common import (
    Arg,
    CliError,
    Command,
    Context,
    Pool,
    chosen_columns,
    int_of,
    parse_xml,
    resolve_ids,
    run_cli,
    text_of,
)
from cli.table import (
    Column,
    show_field,
    show_header,
    str_running_time,
    str_time,
    table_lines,
    template_lines,
    top,
)
from oned.states import LcmState, VmState, vm_short_status

PROG = "onevm"
DESCRIPTION = "Manage the virtual machines of onecloud."
ALL, MINE = -2, -1
VM_POOL = Pool("VM", "one.vmpool.info", "VM", (ALL, -1, -1, -1))


def vm_stat(vm: ET.Element) -> str:
    """The STAT column: the short VM state, or the short LCM state while ACTIVE."""
    return vm_short_status(int_of(vm, "STATE"), int_of(vm, "LCM_STATE"))


def vm_user(vm: ET.Element) -> str:
    """The owner's name: USERNAME (1.4/2.0), else UNAME (modern)."""
    return text_of(vm, "USERNAME") or text_of(vm, "UNAME")


def vm_hostname(vm: ET.Element) -> str:
    """The host of the last history record; empty for a VM never deployed."""
    records = vm.findall("HISTORY_RECORDS/HISTORY")
    if records:
        return text_of(records[-1], "HOSTNAME")
    return text_of(vm, "HISTORY/HOSTNAME")


def _monitored(vm: ET.Element, name: str, modern: str) -> str:
    return text_of(vm, name) or text_of(vm, f"MONITORING/{modern}", "0")


def vm_columns(now: float | None = None) -> dict[str, Column]:
    """The ``onevm list`` layout (1.4 sizes); TIME runs to ``now`` (default: the clock)."""
    return {
        "id": Column("ID", 4, lambda v: text_of(v, "ID"), desc="ONE identifier for the VM"),
        "user": Column("USER", 8, vm_user, desc="Name of the owner"),
        "name": Column("NAME", 8, lambda v: text_of(v, "NAME"), desc="Name of the VM"),
        "stat": Column("STAT", 4, vm_stat, desc="Actual status of the VM"),
        "cpu": Column("CPU", 3, lambda v: _monitored(v, "CPU", "CPU"), desc="CPU percentage used"),
        "mem": Column("MEM", 7, lambda v: _monitored(v, "MEMORY", "MEMORY"), desc="Memory used"),
        "hostname": Column("HOSTNAME", 15, vm_hostname, desc="Host where the VM runs"),
        "time": Column(
            "TIME",
            11,
            lambda v: str_running_time(int_of(v, "STIME"), int_of(v, "ETIME"), now),
            desc="Time since the VM was submitted",
        ),
    }


VM_COLUMNS = vm_columns()
DEFAULT_COLUMNS = tuple(VM_COLUMNS)


def pool_filter(arg: str | None) -> tuple[int, str | None]:
    """The pool filter flag for ``onevm list [filter]`` and a user name to keep, if any.

    ``a``/``all`` (the default) -> -2; ``m``/``mine`` -> -1; a number -> that uid; any other
    word is a user name: all VMs, then filtered on USERNAME here.
    """
    if arg in (None, "a", "all"):
        return ALL, None
    if arg in ("m", "mine"):
        return MINE, None
    if arg.isdigit():
        return int(arg), None
    return ALL, arg


def list_lines(
    pool_xml: str,
    columns: Sequence[Column] | None = None,
    tty: bool = False,
    user: str | None = None,
    now: float | None = None,
) -> list[str]:
    """``onevm list`` for a ``<VM_POOL>`` document; ``user`` keeps only that owner's VMs."""
    cols = columns or list(vm_columns(now).values())
    vms = [vm for vm in parse_xml(pool_xml).iter("VM") if user is None or vm_user(vm) == user]
    return table_lines(cols, vms, tty)


def _state_name(value: int, enum: type[VmState] | type[LcmState]) -> str:
    return enum(value).name if value in enum._value2member_map_ else str(value)


def show_lines(vm_xml: str, tty: bool = False) -> list[str]:
    """``onevm show`` for a ``<VM>`` document (reference §12.3)."""
    vm = parse_xml(vm_xml)
    fields = [
        ("ID", text_of(vm, "ID")),
        ("NAME", text_of(vm, "NAME")),
        ("STATE", _state_name(int_of(vm, "STATE"), VmState)),
        ("LCM_STATE", _state_name(int_of(vm, "LCM_STATE"), LcmState)),
        ("START TIME", str_time(int_of(vm, "STIME"))),
        ("END TIME", str_time(int_of(vm, "ETIME"))),
        # NOTE: the stray colon in the label is 1.4's ("DEPLOY ID:     : one-3").
        ("DEPLOY ID:", text_of(vm, "DEPLOY_ID", "-")),
    ]
    return [
        show_header(f"VIRTUAL MACHINE {text_of(vm, 'ID')} INFORMATION", tty, underline=True),
        *(show_field(label, value, 15) for label, value in fields),
        "",
        show_header("VIRTUAL MACHINE TEMPLATE", tty),
        *template_lines(vm.find("TEMPLATE")),
    ]


# ---------------------------------------------------------------------------- commands


def read_template(path: str) -> str:
    """The text of a template file; an unreadable one is a ``CliError`` naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"cannot read template file {path}: {e.strerror or e}") from e


def create(ctx: Context, opts: argparse.Namespace) -> None:
    vid = ctx.call("one.vm.allocate", read_template(opts.template))
    ctx.verbose(f"ID: {vid}")


def _render(ctx: Context, opts: argparse.Namespace) -> list[str]:
    flag, user = pool_filter(opts.filter)
    text = ctx.call("one.vmpool.info", flag, -1, -1, -1)
    if opts.xml:
        return [text]
    columns = chosen_columns(opts, VM_COLUMNS, DEFAULT_COLUMNS)
    return list_lines(text, columns, ctx.tty, user)


def list_(ctx: Context, opts: argparse.Namespace) -> None:
    ctx.print(*_render(ctx, opts))


def top_(ctx: Context, opts: argparse.Namespace) -> int:
    chosen_columns(opts, VM_COLUMNS, DEFAULT_COLUMNS)  # a bad --list fails before the loop
    return top(lambda: _render(ctx, opts), ctx.write_now, opts.delay)


def show(ctx: Context, opts: argparse.Namespace) -> None:
    for vid in resolve_ids(ctx, VM_POOL, opts.vms):
        text = ctx.call("one.vm.info", vid)
        ctx.print(text) if opts.xml else ctx.print(*show_lines(text, ctx.tty))


_VMS = Arg("vms", "name|id", "VM names or ids (ranges like 1-3 allowed)", nargs="+")
_FILTER = Arg("filter", "a|all|m|mine|uid|username", "whose VMs to list (default: all)", "?")

COMMANDS = (
    Command(
        "create",
        "Submits a new VM from a template file",
        create,
        (Arg("template", "template-file", "file with the VM template"),),
    ),
    Command("list", "Lists VMs in the pool", list_, (_FILTER,), ("list",), VM_COLUMNS),
    Command("show", "Gets information about VMs", show, (_VMS,)),
    Command("top", "Lists VMs continuously", top_, (_FILTER,), ("list", "delay"), VM_COLUMNS),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``onevm``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
