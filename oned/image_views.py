"""The ``<IMAGE>`` document of an image of the repository, as OpenNebula's clients read it.

Pure: from an Image record, its owner's name, the VMs using it and the state to show, to XML
text. OpenNebula 2.0's fields come first, in 2.0's order (reference §5.2: ID, UID, USERNAME,
NAME, TYPE, PUBLIC, PERSISTENT, REGTIME, SOURCE, then PATH and SIZE, STATE, RUNNING_VMS), then
every element OpenNebula 6.10's image.xsd requires, with what a fresh OpenNebula 6 shows (the
default image datastore, no clones, no snapshots, no backups), then TEMPLATE (CDATA values, as
2.0 writes them) and onecloud's own CHECKSUM and, while a copy runs, PROGRESS (bytes).
"""

from __future__ import annotations

from collections.abc import Collection

from oned.records import Image
from oned.states import ImageState
from oned.views import fields, group_of, permissions

# NOTE: the repository is what OpenNebula >= 3.4 calls the image datastore "default" (id 1).
DATASTORE = (1, "default")
# NOTE: OpenNebula 6 writes an image's SNAPSHOTS with these three even when there is none.
_NO_SNAPSHOTS = (
    "<SNAPSHOTS><ALLOW_ORPHANS>NO</ALLOW_ORPHANS><CURRENT_BASE>-1</CURRENT_BASE>"
    "<NEXT_SNAPSHOT>0</NEXT_SNAPSHOT></SNAPSHOTS>"
)
_NO_CLONES = "<CLONES/><APP_CLONES/>"
_NO_BACKUPS = "<BACKUP_INCREMENTS/>"


def image_xml(img: Image, uname: str, vms: Collection[int], state: int) -> str:
    """One image (one.image.info): ``vms`` are the ids of the VMs using it, in order;
    ``state`` the one to show (USED for a READY image in use, Pools.image_state)."""
    gid, gname = group_of(img.uid)
    old = fields(
        (
            ("ID", img.id),
            ("UID", img.uid),
            ("USERNAME", uname),
            ("NAME", img.name),
            ("TYPE", img.type),
            ("PUBLIC", int(img.public)),
            ("PERSISTENT", int(img.persistent)),
            ("REGTIME", img.regtime),
            ("SOURCE", img.source),
            ("PATH", img.path),
            ("SIZE", img.size),
            ("STATE", state),
            ("RUNNING_VMS", len(vms)),
        )
    )
    owner = fields((("GID", gid), ("UNAME", uname), ("GNAME", gname)))
    modern = fields(
        (
            ("DISK_TYPE", 0),  # FILE
            ("FORMAT", _format(img)),
            ("FS", img.fstype),
            ("PREV_STATE", state),
            ("CLONING_OPS", 0),
            ("CLONING_ID", -1),
            ("TARGET_SNAPSHOT", -1),
            ("DATASTORE_ID", DATASTORE[0]),
            ("DATASTORE", DATASTORE[1]),
        )
    )
    users = "".join(f"<ID>{vid}</ID>" for vid in vms)
    return (
        f"<IMAGE>{old}{owner}{permissions(img.public)}{modern}<VMS>{users}</VMS>{_NO_CLONES}"
        f"{img.template.to_xml()}{_NO_SNAPSHOTS}{_NO_BACKUPS}{_extras(img)}</IMAGE>"
    )


def image_short_xml(img: Image, uname: str, vms: Collection[int], state: int) -> str:
    """An image in one.imagepool.info: OpenNebula's pool IMAGE is the whole document."""
    return image_xml(img, uname, vms, state)


def _format(img: Image) -> str:
    """The template's FORMAT, else its DRIVER (2.0's disk driver: raw, qcow2...), else raw."""
    for name in ("FORMAT", "DRIVER"):
        value = img.template.get_str(name)
        if value:
            return value
    return "raw"


def _extras(img: Image) -> str:
    """onecloud's CHECKSUM once known, and the bytes of a copy while it runs."""
    extras = fields((("CHECKSUM", img.checksum),)) if img.checksum else ""
    if img.state == ImageState.LOCKED and img.total > 0:
        extras += f"<PROGRESS><DONE>{img.done}</DONE><TOTAL>{img.total}</TOTAL></PROGRESS>"
    return extras
