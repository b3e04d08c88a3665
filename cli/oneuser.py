"""oneuser: create, list, show and delete users, change their passwords, and manage their EC2
keys (``oneuser ec2key create|list|delete``, issue 15).

Rendering (``list_lines``, ``show_lines``) is pure: XML text from oned in, lines out.
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cli.common import Arg, CliError, Command, Context, chosen_columns, parse_xml, run_cli, text_of
from cli.names import Pool, resolve_id, resolve_ids
from cli.table import Column, show_field, show_header, table_lines, template_lines

PROG = "oneuser"
DESCRIPTION = "Manage the users of onecloud (oneadmin only) and EC2 keys (each user their own)."
USER_POOL = Pool("user", "one.userpool.info", "USER")


def user_enabled(user: ET.Element) -> str:
    """ENABLED as the 1.4 CLI printed it: ``True`` or ``False``.

    NOTE: oned sends 1/0 (2.0 and later); 1.4's pool sent the words True and (sic) Fase.
    """
    return "True" if text_of(user, "ENABLED").strip().lower() in ("1", "true") else "False"


USER_COLUMNS: dict[str, Column] = {
    "id": Column("ID", 4, lambda u: text_of(u, "ID"), desc="ONE identifier for user"),
    "user": Column("USER", 15, lambda u: text_of(u, "NAME"), left=True, desc="name of the user"),
    "password": Column(
        "PASSWORD", 50, lambda u: text_of(u, "PASSWORD"), left=True, desc="password of the user"
    ),
    "enable": Column("ENABLE", 6, user_enabled, desc="Whether the user is enabled or not"),
}
DEFAULT_COLUMNS = tuple(USER_COLUMNS)


def list_lines(
    pool_xml: str, columns: Sequence[Column] | None = None, tty: bool = False
) -> list[str]:
    """``oneuser list`` for a ``<USER_POOL>`` document: header, then one line per user."""
    cols = columns or [USER_COLUMNS[k] for k in DEFAULT_COLUMNS]
    return table_lines(cols, parse_xml(pool_xml).iter("USER"), tty)


def show_lines(user_xml: str, tty: bool = False) -> list[str]:
    """``oneuser show`` for a ``<USER>`` document, in the style of the other show outputs."""
    user = parse_xml(user_xml)
    fields = [
        ("ID", text_of(user, "ID")),
        ("NAME", text_of(user, "NAME")),
        *([("GROUP", text_of(user, "GNAME"))] if user.find("GNAME") is not None else []),
        ("PASSWORD", text_of(user, "PASSWORD")),
        *(
            [("AUTH_DRIVER", text_of(user, "AUTH_DRIVER"))]
            if user.find("AUTH_DRIVER") is not None
            else []
        ),
        ("ENABLED", user_enabled(user)),
    ]
    lines = [
        show_header(f"USER {text_of(user, 'ID')} INFORMATION", tty, underline=True),
        *(show_field(label, value, 15) for label, value in fields),
    ]
    template = template_lines(user.find("TEMPLATE"))
    if template:
        lines += ["", show_header("USER TEMPLATE", tty), *template]
    return lines


EC2_KEY_COLUMNS = (
    Column("ACCESS_KEY_ID", 20, lambda k: text_of(k, "ACCESS_KEY_ID"), left=True),
    Column("UID", 4, lambda k: text_of(k, "UID")),
    Column("CREATED", 15, lambda k: _created(text_of(k, "CREATED")), left=True),
)


def _created(stamp: str) -> str:
    try:
        return time.strftime("%m/%d %H:%M:%S", time.localtime(int(stamp)))
    except ValueError:
        return stamp


def ec2key_created_lines(access_key_id: str, secret: str) -> list[str]:
    """What ``oneuser ec2key create`` prints: the pair, once, with the warning."""
    return [
        f"ACCESS_KEY_ID: {access_key_id}",
        f"SECRET_KEY:    {secret}",
        "",
        "The secret key is shown only now: oned keeps it encrypted and never shows it again.",
        "Keep it as a password; if it is lost, delete the key and create another.",
    ]


def ec2key_list_lines(keys_xml: str, tty: bool = False) -> list[str]:
    """``oneuser ec2key list`` for an ``<EC2_KEYS>`` document (ids and times, no secret)."""
    return table_lines(EC2_KEY_COLUMNS, parse_xml(keys_xml).iter("EC2_KEY"), tty)


# ---------------------------------------------------------------------------- commands


def create(ctx: Context, opts: argparse.Namespace) -> None:
    # The password goes as typed: oned hashes it (1.4's CLI sent sha1(password) itself).
    uid = ctx.call("one.user.allocate", opts.name, opts.password)
    # NOTE: 1.4 printed the id only with -v; modern OpenNebula always does (issue 16).
    ctx.print(f"ID: {uid}")


def delete(ctx: Context, opts: argparse.Namespace) -> None:
    for uid in resolve_ids(ctx, USER_POOL, opts.users):
        ctx.call("one.user.delete", uid)
        ctx.verbose("User deleted")


def list_(ctx: Context, opts: argparse.Namespace) -> None:
    text = ctx.call("one.userpool.info")
    if ctx.document(text):
        return
    columns = chosen_columns(opts, USER_COLUMNS, DEFAULT_COLUMNS)
    ctx.print(*list_lines(text, columns, ctx.tty))


def show(ctx: Context, opts: argparse.Namespace) -> None:
    for uid in resolve_ids(ctx, USER_POOL, opts.users):
        text = ctx.call("one.user.info", uid)
        if not ctx.document(text):
            ctx.print(*show_lines(text, ctx.tty))


def passwd(ctx: Context, opts: argparse.Namespace) -> None:
    uid = resolve_id(ctx, USER_POOL, opts.user)
    ctx.call("one.user.passwd", uid, opts.password)
    ctx.verbose("Password changed")


def ec2key(ctx: Context, opts: argparse.Namespace) -> None:
    """create [user], list [user] (default: the caller), delete <access key id>."""
    if opts.action == "delete":
        if not opts.target:
            raise CliError("ec2key delete needs the access key id (oneuser ec2key list)")
        ctx.call("one.user.ec2keydelete", opts.target)
        ctx.verbose("EC2 key deleted")
        return
    uid = resolve_id(ctx, USER_POOL, opts.target) if opts.target else -1
    if opts.action == "create":
        access_key_id, secret = ctx.call("one.user.ec2keycreate", uid)
        ctx.print(*ec2key_created_lines(access_key_id, secret))
    elif opts.action == "list":
        text = ctx.call("one.user.ec2keyinfo", uid)
        if not ctx.document(text):
            ctx.print(*ec2key_list_lines(text, ctx.tty))
    else:
        raise CliError(f'unknown ec2key action "{opts.action}": create, list or delete')


_USERS = Arg("users", "name|id", "user names or ids (ranges like 1-3 allowed)", nargs="+")

COMMANDS = (
    Command(
        "create",
        "Creates a new user",
        create,
        (Arg("name", "name", "user name"), Arg("password", "password", "the user's password")),
    ),
    Command("delete", "Removes users", delete, (_USERS,)),
    Command("list", "Lists the users", list_, options=("list",), columns=USER_COLUMNS),
    Command("show", "Gets information about users", show, (_USERS,)),
    Command(
        "passwd",
        "Changes the password of a user",
        passwd,
        (Arg("user", "name|id", "user name or id"), Arg("password", "password", "new password")),
    ),
    Command(
        "ec2key",
        "Creates, lists or deletes EC2 keys (create and list: yours unless a user is named)",
        ec2key,
        (
            Arg("action", "create|list|delete", "what to do"),
            Arg("target", "user|access_key_id", "a user (create, list) or a key (delete)", "?"),
        ),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``oneuser``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
