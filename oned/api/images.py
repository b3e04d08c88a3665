"""one.image.* and one.imagepool.info (reference §4.3, §4.4, §5.2): the image repository's API.

Images follow the networks' rules (§8, §9): a user's images are private until published; a
private image is seen, used and managed only by its owner and oneadmin. Each call checks
everything first, commits to the store, then changes the pools; the copy of a PATH, the making
of an empty DATABLOCK and the removal of a deleted image's file are the image manager's
(``cloud.images``, None in API-only tests: the image then stays LOCKED).
"""

from __future__ import annotations

import dataclasses
import os
import stat

from oned import imagetemplate as it
from oned.api import listing, templates
from oned.api.cloud import Caller, Cloud, require_owner
from oned.api.replies import document, pool
from oned.errors import ActionNotAllowed, AllocateError, AuthorizationError, BadCall, NoSuchObject
from oned.records import Image
from oned.rpc.marshal import Escaped
from oned.states import ImageState, VmState
from oned.store import DuplicateName
from oned.template import Template
from oned.vmtemplate import check_bounds

DEFAULT_DATASTORE = 1  # modern OpenNebula's "default" image datastore: onecloud's only one
REPLACE, MERGE = 0, 1


def allocate(cloud: Cloud, caller: Caller, text: str, datastore: int = DEFAULT_DATASTORE) -> int:
    """A new image of the caller's; with a PATH or an empty DATABLOCK it is LOCKED while the
    image manager copies or makes its file. ``datastore`` (modern) must be 1 or -1."""
    method = "one.image.allocate"
    if datastore not in (DEFAULT_DATASTORE, -1):
        raise BadCall(
            f"[{method}] datastore [{datastore}] is not an image datastore; onecloud has one: "
            f"{DEFAULT_DATASTORE} (default)"
        )
    tmpl = templates.parse(text, method, "image")
    attributes = cloud.config.image_restricted_attr
    templates.refuse_restricted(caller, tmpl, attributes, method, "Image")
    img = _build(cloud, caller, tmpl, method)
    if img.path:
        _check_path(cloud, caller, img.path, method)
    elif img.source:  # a user's only when IMAGE_RESTRICTED_ATTR leaves SOURCE to users
        templates.refuse_path(cloud, caller, "SOURCE", img.source, method, "Image")
    held = cloud.pools.image_names.get((caller.uid, img.name))
    if held is not None:
        raise AllocateError(f'[{method}] NAME is already taken by IMAGE {held.id} "{held.name}".')
    if img.state == ImageState.LOCKED:
        img.source = templates.image_source(cloud, img.id)
    try:
        cloud.store.insert_image(img)  # type: ignore[attr-defined]
    except DuplicateName:
        raise AllocateError(f'[{method}] NAME "{img.name}" is already taken by an IMAGE.') from None
    cloud.pools.take_id("image")
    cloud.pools.put_image(img)
    cloud.log.info(f"Image {img.name} ({img.id}) created by {caller.name}")
    if cloud.images is not None and img.state == ImageState.LOCKED:
        if img.path:
            cloud.images.copy(img)
        else:
            cloud.images.mkfs(img)
    return img.id


def info(cloud: Cloud, caller: Caller, iid: int, decrypt: bool = False) -> Escaped:
    img = _visible(cloud, caller, iid, "one.image.info", "INFO")
    return document(cloud.pools.images.xml(img))


def delete(cloud: Cloud, caller: Caller, iid: int, force: bool = False) -> int:
    """Refused while VMs use the image or one will save a disk into it; a copy in progress is
    cancelled. NOTE: modern OpenNebula's ``force`` is accepted and changes nothing here."""
    method = "one.image.delete"
    img = _get(cloud, iid, method)
    require_owner(caller, img.uid, method, "DELETE", f"IMAGE [{iid}]")
    _refuse_in_use(cloud, img, method, "delete")
    savers = _savers(cloud, img)
    if savers:
        raise ActionNotAllowed(
            f'[{method}] Cannot delete image "{img.name}" [{iid}]: {_vms(savers)} will save a '
            "disk into it"
        )
    cloud.store.delete_image(iid)  # type: ignore[attr-defined]
    cloud.pools.remove_image(iid)
    cloud.log.info(f"Image {img.name} ({iid}) deleted by {caller.name}")
    if cloud.images is not None:
        cloud.images.remove(img)
    return iid


