"""images: the Image Manager (ImM) — puts image files into the repository through the image
driver and commits how each attempt ended.

The API commits an image LOCKED and hands it here; the manager sends the driver's request (``CP``
a PATH, ``MKFS`` an empty DATABLOCK, ``STAT`` a disk a VM saved; ``RM`` a file) and returns at
once. The reply commits READY with the file's size and checksum, or ERROR with the reason in the
template's ERROR and an ``RM`` of the destination, so no partial file stays in the repository.
``PROGRESS`` lines keep the bytes done in memory for one.image.info. An outcome the database
refuses is tried again until it is saved; a reply for an image deleted meanwhile is dropped.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from twisted.python.failure import Failure

from oned import log as onelog
from oned.api.cloud import Cloud
from oned.api.templates import repository
from oned.mad import DriverCancelled, DriverChannel, DriverStopping, Reply
from oned.records import Image
from oned.states import ImageState, VmState
from oned.store.errors import StoreError

MB = 1 << 20
RETRY = 2.0  # seconds before an outcome the database refused is tried again
# A copy of tens of GB from a slow web server may take hours; a STAT reads the whole file.
TIMEOUTS = {"CP": 24 * 3600.0, "MKFS": 3600.0, "STAT": 3600.0, "RM": 600.0}
INTERRUPTED = "copy interrupted: oned stopped before it finished"
NOT_SAVED = "the disk was not saved"
_SUCCESS = re.compile(r"([0-9]{1,20}) (sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class _Job:
    """How the log tells the outcome of one kind of request."""

    done: str
    failed: str


_JOBS = {
    "CP": _Job("copied into the repository", "could not be copied into the repository"),
    "MKFS": _Job("made in the repository", "could not be made in the repository"),
    "STAT": _Job("saved from its VM's disk", "was not saved from its VM's disk"),
}


class ImageManager:
    """Sends image work to the image driver (``channel``; None when it could not be started,
    ``problem`` saying why: every request then fails with that reason)."""

    def __init__(
        self,
        cloud: Cloud,
        channel: DriverChannel | None,
        reactor: Any,
        log: logging.Logger,
        problem: str = "",
    ):
        self.cloud = cloud
        self._channel = channel
        self._reactor = reactor
        self._log = log
        self._problem = problem or "the image driver (IMAGE_MAD) is not running"
        self.repository = repository(cloud)
        self._real_repository = os.path.realpath(self.repository)
        self._running: dict[int, str] = {}  # image id -> the request in flight for it
        if channel is not None:
            channel.on_progress = self.progress

    # -- what the API asks for ----------------------------------------------------------------

    def copy(self, img: Image) -> None:
        """Copy ``img.path`` (a front-end file or an http(s) URL) to ``img.source``."""
        self._send(img.id, "CP", img.path, img.source)

    def mkfs(self, img: Image) -> None:
        """Make ``img.source``: ``img.size`` MB, empty, with file system ``img.fstype``."""
        self._send(img.id, "MKFS", img.source, img.size, img.fstype or "raw")

    def saved(self, iid: int) -> None:
        """The VM saving a disk into image ``iid`` ended: check its file is there."""
        img = self._locked(iid, "STAT")
        if img is not None:
            self._send(iid, "STAT", img.source)

    def remove(self, img: Image) -> None:
        """After the image's row was deleted: stop its copy, then remove its file if (and only
        if) that lies inside the repository. A SOURCE an operator registered elsewhere stays."""
        if self._running.pop(img.id, None) is not None and self._channel is not None:
            self._channel.cancel(img.id)
        if not img.source:
            return
        if not self.inside(img.source):
            self._log.info(f"Image {img.id}: {img.source} is outside the repository: left there")
            return
        self._rm(img.id, img.source)

    def inside(self, path: str) -> bool:
        """Whether ``path`` names a file inside the repository (links and ``..`` resolved)."""
        real = os.path.realpath(path)
        return real != self._real_repository and real.startswith(self._real_repository + os.sep)

    def progress(self, oid: str, done: int, total: int) -> None:
        """A PROGRESS line: the bytes done so far (memory only; one.image.info shows them)."""
        img = self.cloud.pools.images.get(int(oid)) if oid.isascii() and oid.isdigit() else None
        if img is None or img.state != ImageState.LOCKED:
            return
        img.done, img.total = done, total
        self.cloud.pools.images.changed(img.id)

    # -- at start -----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """At start, before any request: an image stored LOCKED was being copied, made or saved
        when oned stopped. A VM still saving a disk into it keeps it LOCKED (``saved`` runs
        when the VM ends); a disk whose VM ended is checked with STAT; a copy or mkfs was cut
        short: ERROR, and its destination removed. (A driver that died alone re-runs what it
        had in flight: the channel sends it again.)"""
        saving = self._saving_vms()
        for img in [i for i in self.cloud.pools.images if i.state == ImageState.LOCKED]:
            vid = saving.get(img.id)
            if vid is not None:
                self._log.info(f"Image {img.id} stays LOCKED: VM {vid} will save a disk into it")
            elif not img.path and not img.fstype:
                self._log.info(f"Image {img.id}: its VM ended while oned was down; checking it")
                self.saved(img.id)
            else:
                action = "CP" if img.path else "MKFS"
                self._outcome(Reply(action, str(img.id), False, INTERRUPTED), img.id, action)

    def _saving_vms(self) -> dict[int, int]:
        """Image id -> the VM (neither DONE nor FAILED) with a DISK whose SAVE_AS names it."""
        found: dict[int, int] = {}
        for vm in self.cloud.pools.vms:
            if vm.state in (VmState.DONE, VmState.FAILED):
                continue
            for disk in vm.template.get_all("DISK"):
                save_as = disk.get("SAVE_AS", "") if isinstance(disk, dict) else ""
                if save_as.strip().isdigit():
                    found[int(save_as)] = vm.id
        return found

    # -- requests and their outcomes ----------------------------------------------------------

    def _send(self, iid: int, action: str, *args: object) -> None:
        if self._channel is None:
            failed = Reply(action, str(iid), False, self._problem)
            self._reactor.callLater(0, self._outcome, failed, iid, action)
            return
        self._running[iid] = action
        d = self._channel.request(action, iid, *args, timeout=TIMEOUTS[action])
        d.addCallbacks(
            self._replied, self._no_reply, callbackArgs=(iid, action), errbackArgs=(iid, action)
        )
        d.addErrback(self._bug, f"Image {iid}: handling the {action} outcome")

    def _replied(self, reply: Reply, iid: int, action: str) -> None:
        if self._running.get(iid) == action:
            del self._running[iid]
        self._outcome(reply, iid, action)

    def _no_reply(self, failure: Failure, iid: int, action: str) -> None:
        if failure.check(DriverCancelled):  # deleted, or oned stops: reconciled at start
            return
        self._replied(Reply(action, str(iid), False, failure.getErrorMessage()), iid, action)

    def _outcome(self, reply: Reply, iid: int, action: str) -> None:
        """Commit READY or ERROR for the reply to ``action``; tried again while the database
        refuses it."""
        img = self._locked(iid, action)
        if img is None:
            return
        found = _SUCCESS.fullmatch(reply.info) if reply.ok else None
        if reply.ok and found is None:
            reply = Reply(action, str(iid), False, f"unexpected answer: {reply.info[:200]!r}")
        if found is not None:
            new = _ready(img, int(found.group(1)), found.group(2))
        else:
            message = reply.info or "the image driver gave no reason"
            new = _failed(img, f"{NOT_SAVED}: {message}" if action == "STAT" else message,
                          self.cloud.now())  # fmt: skip
        try:
            self.cloud.store.update_image(new)  # type: ignore[attr-defined]
        except StoreError as exc:
            self._log.error(f"Image {iid}: {action} outcome not saved ({exc.message}); "
                            f"again in {RETRY:g} s")  # fmt: skip
            self._reactor.callLater(RETRY, self._outcome, reply, iid, action)
            return
        self.cloud.pools.put_image(new)
        self._tell(new, action, reply.info)
        made = self._channel is not None and new.state == ImageState.ERROR  # a driver ran
        if made and new.source and self.inside(new.source):
            self._rm(iid, new.source)

    def _tell(self, img: Image, action: str, info: str) -> None:
        job = _JOBS[action]
        if img.state == ImageState.READY:
            self._log.info(f"Image {img.id} {job.done} ({img.size} MB, {img.checksum})")
        else:
            self._log.error(f"Image {img.id} {job.failed}: {info}")

    def _locked(self, iid: int, action: str) -> Image | None:
        """The image a reply is for, while it still waits for one; None (logged) otherwise."""
        img = self.cloud.pools.images.get(iid)
        if img is None:
            self._log.debug(f"Image {iid}: {action} outcome dropped: the image was deleted")
        elif img.state != ImageState.LOCKED:
            self._log.debug(f"Image {iid}: {action} outcome dropped: the image is not LOCKED")
            return None
        return img

    def _rm(self, iid: int, source: str) -> None:
        if self._channel is None:
            self._log.error(f"Image {iid}: {source} left behind: {self._problem}")
            return
        d = self._channel.request("RM", iid, source, timeout=TIMEOUTS["RM"])
        d.addCallbacks(
            self._rm_replied, self._rm_failed, callbackArgs=(iid, source), errbackArgs=(iid, source)
        )
        d.addErrback(self._bug, f"Image {iid}: removing {source}")

    def _rm_replied(self, reply: Reply, iid: int, source: str) -> None:
        if reply.ok:
            self._log.info(f"Image {iid}: removed {source}")
        else:
            self._log.error(f"Image {iid}: {source} left behind: {reply.info or 'no reason'}")

    def _rm_failed(self, failure: Failure, iid: int, source: str) -> None:
        if failure.check(DriverCancelled) and not failure.check(DriverStopping):
            return  # a later RM of the same image took its place
        self._rm_replied(Reply("RM", str(iid), False, failure.getErrorMessage()), iid, source)

    def _bug(self, failure: Failure, what: str) -> None:
        self._log.error(f"{what} failed", exc_info=onelog.exc_info(failure))


def _ready(img: Image, size_bytes: int, checksum: str) -> Image:
    """``img`` READY with its file's size (MB, rounded up) and checksum; no ERROR left."""
    template = img.template.copy()
    template.remove("ERROR")
    size = -(-size_bytes // MB)
    return replace(img, size=size, checksum=checksum, state=ImageState.READY, done=0, total=0,
                   template=template)  # fmt: skip


def _failed(img: Image, message: str, now: int) -> Image:
    """``img`` in ERROR, the reason in its template.

    NOTE: OpenNebula's set_template_error_message writes ERROR = "<ctime> : <message>"."""
    template = img.template.copy()
    template.set("ERROR", f"{time.ctime(now)} : {message}")
    return replace(img, state=ImageState.ERROR, done=0, total=0, template=template)
