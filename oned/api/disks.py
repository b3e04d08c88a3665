"""VM disks that name images of the repository: DISK = [ IMAGE = ... ] / [ IMAGE_ID = n ]
resolved at one.vm.allocate (OpenNebula 2.0's ``Image::disk_attribute``), and a disk saved
into an image when the VM shuts down (``one.vm.savedisk``, modern ``one.vm.disksaveas``).

Resolution looks images up in the pools only (dict lookups, no store reads): by id; by name,
the VM owner's own image of that name, else the one PUBLIC image of that name. The DISK then
carries the image's SOURCE, its IMAGE/IMAGE_ID, and how the TM treats it: a non-persistent
image is cloned for each VM (CLONE = YES, SAVE = NO); a persistent one is used in place by one
VM at a time and written back at the epilog (CLONE = NO, SAVE = YES, SAVE_AS_SOURCE = its
source). SAVE_AS / SAVE_AS_SOURCE are oned's: no template may set them.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from oned.api.cloud import Caller, Cloud
from oned.api.disk_save import disksaveas, savedisk
from oned.errors import ActionNotAllowed, AuthorizationError, BadCall, NoSuchObject
from oned.records import Image
from oned.states import ImageState, ImageType
from oned.template import Template, Value

__all__ = ["disksaveas", "resolve", "savedisk"]

OWNED_BY_ONED = ("SAVE_AS", "SAVE_AS_SOURCE")
COPIED = ("DRIVER", "BUS", "FORMAT", "TARGET")  # from the image's template when the DISK has none
FIRST_LETTER: dict[int, str] = {ImageType.OS: "a", ImageType.CDROM: "c", ImageType.DATABLOCK: "d"}
WHY: dict[int, str] = {
    ImageState.INIT: "it has no content yet",
    ImageState.DISABLED: "disabled",
    ImageState.LOCKED: "being copied",
}


def names_image(disk: object) -> bool:
    return isinstance(disk, dict) and ("IMAGE" in disk or "IMAGE_ID" in disk)


def resolve(cloud: Cloud, caller: Caller, tmpl: Template, vid: int, method: str) -> list[int]:
    """Fill in every DISK of ``tmpl`` (VM ``vid``, the caller's) that names an image; returns
    the ids of the images used. Nothing is held: ``Pools.use_images`` after the insert.

    Raises BadCall for SAVE_AS/SAVE_AS_SOURCE in a DISK or an ambiguous name, NoSuchObject
    for an image that is not there, AuthorizationError for another user's private image,
    ActionNotAllowed for an image that is not READY/USED or a persistent one in use.
    """
    disks = tmpl.get_all("DISK")
    named = False
    for at, disk in enumerate(disks):
        if isinstance(disk, dict):
            for attribute in OWNED_BY_ONED:
                if attribute in disk:
                    raise BadCall(
                        f"[{method}] Error in DISK {at}: DISK/{attribute} is set by oned, "
                        "not by a template"
                    )
            named = named or names_image(disk)
    if not named:
        return []
    taken = _targets(disks, tmpl.get_all("CONTEXT"))
    used: list[int] = []
    filled: list[Value] = []
    for at, disk in enumerate(disks):
        if not names_image(disk):
            filled.append(disk)
            continue
        assert isinstance(disk, dict)
        where = f"[{method}] Error in DISK {at}"
        img = find_image(cloud, caller, disk, where)
        _check_usable(cloud, img, used, vid, where)
        used.append(img.id)
        filled.append(disk_attributes(cloud, disk, img, taken, where))
    tmpl.merge(Template([("DISK", d) for d in filled]))
    return used


def find_image(cloud: Cloud, caller: Caller, disk: dict[str, str], where: str) -> Image:
    """The image a DISK names; the caller may use it (its own, a public one, or oneadmin)."""
    pools = cloud.pools
    if "IMAGE_ID" in disk:
        iid = _number(disk["IMAGE_ID"], "IMAGE_ID", where)
        img = pools.images.get(iid)
        if img is None:
            raise NoSuchObject(f"{where}: there is no image [{iid}]")
        if disk.get("IMAGE", img.name) != img.name:
            raise BadCall(f'{where}: IMAGE "{disk["IMAGE"]}" is not IMAGE_ID {iid}')
    else:
        img = _by_name(cloud, caller, disk, where)
    if not (caller.is_admin or img.uid == caller.uid or img.public):
        raise AuthorizationError(
            f'{where}: User [{caller.uid}] not authorized to use image "{img.name}" '
            f"[{img.id}] of user [{img.uid}]"
        )
    return img


def _by_name(cloud: Cloud, caller: Caller, disk: dict[str, str], where: str) -> Image:
    """NOTE: names are unique per user (modern OpenNebula): the owner's own image of that name,
    else the one public image of that name; IMAGE_UID / IMAGE_UNAME say whose it is."""
    name, pools = disk["IMAGE"], cloud.pools
    names = pools.image_names
    owner = _named_owner(cloud, disk, where)
    if owner is not None:
        img = names.get((owner, name))
        if img is None:
            raise NoSuchObject(f'{where}: user [{owner}] has no image "{name}"')
        return img
    own = names.get((caller.uid, name))
    if own is not None:
        return own
    public = [
        img
        for user in pools.users
        if (img := names.get((user.id, name))) is not None and img.public
    ]
    if not public:
        raise NoSuchObject(f'{where}: there is no image "{name}"')
    if len(public) > 1:
        owners = ", ".join(f"[{img.uid}]" for img in public)
        raise BadCall(
            f'{where}: users {owners} each have a public image "{name}": '
            "say which with IMAGE_ID or IMAGE_UNAME"
        )
    return public[0]


def _named_owner(cloud: Cloud, disk: dict[str, str], where: str) -> int | None:
    if "IMAGE_UID" in disk:
        return _number(disk["IMAGE_UID"], "IMAGE_UID", where)
    if "IMAGE_UNAME" in disk:
        user = cloud.pools.user_names.get(disk["IMAGE_UNAME"])
        if user is None:
            raise NoSuchObject(f'{where}: there is no user "{disk["IMAGE_UNAME"]}"')
        return user.id
    return None


def _number(text: str, attribute: str, where: str) -> int:
    if not text.strip().isdigit():
        raise BadCall(f'{where}: {attribute} = "{text}" is not a number')
    return int(text)


def _check_usable(cloud: Cloud, img: Image, used: list[int], vid: int, where: str) -> None:
    """READY or USED; a persistent image by no other VM (nor twice by this one)."""
    pools = cloud.pools
    state = pools.image_state(img)
    if state not in (ImageState.READY, ImageState.USED):
        name = ImageState(state).name
        why = WHY.get(state) or img.template.get_str("ERROR") or "see its template's ERROR"
        raise ActionNotAllowed(f'{where}: image "{img.name}" [{img.id}] is {name} ({why})')
    if not img.persistent:
        return
    users = sorted(pools.image_users.get(img.id, ()))
    if img.id in used:
        users = [vid]
    if users:
        raise ActionNotAllowed(
            f'{where}: image "{img.name}" [{img.id}] is persistent and in use by VM '
            f"{', '.join(map(str, users))}"
        )


def disk_attributes(
    cloud: Cloud, disk: dict[str, str], img: Image, taken: set[str], where: str
) -> dict[str, str]:
    """The DISK as 2.0's ``Image::disk_attribute`` makes it (the image's attributes win over
    the user's SOURCE, TYPE, CLONE, SAVE, READONLY; TARGET, BUS, DRIVER... are the user's)."""
    new = dict(disk)
    for attribute in COPIED:
        value = img.template.get_str(attribute)
        if value and not new.get(attribute):
            new[attribute] = value
    cdrom = img.type == ImageType.CDROM
    new.update(
        IMAGE=img.name,
        IMAGE_ID=str(img.id),
        IMAGE_UID=str(img.uid),
        IMAGE_UNAME=cloud.pools.uname(img.uid),
        SOURCE=img.source,
        TYPE="CDROM" if cdrom else "DISK",
        READONLY="YES" if cdrom else "NO",
    )
    if img.persistent:
        new.update(CLONE="NO", SAVE="YES", SAVE_AS_SOURCE=img.source)
    else:
        new.update(CLONE="YES", SAVE="NO")
    if not new.get("TARGET"):
        prefix = img.template.get_str("DEV_PREFIX") or cloud.config.default_device_prefix
        new["TARGET"] = _free_target(prefix, FIRST_LETTER.get(img.type, "d"), taken, where)
    taken.add(new["TARGET"])
    return new


def _targets(disks: Sequence[object], context: Sequence[object]) -> set[str]:
    """The TARGETs the template gives; the VMM drivers name the CONTEXT cdrom and disks without
    one after all of these (drivers/vmm_kvm_xml.py ``Targets``), so they cannot collide."""
    return {v["TARGET"] for v in (*disks, *context) if isinstance(v, dict) and v.get("TARGET")}


def _free_target(prefix: str, first: str, taken: set[str], where: str) -> str:
    """``prefix`` + 2.0's letter for the type, or the next free one after it (then from a)."""
    letters = string.ascii_lowercase
    start = letters.index(first)
    for letter in letters[start:] + letters[:start]:
        if prefix + letter not in taken:
            return prefix + letter
    raise BadCall(f"{where}: no free {prefix}* TARGET left")
