"""oneimage: register, list, show and manage the images of onecloud's repository.

Each command is one small function and one row of ``COMMANDS``, speaking OpenNebula 2.0's calls
(one.image.publish, one.image.update with an attribute and a value, one.imagepool.info with one
filter), as the other commands speak 1.4/2.0's; ``update FILE`` uses the modern form. What is
printed comes from ``cli.image_view``. ``create --wait`` follows the copy into the repository.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from cli.common import (
    Arg,
    CliError,
    Command,
    Context,
    Flag,
    UsageError,
    chosen_columns,
    int_of,
    parse_xml,
    run_cli,
    text_of,
)
from cli.image_view import (
    DEFAULT_COLUMNS,
    IMAGE_COLUMNS,
    Meter,
    error_of,
    image_user,
    list_lines,
    progress_of,
    progress_text,
    ready_line,
    show_lines,
)
from cli.names import expand_ranges
from cli.onevm import pool_filter
from cli.table import top
from cli.template_file import read_template
from oned.states import ImageState

PROG = "oneimage"
DESCRIPTION = "Manage the images of onecloud's repository."
ALL = -2
POLL = 0.5  # seconds between two one.image.info of create --wait
LOG_EVERY = 5.0  # seconds between two progress lines when stdout is not a terminal
CLEAR_EOL = "\33[K"


# ---------------------------------------------------------------------------- names


def resolve_images(ctx: Context, args: Sequence[str]) -> list[int]:
    """Ids for ids, names and ranges; the pool is listed once, if a name needs it.

    Names are unique per user: when several users' images share the name, the caller's own
    one is meant; without one of the caller's, the name is ambiguous.
    """
    pool = None
    ids: list[int] = []
    for name in expand_ranges(args):
        if name.isdigit():
            ids.append(int(name))
            continue
        if pool is None:
            pool = parse_xml(ctx.call("one.imagepool.info", ALL))
        found = [i for i in pool.iter("IMAGE") if text_of(i, "NAME") == name]
        if len(found) > 1:
            found = [i for i in found if image_user(i) == ctx.user()] or found
        if not found:
            raise CliError(f'image "{name}" not found')
        if len(found) > 1:
            owners = ", ".join(f"{image_user(i)} ({text_of(i, 'ID')})" for i in found)
            raise CliError(f'there are several images named "{name}": {owners}; use the id')
        ids.append(int_of(found[0], "ID"))
    return ids


# ---------------------------------------------------------------------------- commands


def create(ctx: Context, opts: argparse.Namespace) -> int | None:
    """one.image.allocate(template); with --wait, follow the copy until READY or ERROR."""
    iid = ctx.call("one.image.allocate", read_template(opts.template))
    ctx.verbose(f"ID: {iid}")
    if not opts.wait:
        return None
    try:
        final = wait_image(lambda: ctx.call("one.image.info", iid), ctx.write_now, ctx.tty)
    except KeyboardInterrupt:
        ctx.write_now("\n" if ctx.tty else "")
        sys.stderr.write(
            f"Stopped waiting; oned goes on copying image {iid} (oneimage show {iid})\n"
        )
        return 130
    ctx.print(final)
    return None


def wait_image(
    fetch: Callable[[], str],
    write: Callable[[str], object],
    tty: bool,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> str:
    """Poll ``fetch()`` (an ``<IMAGE>``) every POLL seconds while the image is LOCKED, drawing
    the progress; returns the last line (``ready_line``) or raises ``CliError`` on ERROR.

    On a terminal the bar is redrawn in place (``\\r``); otherwise a line is written every
    LOG_EVERY seconds, so a log shows the copy going on without a line per poll.
    """
    meter, drawn, logged = Meter(), False, float("-inf")
    while True:
        img = parse_xml(fetch())
        if int_of(img, "STATE", -1) != ImageState.LOCKED:
            break
        now = clock()
        done, total = progress_of(img)
        rate = meter.add(now, done)
        if tty:
            write(f"\r{progress_text(done, total, rate)}{CLEAR_EOL}")
            drawn = True
        elif now - logged >= LOG_EVERY:
            write(f"{text_of(img, 'NAME')}: {progress_text(done, total, rate, bar=False)}\n")
            logged = now
        sleep(POLL)
    if drawn:
        total = progress_of(img)[1] or int_of(img, "SIZE") * 1024 * 1024
        ok = int_of(img, "STATE") != ImageState.ERROR and total > 0
        write(f"\r{progress_text(total, total, None)}{CLEAR_EOL}\n" if ok else "\n")
    if int_of(img, "STATE") == ImageState.ERROR:
        raise CliError(f'image {text_of(img, "ID")} "{text_of(img, "NAME")}": {error_of(img)}')
    return ready_line(img)


def _render(ctx: Context, opts: argparse.Namespace) -> list[str]:
    flag, user = pool_filter(opts.filter)
    text = ctx.call("one.imagepool.info", flag)
    doc = ctx.formatted(text)
    if doc is not None:
        return [doc]
    columns = chosen_columns(opts, IMAGE_COLUMNS, DEFAULT_COLUMNS)
    return list_lines(text, columns, ctx.tty, user)


def list_(ctx: Context, opts: argparse.Namespace) -> None:
    ctx.print(*_render(ctx, opts))


def top_(ctx: Context, opts: argparse.Namespace) -> int:
    chosen_columns(opts, IMAGE_COLUMNS, DEFAULT_COLUMNS)  # a bad --list fails before the loop
    return top(lambda: _render(ctx, opts), ctx.write_now, opts.delay)


def show(ctx: Context, opts: argparse.Namespace) -> None:
    for iid in resolve_images(ctx, opts.images):
        text = ctx.call("one.image.info", iid)
        ctx.document(text) or ctx.print(*show_lines(text, ctx.tty))


def image_action(
    method: str, done: str, *flag: bool
) -> Callable[[Context, argparse.Namespace], None]:
    """A command calling ``method(iid, *flag)`` for each image named; ``-v`` prints ``done``."""

    def run(ctx: Context, opts: argparse.Namespace) -> None:
        for iid in resolve_images(ctx, opts.images):
            ctx.call(method, iid, *flag)
            ctx.verbose(done)

    return run


def update(ctx: Context, opts: argparse.Namespace) -> None:
    """``update IMAGE ATTR VALUE`` (2.0: one attribute) or ``update IMAGE FILE [--append]``
    (modern: the template replaced by the file's, or merged into it)."""
    (iid,) = resolve_images(ctx, [opts.image])
    if opts.value is not None:
        if opts.append:
            raise UsageError("oneimage update: --append goes with a template file, not a value")
        ctx.call("one.image.update", iid, opts.target, opts.value)
    else:
        ctx.call("one.image.update", iid, read_template(opts.target), 1 if opts.append else 0)
    ctx.verbose("Image updated")


def rmattr(ctx: Context, opts: argparse.Namespace) -> None:
    (iid,) = resolve_images(ctx, [opts.image])
    ctx.call("one.image.rmattr", iid, opts.attribute)
    ctx.verbose("Image attribute removed")


_IMAGES = Arg("images", "name|id", "image names or ids (ranges like 1-3 allowed)", nargs="+")
_IMAGE = Arg("image", "name|id", "the image")
_FILTER = Arg("filter", "a|all|m|mine|uid|username", "whose images to list (default: all)", "?")
_WAIT = Flag(
    ("--wait",),
    "[--wait]",
    {
        "action": "store_true",
        "help": "wait until the image is READY (or ERROR), with the copy's progress; Ctrl-C "
        "stops waiting, not the copy",
    },
)
_APPEND = Flag(
    ("-a", "--append"),
    "[--append]",
    {"action": "store_true", "help": "merge the file's attributes into the template"},
)


def _action(
    name: str, summary: str, call: tuple[str, str, bool] | tuple[str, str], details: str = ""
) -> Command:
    """A row acting on each image named: ``call`` is (method, -v message[, flag])."""
    method, done, *flag = call
    return Command(name, summary, image_action(method, done, *flag), (_IMAGES,), details=details)


CREATE_HELP = """\
The template names where the image comes from, one of:
  PATH = /srv/images/ttylinux.img      a file of the front end (or PATH = https://...),
                                       copied into the repository with its sha256 checksum
  SOURCE = /srv/nfs/db.img             a file already in place, used as it is (oneadmin)
  TYPE = DATABLOCK  SIZE = 1024  FSTYPE = ext4
                                       an empty disk of SIZE MB (FSTYPE raw: all zeros)
with NAME (unique among your images), and optionally TYPE (OS, CDROM, DATABLOCK; default
oned.conf's DEFAULT_IMAGE_TYPE), PUBLIC = YES, PERSISTENT = YES, DEV_PREFIX, DESCRIPTION.

The image is LOCKED while its file is copied and READY after; a copy that fails leaves it in
ERROR with the reason (oneimage show) and nothing in the repository. With --wait, oneimage
polls the image every 0.5 s: on a terminal it draws
  [#########-----------]  45%  1.4 GiB / 3.0 GiB  210 MiB/s
otherwise it writes a progress line every 5 s, and it ends with
  ttylinux: READY (3.0 GiB, sha256:...)
or exits 255 with "Error: image <id> "<name>": <reason>". Ctrl-C stops waiting, not the copy.

example:
  oneimage create ttylinux.one --wait"""

UPDATE_HELP = """\
examples:
  oneimage update ttylinux DESCRIPTION "ttylinux 12.6"     one attribute (2.0)
  oneimage update ttylinux new.one                         the whole template (modern)
  oneimage update ttylinux extra.one --append              merged into the template"""

PERSISTENT_HELP = """\
A VM uses a persistent image's file in place, so what it writes stays in the image; one VM at
a time may use it (a second one is refused). A non-persistent image is copied for each VM."""

COMMANDS = (
    Command(
        "create",
        "Registers an image from a template file (PATH, SOURCE or SIZE+FSTYPE)",
        create,
        (Arg("template", "template-file", "file with the image template"),),
        flags=(_WAIT,),
        details=CREATE_HELP,
    ),
    Command(
        "show",
        "Gets information about images (COPIED while a copy runs, ERROR after one failed)",
        show,
        (_IMAGES,),
    ),
    Command("list", "Lists images in the pool", list_, (_FILTER,), ("list",), IMAGE_COLUMNS),
    Command("top", "Lists images continuously", top_, (_FILTER,), ("list", "delay"), IMAGE_COLUMNS),
    _action(
        "delete",
        "Deletes images and their files in the repository (refused while VMs use them)",
        ("one.image.delete", "Image deleted"),
    ),
    _action("enable", "Enables images", ("one.image.enable", "Image enabled", True)),
    _action(
        "disable",
        "Disables images: no new VM may use them",
        ("one.image.enable", "Image disabled", False),
    ),
    _action(
        "publish",
        "Lets every user use the images",
        ("one.image.publish", "Image published", True),
    ),
    _action(
        "unpublish",
        "Makes the images private to their owner",
        ("one.image.publish", "Image unpublished", False),
    ),
    _action(
        "persistent",
        "Makes images persistent (used in place, by one VM at a time)",
        ("one.image.persistent", "Image made persistent", True),
        PERSISTENT_HELP,
    ),
    _action(
        "nonpersistent",
        "Makes images non-persistent (copied for each VM)",
        ("one.image.persistent", "Image made non persistent", False),
        PERSISTENT_HELP,
    ),
    Command(
        "update",
        "Sets an attribute of the image's template, or replaces or extends the template",
        update,
        (
            _IMAGE,
            Arg("target", "attr|file", "the attribute to set, or the template file"),
            Arg("value", "value", "the attribute's new value (with an attribute)", "?"),
        ),
        flags=(_APPEND,),
        details=UPDATE_HELP,
    ),
    Command(
        "rmattr",
        "Removes an attribute from the image's template",
        rmattr,
        (_IMAGE, Arg("attribute", "attr", "the attribute to remove")),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``oneimage``: returns the exit status (0, or 255 after ``Error: ...``)."""
    return run_cli(PROG, DESCRIPTION, COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