def update(cloud: Cloud, caller: Caller, iid: int, text: str, merge: int | str = REPLACE) -> int:
    """Modern (template, merge 0 replace / 1 merge) or 2.0 (attribute name, value: ``merge``
    is then the value, a string). Only the template changes.

    NOTE: as OpenNebula, NAME, TYPE, PATH, SOURCE, PUBLIC or PERSISTENT written in the template
    change its text, not the image's fields."""
    method = "one.image.update"
    img = _managed(cloud, caller, iid, method)
    if isinstance(merge, str):
        incoming = _attribute(text, merge, method)
        merge = MERGE
    else:
        if merge not in (REPLACE, MERGE):
            raise BadCall(f"[{method}] merge must be 0 (replace) or 1 (merge), not {merge}")
        incoming = templates.parse(text, method, "image")
    attributes = cloud.config.image_restricted_attr
    templates.refuse_restricted(caller, incoming, attributes, method, "Image", img.template)
    tmpl = incoming
    if merge == MERGE:
        tmpl = img.template.copy()
        tmpl.merge(incoming)
        _check_bounds(tmpl, method)
    _commit(cloud, img, template=tmpl)
    return iid


def rmattr(cloud: Cloud, caller: Caller, iid: int, name: str) -> int:
    """2.0's one.image.rmattr: every attribute ``name`` leaves the template (none: no change)."""
    method = "one.image.rmattr"
    img = _managed(cloud, caller, iid, method)
    tmpl = img.template.copy()
    if tmpl.remove(name):
        _commit(cloud, img, template=tmpl)
    return iid


def enable(cloud: Cloud, caller: Caller, iid: int, enabled: bool) -> int:
    """NOTE: as OpenNebula 2.0's Image::enable, only DISABLED -> READY and READY -> DISABLED;
    an image in use (USED) is not disabled."""
    method = "one.image.enable"
    img = _managed(cloud, caller, iid, method)
    shown = cloud.pools.image_state(img)
    wanted = ImageState.DISABLED if enabled else ImageState.READY
    if shown != wanted:
        verb = "enable" if enabled else "disable"
        raise ActionNotAllowed(
            f'[{method}] Cannot {verb} image "{img.name}" [{iid}] in state '
            f"{ImageState(shown).name}: only a {wanted.name} image is {verb}d"
        )
    new = ImageState.READY if enabled else ImageState.DISABLED
    _commit(cloud, img, state=new)
    cloud.log.info(f"Image {img.name} ({iid}) {'enabled' if enabled else 'disabled'}")
    return iid


def publish(cloud: Cloud, caller: Caller, iid: int, public: bool) -> int:
    """2.0's one.image.publish: a public image may be seen and used by every user."""
    method = "one.image.publish"
    img = _managed(cloud, caller, iid, method)
    _publish(cloud, img, public)
    return iid


def chmod(cloud: Cloud, caller: Caller, iid: int, *bits: int) -> int:
    """Modern one.image.chmod (OWNER_U/M/A, GROUP_U/M/A, OTHER_U/M/A; -1 keeps one): onecloud
    keeps one flag, PUBLIC, set when GROUP_U or OTHER_U is 1.

    NOTE: the owner's and the manage/admin bits are accepted and ignored (no groups here)."""
    method = "one.image.chmod"
    bad = [b for b in bits if b not in (-1, 0, 1)]
    if bad:
        raise BadCall(f"[{method}] permission bits are -1 (unchanged), 0 or 1, not {bad[0]}")
    img = _managed(cloud, caller, iid, method)
    _publish(cloud, img, it.public_after_chmod(img.public, bits[3], bits[6]))
    return iid


def persistent(cloud: Cloud, caller: Caller, iid: int, persistent: bool) -> int:
    """A persistent image is used in place by one VM at a time; the flag changes only while no
    VM uses the image, and not while it is LOCKED or in ERROR."""
    method = "one.image.persistent"
    img = _managed(cloud, caller, iid, method)
    _refuse_in_use(cloud, img, method, "change the persistence of")
    if img.state in (ImageState.LOCKED, ImageState.ERROR):
        raise ActionNotAllowed(
            f'[{method}] Cannot change the persistence of image "{img.name}" [{iid}] in state '
            f"{ImageState(img.state).name}"
        )
    if img.persistent != persistent:
        _commit(cloud, img, persistent=persistent)
        cloud.log.info(f"Image {img.name} ({iid}) made {'' if persistent else 'non'}persistent")
    return iid


