"""VM disks that name images of the repository: DISK = [ IMAGE = ... ] / [ IMAGE_ID = n ]
resolved at one.vm.allocate (OpenNebula 2.0's ``Image::disk_attribute``), and a disk saved
into an image when the VM shuts down (``one.vm.savedisk``, modern ``one.vm.disksaveas``).
"""

from __future__ import annotations

from oned.api.cloud import Caller, Cloud
from oned.errors import BadCall


def savedisk(cloud: Cloud, caller: Caller, vid: int, disk_id: int, image_id: int) -> int:
    """2.0's ``one.vm.savedisk``: disk ``disk_id`` of VM ``vid`` is written into image
    ``image_id`` (the caller's, INIT) when the VM shuts down. Returns ``vid``."""
    raise BadCall("[one.vm.savedisk] not implemented yet")


def disksaveas(
    cloud: Cloud, caller: Caller, vid: int, disk_id: int, name: str, type_: str, snap_id: int
) -> int:
    """Modern ``one.vm.disksaveas``: a new image ``name`` of the caller's that disk ``disk_id``
    of VM ``vid`` is saved into at shutdown. Returns the new image's id."""
    raise BadCall("[one.vm.disksaveas] not implemented yet")
