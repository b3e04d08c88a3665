"""onevm: submit, control, list and show virtual machines (reference §3.2, §12).

Rendering (``list_lines``, ``show_lines``; ``history_lines`` in ``cli.onevm_history``) is pure:
XML text from oned in, lines out. Each action is one small function and one row of ``COMMANDS``;
``main`` is the console script; ``saveas`` is in ``cli.onevm_saveas``. Actions act on every VM
named, in order, and stop at the first refusal (as 1.4 did).
"""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

from cli.common import (
    Arg,
    Command,
    Context,
    Flag,
    chosen_columns,
    int_of,
    output_format,
    parse_xml,
    run_cli,
    text_of,
)
from cli.names import Pool, resolve_id, resolve_ids
from cli.onehost import HOST_POOL
from cli.onevm_history import DEFAULT_HISTORY_COLUMNS, HISTORY_COLUMNS, history_lines
from cli.onevm_saveas import saveas_command
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
from cli.template_file import read_template
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
    """``onevm show`` for a ``<VM>`` document (reference §12.3).

    The 1.4 fields, then the last ERROR and SCHED_MESSAGE (why the VM failed or waits) when
    there are any, the VM template, and the USER TEMPLATE section when it is not empty.
    """
    vm = parse_xml(vm_xml)
    lines = [
        show_header(f"VIRTUAL MACHINE {text_of(vm, 'ID')} INFORMATION", tty, underline=True),
        *(show_field(label, value, 15) for label, value in [*_fields(vm), *notices(vm)]),
        "",
        show_header("VIRTUAL MACHINE TEMPLATE", tty),
        *template_lines(vm.find("TEMPLATE")),
    ]
    user_template = vm.find("USER_TEMPLATE")
    if user_template is not None and len(user_template):
        lines += ["", show_header("USER TEMPLATE", tty), *template_lines(user_template)]
    return lines


def _fields(vm: ET.Element) -> list[tuple[str, str]]:
    return [
        ("ID", text_of(vm, "ID")),
        ("NAME", text_of(vm, "NAME")),
        ("STATE", _state_name(int_of(vm, "STATE"), VmState)),
        ("LCM_STATE", _state_name(int_of(vm, "LCM_STATE"), LcmState)),
        ("START TIME", str_time(int_of(vm, "STIME"))),
        ("END TIME", str_time(int_of(vm, "ETIME"))),
        # NOTE: the stray colon in the label is 1.4's ("DEPLOY ID:     : one-3").
        ("DEPLOY ID:", text_of(vm, "DEPLOY_ID", "-")),
    ]


NOTICES = ("ERROR", "SCHED_MESSAGE")
LOG_TIME_FORMAT = "%a %b %d %H:%M:%S %Y"  # oned.log's, and the scheduler's in SCHED_MESSAGE


def notices(vm: ET.Element) -> list[tuple[str, str]]:
    """The last ERROR and the last SCHED_MESSAGE of a VM document, each on one line.

    Both are looked for in TEMPLATE (where 1.4/2.0 put ERROR) and USER_TEMPLATE (where the
    scheduler and modern oned put them); a later one wins.
    """
    found: dict[str, str] = {}
    for section in ("TEMPLATE", "USER_TEMPLATE"):
        for attr in vm.findall(f"{section}/*"):
            if attr.tag in NOTICES:
                found[attr.tag] = notice_text(attr)
    return [(name, found[name]) for name in NOTICES if name in found]


def notice_text(attr: ET.Element) -> str:
    """A single value as it is; a 2.0 vector ``[MESSAGE, TIMESTAMP]`` as ``<time> : <message>``."""
    if not len(attr):
        return " ".join((attr.text or "").split())
    message = " ".join(text_of(attr, "MESSAGE").split())
    stamp = text_of(attr, "TIMESTAMP")
    if stamp.isdigit():
        stamp = time.strftime(LOG_TIME_FORMAT, time.localtime(int(stamp)))
    return f"{stamp} : {message}" if stamp else message


# ---------------------------------------------------------------------------- commands


def create(ctx: Context, opts: argparse.Namespace) -> None:
    """``onevm create [--hold] FILE``: one.vm.allocate(text, hold), as modern OpenNebula's."""
    text = read_template(opts.template)
    vid = (
        ctx.call("one.vm.allocate", text, True) if opts.hold else ctx.call("one.vm.allocate", text)
    )
    # NOTE: 1.4 printed the id only with -v; modern OpenNebula always does (issue 16).
    ctx.print(f"ID: {vid}")


def _render(ctx: Context, opts: argparse.Namespace) -> list[str]:
    flag, user = pool_filter(opts.filter)
    text = ctx.call("one.vmpool.info", flag, -1, -1, -1)
    doc = ctx.formatted(text)
    if doc is not None:
        return [doc]
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
        if not ctx.document(text):
            ctx.print(*show_lines(text, ctx.tty))


def history(ctx: Context, opts: argparse.Namespace) -> None:
    """The history records of every VM named, in one table (``-x``: each VM's XML)."""
    columns = chosen_columns(opts, HISTORY_COLUMNS, DEFAULT_HISTORY_COLUMNS)
    texts = [ctx.call("one.vm.info", vid) for vid in resolve_ids(ctx, VM_POOL, opts.vms)]
    if output_format(opts):
        for text in texts:
            ctx.document(text)
    else:
        ctx.print(*history_lines(texts, columns, ctx.tty))


Run = Callable[[Context, argparse.Namespace], None]


