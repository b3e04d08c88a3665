"""onevm saveas: save a VM's disk into a new image of the repository when the VM shuts down.

As OpenNebula 2.0's CLI: allocate the image (NAME, TYPE; INIT, with no content), then
``one.vm.savedisk(vid, disk_id, iid)``, after which oned keeps it LOCKED until the VM's epilog
has moved the disk into it. When the VM refuses, the image just made is deleted again, so a
failed saveas leaves nothing behind.
"""

from __future__ import annotations

import argparse

from cli.common import Arg, CliError, Command, Context, Flag
from cli.names import Pool, resolve_id
from oned.client import OneClientError
from oned.states import ImageType
from oned.template import Template

DETAILS = """\
The new image is registered at once (it shows `lock`); when the VM shuts down, its epilog
moves the disk into the image, which becomes `rdy` (or `err` when the VM ended without an
epilog: cancelled, deleted, failed). When the VM refuses (no such disk, a cdrom, a disk
already being saved), the new image is deleted again and nothing is left.

example:
  onevm saveas ttylinux 0 ttylinux-configured
  onevm shutdown ttylinux"""


def saveas_command(vm_pool: Pool) -> Command:
    """The ``saveas`` row of onevm's table; ``vm_pool`` resolves the VM's name."""

    def run(ctx: Context, opts: argparse.Namespace) -> None:
        saveas(ctx, opts, vm_pool)

    return Command(
        "saveas",
        "Saves a disk of the VM into a new image when the VM shuts down (the image is "
        "LOCKED until then, READY after)",
        run,
        (
            Arg("vm", "name|id", "the VM"),
            Arg("disk_id", "disk_id", "DISK_ID of the disk to save (onevm show)"),
            Arg("image_name", "image_name", "name of the new image"),
        ),
        flags=(
            Flag(
                ("--type",),
                "[--type OS|CDROM|DATABLOCK]",
                {
                    "type": str.upper,
                    "choices": [t.name for t in ImageType],
                    "help": "type of the new image (default: oned's DEFAULT_IMAGE_TYPE)",
                },
            ),
        ),
        details=DETAILS,
    )


def saveas(ctx: Context, opts: argparse.Namespace, vm_pool: Pool) -> None:
    """Allocate the image, then ask the VM to save the disk into it; prints the image's id."""
    if not opts.disk_id.isdigit():
        raise CliError(f"onevm saveas: disk id must be a number, not {opts.disk_id!r}")
    vid = resolve_id(ctx, vm_pool, opts.vm)
    attrs = [("NAME", opts.image_name), *([("TYPE", opts.type)] if opts.type else [])]
    iid = ctx.call("one.image.allocate", Template(attrs).to_text())
    try:
        ctx.call("one.vm.savedisk", vid, int(opts.disk_id), iid)
    except OneClientError as e:
        raise CliError(f"{_message(e)}{_undo_image(ctx, iid)}") from e
    ctx.print(f"Image ID: {iid}")
    ctx.print(f"The disk is copied into image {iid} when VM {vid} shuts down")


def _undo_image(ctx: Context, iid: int) -> str:
    """Delete the image saveas made; '' when done, else what went wrong (to add to the error)."""
    try:
        ctx.call("one.image.delete", iid)
    except OneClientError as e:
        return f" (and image {iid} it made could not be deleted: {_message(e)})"
    return ""


def _message(err: Exception) -> str:
    return getattr(err, "message", None) or str(err)
