"""onevnet: create, list, show, publish and delete the virtual networks of onecloud, and put
their leases on hold (modern ``onevnet hold``/``release``).

Rendering (``list_lines``, ``show_lines``) is pure: XML text from oned in, lines out. Columns are
OpenNebula 2.0's (1.4's plus PUBLIC, reference §12.2); ``show`` follows 2.0's layout (1.4's ID
and UID, then PUBLIC; the template and the leases as flat vectors, reference §12.3).
"""

from __future__ import annotations

import argparse
import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cli.common import (
    Arg,
    CliError,
    Command,
    Context,
    chosen_columns,
    int_of,
    parse_xml,
    run_cli,
    text_of,
)
from cli.names import Pool, resolve_ids
from cli.onevm import pool_filter
from cli.table import Column, show_field, show_header, table_lines, template_lines
from cli.template_file import read_template

PROG = "onevnet"
DESCRIPTION = "Manage the virtual networks of onecloud."
ALL = -2
VNET_POOL = Pool("virtual network", "one.vnpool.info", "VNET", (ALL,))
TYPES = {"0": "Ranged", "1": "Fixed"}


def vnet_user(net: ET.Element) -> str:
    """The owner's name: USERNAME (1.4/2.0), else UNAME (modern)."""
    return text_of(net, "USERNAME") or text_of(net, "UNAME")


def vnet_size(net: ET.Element) -> int:
    """Addresses of the network (free and used): the sizes of its address ranges."""
    return sum(int_of(ar, "SIZE") for ar in net.iterfind("AR_POOL/AR"))


def yes_no(net: ET.Element) -> str:
    return "Y" if int_of(net, "PUBLIC") else "N"


VNET_COLUMNS: dict[str, Column] = {
    "id": Column("ID", 4, lambda n: text_of(n, "ID"), desc="ONE identifier for virtual network"),
    "user": Column("USER", 8, vnet_user, left=True, desc="Username of the network owner"),
    "name": Column("NAME", 15, lambda n: text_of(n, "NAME"), left=True, desc="Network name"),
    "type": Column("TYPE", 6, lambda n: TYPES.get(text_of(n, "TYPE"), ""), desc="Ranged|Fixed"),
    "size": Column("SIZE", 6, vnet_size, desc="Number of addresses (free + used)"),
    "bridge": Column("BRIDGE", 6, lambda n: text_of(n, "BRIDGE"), desc="Bridge of the hosts"),
    # NOTE: 2.0's PUBLIC column is one character wide, so its header prints as "P".
    "public": Column("PUBLIC", 1, yes_no, desc="Whether the network is public (Y/N)"),
    "leases": Column(
        "#LEASES",
        7,
        lambda n: text_of(n, "TOTAL_LEASES") or text_of(n, "USED_LEASES", "0"),
        desc="Number of leases in use",
    ),
}
DEFAULT_COLUMNS = ("id", "user", "name", "type", "bridge", "public", "leases")


def list_lines(
    pool_xml: str,
    columns: Sequence[Column] | None = None,
    tty: bool = False,
    user: str | None = None,
) -> list[str]:
    """``onevnet list`` for a ``<VNET_POOL>``; ``user`` keeps only that owner's networks."""
    cols = columns or [VNET_COLUMNS[k] for k in DEFAULT_COLUMNS]
    root = parse_xml(pool_xml)
    nets = [n for n in root.iter("VNET") if user is None or vnet_user(n) == user]
    return table_lines(cols, nets, tty)


def show_lines(vnet_xml: str, tty: bool = False) -> list[str]:
    """``onevnet show`` for a ``<VNET>``: ID, UID, PUBLIC, the template, the leases (if any)
    each with the VM holding it (VID)."""
    net = parse_xml(vnet_xml)
    fields = [("ID", text_of(net, "ID")), ("UID", text_of(net, "UID")), ("PUBLIC", yes_no(net))]
    lines = [
        show_header(f"VIRTUAL NETWORK {text_of(net, 'ID')} INFORMATION", tty, underline=True),
        *(show_field(label, value, 10) for label, value in fields),
        "",
        show_header("VIRTUAL NETWORK TEMPLATE", tty),
        *template_lines(net.find("TEMPLATE"), flat=True),
    ]
    leases = template_lines(net.find("LEASES"), flat=True)
    if leases:
        lines += ["", show_header("LEASES INFORMATION", tty), *leases]
    return lines


