"""A VM's disk saved into an image when the VM shuts down: 2.0's ``one.vm.savedisk`` and modern
``one.vm.disksaveas`` (the ``onevm saveas`` user flow).

The DISK gets SAVE = YES, SAVE_AS = <image id> and SAVE_AS_SOURCE = the image's file in the
repository; the image is LOCKED with that SOURCE. The epilog moves the disk there
(``oned.transfer``); when the VM ends, ``images.saved`` checks it (READY, or ERROR when the VM
ended without an epilog). The image is written before the VM: a crash between the two leaves
an image LOCKED that no VM saves into, which the image manager's start-up turns into ERROR.
"""

from __future__ import annotations

from dataclasses import replace

from oned import lifecycle as lc
from oned.api import templates
from oned.api.cloud import Caller, Cloud, managed_vm, require_owner
from oned.errors import ActionNotAllowed, AllocateError, BadCall, InternalError, NoSuchObject
from oned.records import Image, Vm
from oned.states import ImageState, ImageType, LcmState, VmState
from oned.store import DuplicateName
from oned.template import Template
from oned.vmtemplate import check_vm_template

NOT_SAVED_TYPES = ("CDROM", "SWAP", "FS", "BLOCK")  # nothing of the VM's own to keep
LATE = (LcmState.EPILOG, LcmState.FAILURE, LcmState.DELETE)  # the epilog is written or skipped


def savedisk(cloud: Cloud, caller: Caller, vid: int, disk_id: int, image_id: int) -> int:
    """2.0's ``one.vm.savedisk``: disk ``disk_id`` (0-based) of VM ``vid`` is written into image
    ``image_id`` (the caller's, INIT: no content yet) when the VM shuts down. Returns ``vid``."""
    method = "one.vm.savedisk"
    vm = _vm(cloud, caller, vid, method)
    _savable(vm, disk_id, method)
    img = cloud.pools.images.get(image_id)
    if img is None:
        raise NoSuchObject(f"[{method}] Error getting image [{image_id}].")
    require_owner(caller, img.uid, method, "MANAGE", f"IMAGE [{image_id}]")
    if img.state != ImageState.INIT:
        state = ImageState(cloud.pools.image_state(img)).name
        raise ActionNotAllowed(
            f'[{method}] image "{img.name}" [{image_id}] is {state}: a disk is saved into a '
            "new image, still INIT (without content)"
        )
    locked = replace(img, state=ImageState.LOCKED, source=templates.image_source(cloud, image_id))
    cloud.store.update_image(locked)  # type: ignore[attr-defined]
    cloud.pools.put_image(locked)
    _mark(cloud, vm, disk_id, locked, method, before=img)
    cloud.log.info(f"VM {vid} disk {disk_id} will be saved into image {image_id} by {caller.name}")
    return vid


def disksaveas(
    cloud: Cloud, caller: Caller, vid: int, disk_id: int, name: str, type_: str, snap_id: int
) -> int:
    """Modern ``one.vm.disksaveas``: a new image ``name`` of the caller's (TYPE ``type_``, else
    that of the disk's own image, else OS) that disk ``disk_id`` of VM ``vid`` is saved into
    when the VM shuts down. Returns the new image's id; ``snap_id`` must be -1 (onecloud keeps
    no disk snapshots).

    NOTE: as modern OpenNebula's disksaveas, the image is born LOCKED with its SOURCE: one
    insert, rather than one.image.allocate's INIT image and a second write to lock it.
    """
    method = "one.vm.disksaveas"
    if snap_id != -1:
        raise BadCall(f"[{method}] snapshot {snap_id}: there are no disk snapshots, use -1")
    vm = _vm(cloud, caller, vid, method)
    disk = _savable(vm, disk_id, method)
    kind = _image_type(cloud, type_, disk, method)
    img = _new_image(cloud, caller, name, kind, method)
    img.template.set("SAVED_VM_ID", str(vid))  # NOTE: modern OpenNebula's names
    img.template.set("SAVED_DISK_ID", str(disk_id))
    iid = img.id
    try:
        cloud.store.insert_image(img)  # type: ignore[attr-defined]
    except DuplicateName:
        raise _taken(name, method) from None
    cloud.pools.take_id("image")
    cloud.pools.put_image(img)
    _mark(cloud, vm, disk_id, img, method, before=None)
    cloud.log.info(f"Image {name} ({iid}) will hold VM {vid}'s disk {disk_id} ({caller.name})")
    return iid