def pool_info(cloud: Cloud, caller: Caller, flt: int, start: int = -1, end: int = -1) -> Escaped:
    """Filter flag and id range or page as one.vnpool.info (``oned.api.listing``)."""
    wanted = listing.pool_filter(caller, flt, "one.imagepool.info", it.may_use)
    images = [img for img in cloud.pools.images if wanted(img)]
    xml = cloud.pools.images.xml_short
    return pool("IMAGE_POOL", (xml(img) for img in listing.page(images, start, end)))


# --- helpers ----------------------------------------------------------------------------------


def _build(cloud: Cloud, caller: Caller, tmpl: Template, method: str) -> Image:
    config = cloud.config
    try:
        return it.build(
            tmpl,
            oid=cloud.pools.next_ids["image"],
            uid=caller.uid,
            regtime=cloud.now(),
            default_type=config.default_image_type,
            dev_prefix=config.default_device_prefix,
        )
    except it.ImageTemplateError as exc:
        raise BadCall(f"[{method}] Error in image template: {exc}") from None


def _check_path(cloud: Cloud, caller: Caller, path: str, method: str) -> None:
    """A user's PATH must be in SAFE_DIRS; a local one must be a readable regular file now
    (the driver checks again when it copies). URLs are judged by the driver."""
    templates.refuse_path(cloud, caller, "PATH", path, method, "Image")
    if "://" in path:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise BadCall(f'[{method}] PATH = "{path}": {exc.strerror or exc}') from None
    if not stat.S_ISREG(mode):
        raise BadCall(f'[{method}] PATH = "{path}": not a regular file')
    if not os.access(path, os.R_OK):
        raise BadCall(f'[{method}] PATH = "{path}": not readable by oned')


def _attribute(name: str, value: str, method: str) -> Template:
    """2.0's update: one single attribute ``name = value``."""
    try:
        incoming = Template([(name, value)])
    except (TypeError, ValueError) as exc:
        raise BadCall(f"[{method}] {exc}") from None
    _check_bounds(incoming, method)
    return incoming


def _check_bounds(tmpl: Template, method: str) -> None:
    problems = check_bounds(tmpl)
    if problems:
        raise BadCall(f"[{method}] Error in image template: {'; '.join(problems)}")


def _commit(cloud: Cloud, img: Image, **changes: object) -> None:
    """Store first, then the image in memory (its cached XML is dropped)."""
    cloud.store.update_image(dataclasses.replace(img, **changes))  # type: ignore[attr-defined]
    for name, value in changes.items():
        setattr(img, name, value)
    cloud.pools.images.changed(img.id)


def _publish(cloud: Cloud, img: Image, public: bool) -> None:
    if img.public != public:
        _commit(cloud, img, public=public)
        cloud.log.info(f"Image {img.name} ({img.id}) {'' if public else 'un'}published")


def _refuse_in_use(cloud: Cloud, img: Image, method: str, verb: str) -> None:
    users = sorted(cloud.pools.image_users.get(img.id, ()))
    if users:
        raise ActionNotAllowed(
            f'[{method}] Cannot {verb} image "{img.name}" [{img.id}]: it is used by {_vms(users)}'
        )


def _savers(cloud: Cloud, img: Image) -> list[int]:
    """The live VMs with a DISK to be saved into ``img`` (SAVE_AS = its id); only an INIT or
    LOCKED image can be one's target, so the VMs are scanned for those alone."""
    if img.state not in (ImageState.INIT, ImageState.LOCKED):
        return []
    target = str(img.id)
    return [
        vm.id
        for vm in cloud.pools.vms
        if vm.state not in (VmState.DONE, VmState.FAILED)
        and any(
            isinstance(disk, dict) and disk.get("SAVE_AS") == target
            for disk in vm.template.get_all("DISK")
        )
    ]


def _vms(vids: list[int]) -> str:
    return f"VM{'s' if len(vids) > 1 else ''} {', '.join(map(str, vids))}"


def _get(cloud: Cloud, iid: int, method: str) -> Image:
    img = cloud.pools.images.get(iid)
    if img is None:
        raise NoSuchObject(f"[{method}] Error getting image [{iid}].")
    return img


def _visible(cloud: Cloud, caller: Caller, iid: int, method: str, action: str) -> Image:
    img = _get(cloud, iid, method)
    if not it.may_use(img, caller.uid):
        raise AuthorizationError(
            f"[{method}] User [{caller.uid}] not authorized to perform {action} on IMAGE [{iid}]."
        )
    return img


def _managed(cloud: Cloud, caller: Caller, iid: int, method: str) -> Image:
    img = _get(cloud, iid, method)
    require_owner(caller, img.uid, method, "MANAGE", f"IMAGE [{iid}]")
    return img