# ---------------------------------------------------------------------------- commands


def create(ctx: Context, opts: argparse.Namespace) -> None:
    nid = ctx.call("one.vn.allocate", read_template(opts.template))
    ctx.verbose(f"ID: {nid}")


def show(ctx: Context, opts: argparse.Namespace) -> None:
    for nid in resolve_ids(ctx, VNET_POOL, opts.vnets):
        text = ctx.call("one.vn.info", nid)
        if not ctx.document(text):
            ctx.print(*show_lines(text, ctx.tty))


def delete(ctx: Context, opts: argparse.Namespace) -> None:
    for nid in resolve_ids(ctx, VNET_POOL, opts.vnets):
        ctx.call("one.vn.delete", nid)
        ctx.verbose("Virtual Network deleted")


def _publish(ctx: Context, opts: argparse.Namespace, public: bool) -> None:
    for nid in resolve_ids(ctx, VNET_POOL, opts.vnets):
        ctx.call("one.vn.publish", nid, public)
        ctx.verbose("Virtual Network published" if public else "Virtual Network unpublished")


def _leases(ctx: Context, opts: argparse.Namespace, method: str, done: str) -> None:
    """``method`` (one.vn.hold or one.vn.release) on each IP, in order: IPs are checked first."""
    ips = []
    for ip in opts.ips:
        try:
            ips.append(str(ipaddress.IPv4Address(ip)))
        except ValueError:
            raise CliError(f'"{ip}" is not an IPv4 address') from None
    (nid,) = resolve_ids(ctx, VNET_POOL, [opts.vnet], expand=False)
    for ip in ips:
        ctx.call(method, nid, f'LEASES = [ IP = "{ip}" ]')
        ctx.verbose(f"Lease {ip} {done}")


def list_(ctx: Context, opts: argparse.Namespace) -> None:
    flag, user = pool_filter(opts.filter)
    text = ctx.call("one.vnpool.info", flag)
    if ctx.document(text):
        return
    columns = chosen_columns(opts, VNET_COLUMNS, DEFAULT_COLUMNS)
    ctx.print(*list_lines(text, columns, ctx.tty, user))


_VNETS = Arg("vnets", "name|id", "network names or ids (ranges like 1-3 allowed)", nargs="+")
_VNET = Arg("vnet", "name|id", "the network")
_IPS = Arg("ips", "ip", "addresses of the network", nargs="+")
_FILTER = Arg("filter", "a|all|m|mine|uid|username", "whose networks to list (default: all)", "?")

COMMANDS = (
    Command(
        "create",
        "Creates a new virtual network from a template file",
        create,
        (Arg("template", "template-file", "file with the network template"),),
    ),
    Command("show", "Gets information about virtual networks", show, (_VNETS,)),
    Command("delete", "Removes virtual networks (refused while VMs use them)", delete, (_VNETS,)),
    Command(
        "list", "Lists virtual networks in the pool", list_, (_FILTER,), ("list",), VNET_COLUMNS
    ),
    Command(
        "publish",
        "Lets every user use the networks",
        lambda ctx, opts: _publish(ctx, opts, True),
        (_VNETS,),
    ),
    Command(
        "unpublish",
        "Makes the networks private to their owner",
        lambda ctx, opts: _publish(ctx, opts, False),
        (_VNETS,),
    ),
    Command(
        "hold",
        "Keeps leases of a network from VMs (shown USED, VID -1) until released",
        lambda ctx, opts: _leases(ctx, opts, "one.vn.hold", "on hold"),
        (_VNET, _IPS),
    ),
    Command(
        "release",
        "Gives back leases put on hold (not those of VMs)",
        lambda ctx, opts: _leases(ctx, opts, "one.vn.release", "released"),
        (_VNET, _IPS),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``onevnet``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