def _new_image(cloud: Cloud, caller: Caller, name: str, kind: ImageType, method: str) -> Image:
    """The caller's new image ``name``, LOCKED with its file in the repository (not stored)."""
    if check_vm_template(Template([("NAME", name)])) or not name.isprintable():
        raise BadCall(f'[{method}] NAME = "{name[:80]}": must be 1-128 printable characters')
    if (caller.uid, name) in cloud.pools.image_names:
        raise _taken(name, method)
    iid = cloud.pools.next_ids["image"]
    tmpl = Template([("NAME", name), ("TYPE", kind.name)])
    source = templates.image_source(cloud, iid)
    return Image(
        iid,
        caller.uid,
        name,
        int(kind),
        public=False,
        persistent=False,
        regtime=cloud.now(),
        template=tmpl,
        source=source,
        state=ImageState.LOCKED,
    )


def _taken(name: str, method: str) -> AllocateError:
    return AllocateError(f'[{method}] NAME is already taken by IMAGE "{name}" of this user.')


def _vm(cloud: Cloud, caller: Caller, vid: int, method: str) -> Vm:
    """The caller's (or oneadmin's) VM, still to shut down."""
    vm = managed_vm(cloud, caller, vid, method, "its disks are gone")
    if vm.state == VmState.FAILED or (vm.state == VmState.ACTIVE and vm.lcm_state in LATE):
        state = lc.state_name(vm.state, vm.lcm_state)
        raise ActionNotAllowed(f"[{method}] VM {vid} is {state}: too late to save a disk")
    return vm


def _savable(vm: Vm, disk_id: int, method: str) -> dict[str, str]:
    """DISK ``disk_id`` of ``vm``: one with content of its own, not saved already."""
    disks = vm.template.get_all("DISK")
    if not 0 <= disk_id < len(disks) or not isinstance(disks[disk_id], dict):
        raise BadCall(f"[{method}] VM {vm.id} has no DISK {disk_id} (it has {len(disks)})")
    disk = disks[disk_id]
    assert isinstance(disk, dict)
    kind = disk.get("TYPE", "").upper()
    if kind in NOT_SAVED_TYPES or not disk.get("SOURCE"):
        what = f"a {kind} disk" if kind in NOT_SAVED_TYPES else "a disk without SOURCE"
        raise ActionNotAllowed(f"[{method}] VM {vm.id} DISK {disk_id} is {what}: not saved")
    if "SAVE_AS" in disk:
        raise ActionNotAllowed(
            f"[{method}] VM {vm.id} DISK {disk_id} is saved into image {disk['SAVE_AS']} already"
        )
    if "SAVE_AS_SOURCE" in disk:
        raise ActionNotAllowed(
            f'[{method}] VM {vm.id} DISK {disk_id} is the persistent image "{disk.get("IMAGE")}"'
            " itself: it is written back there at shutdown"
        )
    if disk.get("CLONE", "yes").lower() == "no":  # the TM links it: the disk is SOURCE itself
        raise ActionNotAllowed(
            f"[{method}] VM {vm.id} DISK {disk_id} is linked in place (CLONE = no): "
            f"its content is {disk['SOURCE']} itself"
        )
    return disk


def _image_type(cloud: Cloud, type_: str, disk: dict[str, str], method: str) -> ImageType:
    wanted = type_.strip().upper()
    if not wanted and disk.get("IMAGE_ID", "").isdigit():
        own = cloud.pools.images.get(int(disk["IMAGE_ID"]))
        wanted = ImageType(own.type).name if own is not None else ""
    wanted = wanted or "OS"
    if wanted not in ImageType.__members__:
        raise BadCall(f'[{method}] TYPE = "{type_[:40]}": not one of OS, CDROM, DATABLOCK')
    return ImageType[wanted]


def _mark(
    cloud: Cloud, vm: Vm, disk_id: int, img: Image, method: str, before: Image | None
) -> None:
    """DISK ``disk_id`` is saved into ``img`` (committed) at the epilog: VM committed, then
    memory. If the VM cannot be written, the image goes back to ``before`` (None: it is new and
    is deleted again), so a refused call leaves nothing behind."""
    template = vm.template.copy()
    disks = list(template.get_all("DISK"))
    disk = dict(disks[disk_id])  # type: ignore[arg-type]
    disk.update(SAVE="YES", SAVE_AS=str(img.id), SAVE_AS_SOURCE=img.source)
    disks[disk_id] = disk
    template.merge(Template([("DISK", d) for d in disks]))
    try:
        written = cloud.store.update_vm(  # type: ignore[attr-defined]
            replace(vm, template=template), expect=(vm.state, vm.lcm_state)
        )
        if not written:
            raise InternalError(f"[{method}] VM {vm.id} changed under this call; try again")
    except BaseException:
        _undo(cloud, img.id, before)
        raise
    vm.template = template
    cloud.pools.vms.changed(vm.id)


def _undo(cloud: Cloud, iid: int, before: Image | None) -> None:
    if before is None:
        cloud.store.delete_image(iid)  # type: ignore[attr-defined]
        cloud.pools.remove_image(iid)
    else:
        cloud.store.update_image(before)  # type: ignore[attr-defined]
        cloud.pools.put_image(before)