def vm_action(action: str, done: str) -> Run:
    """A command sending ``one.vm.action(action, vid)`` for each VM named; ``-v`` prints
    ``done`` (1.4's words) after each."""

    def run(ctx: Context, opts: argparse.Namespace) -> None:
        for vid in resolve_ids(ctx, VM_POOL, opts.vms):
            ctx.call("one.vm.action", action, vid)
            ctx.verbose(done)

    return run


def reboot(ctx: Context, opts: argparse.Namespace) -> None:
    """``onevm reboot [--hard] VM...``: one.vm.action "reboot" (ACPI) or "reboot-hard" (a hard
    reset), modern OpenNebula's names; the VM stays RUNNING."""
    vm_action("reboot-hard" if opts.hard else "reboot", "Rebooting VM")(ctx, opts)


def _to_host(ctx: Context, opts: argparse.Namespace) -> tuple[list[int], int]:
    """The VMs and the host of ``deploy``/``migrate``: every name resolved before any action."""
    vids = resolve_ids(ctx, VM_POOL, opts.vms)
    return vids, resolve_id(ctx, HOST_POOL, opts.host)


def deploy(ctx: Context, opts: argparse.Namespace) -> None:
    vids, hid = _to_host(ctx, opts)
    for vid in vids:
        ctx.call("one.vm.deploy", vid, hid)
        ctx.verbose("Deploying VM")


def vm_migrate(live: bool) -> Run:
    """``livemigrate`` (``live``) or ``migrate``: ``one.vm.migrate(vid, hid, live)``."""

    def run(ctx: Context, opts: argparse.Namespace) -> None:
        vids, hid = _to_host(ctx, opts)
        for vid in vids:
            ctx.call("one.vm.migrate", vid, hid, live)
            ctx.verbose("Migrating VM")

    return run


def recover(ctx: Context, opts: argparse.Namespace) -> None:
    """``onevm recover --success|--failure|--retry|--delete VM...``: one.vm.recover."""
    for vid in resolve_ids(ctx, VM_POOL, opts.vms):
        ctx.call("one.vm.recover", vid, opts.operation)
        ctx.verbose("Recovering VM")


_VMS = Arg("vms", "name|id", "VM names or ids (ranges like 1-3 allowed)", nargs="+")
_HOST = Arg("host", "host", "host name or id")
_FILTER = Arg("filter", "a|all|m|mine|uid|username", "whose VMs to list (default: all)", "?")


def _action(name: str, summary: str, action: str, done: str) -> Command:
    return Command(name, summary, vm_action(action, done), (_VMS,))


COMMANDS = (
    Command(
        "create",
        "Submits a new VM from a template file",
        create,
        (Arg("template", "template-file", "file with the VM template"),),
        flags=(
            Flag(
                ("--hold",),
                "[--hold]",
                {"action": "store_true", "help": "create it in HOLD: it waits for a release"},
            ),
        ),
    ),
    Command(
        "deploy", "Starts a pending VM on a specific host (oneadmin only)", deploy, (_VMS, _HOST)
    ),
    _action("shutdown", "Shuts down a running VM", "shutdown", "Shutting down VM"),
    Command(
        "livemigrate",
        "Migrates a running VM to another host without downtime (oneadmin only)",
        vm_migrate(live=True),
        (_VMS, _HOST),
    ),
    Command(
        "migrate",
        "Saves a running VM and starts it again on another host (oneadmin only)",
        vm_migrate(live=False),
        (_VMS, _HOST),
    ),
    _action(
        "hold",
        "Holds a pending VM: the scheduler leaves it alone",
        "hold",
        "Setting VM to hold state",
    ),
    _action("release", "Releases a held VM back to pending", "release", "Releasing VM"),
    _action("stop", "Stops a running VM, keeping its state and disks", "stop", "Stopping VM"),
    _action(
        "cancel", "Cancels a running VM (no shutdown, disks not saved)", "cancel", "Canceling VM"
    ),
    _action(
        "suspend", "Suspends a running VM, its state kept on the host", "suspend", "Suspending VM"
    ),
    _action("resume", "Resumes a stopped or suspended VM", "resume", "Resuming VM"),
    # NOTE: 1.4's onevm delete sends the action "finalize".
    _action(
        "delete", "Deletes a VM from the pool, in any state", "finalize", "VM correctly deleted"
    ),
    _action("restart", "Boots again a VM in UNKNOWN or BOOT state", "restart", "Restarting VM"),
    Command(
        "reboot",
        "Reboots a running VM in place (ACPI; --hard: a reset); it stays RUNNING",
        reboot,
        (_VMS,),
        flags=(
            Flag(
                ("--hard",),
                "[--hard]",
                {"action": "store_true", "help": "reset it at once, as a reset button does"},
            ),
        ),
        details="A guest that ignores ACPI goes on running after a plain reboot: use --hard.",
    ),
    Command(
        "recover",
        "Ends the transient state a VM is stuck in, as if its driver action had failed or "
        "succeeded, by sending it again, or deletes the VM (oneadmin only)",
        recover,
        (_VMS,),
        ("recover",),
    ),
    saveas_command(VM_POOL),
    Command("list", "Lists VMs in the pool", list_, (_FILTER,), ("list",), VM_COLUMNS),
    Command("show", "Gets information about VMs", show, (_VMS,)),
    Command("top", "Lists VMs continuously", top_, (_FILTER,), ("list", "delay"), VM_COLUMNS),
    Command(
        "history",
        "Shows the hosts each VM has been on",
        history,
        (_VMS,),
        ("list",),
        HISTORY_COLUMNS,
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``onevm``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
