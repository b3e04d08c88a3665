"""The image manager on a fake image driver channel, virtual time and a real SQLite store: the
requests it sends, the states each reply commits (store and pool), progress, late replies,
removal, reconciliation at start and an outcome the database refuses at first."""

from __future__ import annotations

import logging
import os
import time

import pytest
from twisted.internet import defer, task

from oned import images as images_module
from oned.api.cloud import Cloud
from oned.api.templates import image_source
from oned.config import load_config
from oned.images import INTERRUPTED, ImageManager
from oned.mad import DriverCancelled, DriverTimeout, Reply
from oned.pools import Pools
from oned.records import Image, User, Vm
from oned.states import ImageState, ImageType, VmState
from oned.store import Store
from oned.store.errors import StoreError
from oned.template import Template, parse

NOW = 1_700_000_000
SUM = "sha256:" + "ab" * 32
GB3 = 3 * 1024**3


class FakeChannel:
    """Records requests; ``answer`` fires one with a Reply, ``fail`` with an exception. cancel
    errbacks the id's requests with DriverCancelled, as DriverChannel.cancel does."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.pending: dict[tuple[str, int], defer.Deferred] = {}
        self.cancelled: list[int] = []
        self.on_progress = None

    def request(self, action, oid, *args, timeout):
        self.sent.append(" ".join([action, str(oid), *map(str, args)]))
        self.pending[(action, oid)] = d = defer.Deferred()
        return d

    def answer(self, action: str, oid: int, ok: bool = True, info: str = "") -> None:
        self.pending.pop((action, oid)).callback(Reply(action, str(oid), ok, info))

    def fail(self, action: str, oid: int, exc: Exception) -> None:
        self.pending.pop((action, oid)).errback(exc)

    def cancel(self, oid) -> None:
        self.cancelled.append(oid)
        for key in [k for k in self.pending if k[1] == oid]:
            self.pending.pop(key).errback(DriverCancelled(f"{key[0]} {oid} cancelled"))


class Shell:
    def __init__(self, tmp_path, caplog, channel: FakeChannel | None = None, problem: str = ""):
        caplog.set_level(logging.DEBUG)
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.repo = tmp_path / "images"
        self.repo.mkdir()
        config = load_config(f'DB = [ BACKEND = sqlite ]\nIMAGE_REPOSITORY_PATH = "{self.repo}"\n')
        self.store = Store.open(config.db, str(tmp_path / "one.db"), logging.getLogger("t"))
        self.pools = Pools()
        self.store.insert_user(User(0, "oneadmin", "x"))
        self.pools.put_user(User(0, "oneadmin", "x"))
        self.cloud = Cloud(self.pools, self.store, config, logging.getLogger("t"),
                           clock=self.clock.seconds)  # fmt: skip
        self.channel = channel
        self.images = ImageManager(self.cloud, channel, self.clock,
                                   logging.getLogger("one.ImM"), problem)  # fmt: skip

    def locked(self, iid: int, path: str = "/data/ttylinux.img", **fields) -> Image:
        """Image ``iid``, committed LOCKED with its source in the repository, as the API does."""
        img = Image(iid, 0, f"img{iid}", ImageType.OS, False, False, NOW, Template(),
                    source=image_source(self.cloud, iid), path=path, state=ImageState.LOCKED,
                    **fields)  # fmt: skip
        self.store.insert_image(img)
        self.pools.put_image(img)
        return img

    def image(self, iid: int) -> Image:
        return self.pools.images.get(iid)

    def stored(self, iid: int) -> Image | None:
        return next((i for i in self.store.load_images() if i.id == iid), None)


@pytest.fixture
def shell(tmp_path, caplog):
    s = Shell(tmp_path, caplog, FakeChannel())
    yield s
    s.store.close()


def test_a_copy_sends_cp_shows_progress_in_memory_and_commits_ready(shell, caplog):
    """CP iid PATH SOURCE; PROGRESS changes memory only; the reply commits READY, 3072 MB."""
    img = shell.locked(0)
    shell.images.copy(img)
    assert shell.channel.sent == [f"CP 0 /data/ttylinux.img {shell.repo}/0"]
    assert shell.channel.on_progress == shell.images.progress
    before = shell.pools.images.xml(shell.image(0))
    shell.images.progress("0", 1024**3, GB3)
    assert (shell.image(0).done, shell.image(0).total) == (1024**3, GB3)
    assert shell.pools.images.xml(shell.image(0)) != before  # the cached XML was dropped
    assert shell.stored(0).state == ImageState.LOCKED and shell.stored(0).done == 0
    shell.channel.answer("CP", 0, True, f"{GB3} {SUM}")
    for img in (shell.image(0), shell.stored(0)):
        assert (img.state, img.size, img.checksum) == (ImageState.READY, 3072, SUM)
    assert (shell.image(0).done, shell.image(0).total) == (0, 0)
    assert f"Image 0 copied into the repository (3072 MB, {SUM})" in caplog.text


def test_a_size_is_rounded_up_to_whole_mb_and_an_old_error_goes(shell):
    """1 byte is 1 MB; a template ERROR of an earlier attempt leaves with READY."""
    img = shell.locked(0)
    img.template.set("ERROR", "old")
    shell.images.copy(img)
    shell.channel.answer("CP", 0, True, f"1 {SUM}")
    assert shell.image(0).size == 1 and "ERROR" not in shell.stored(0).template


def test_a_failed_copy_is_error_with_the_reason_and_its_destination_removed(shell, caplog):
    """ERROR = "<ctime> : <message>" (OpenNebula's format), then RM of the destination."""
    img = shell.locked(0, path="/data/missing.img")
    shell.images.copy(img)
    reason = "cannot read /data/missing.img: No such file or directory"
    shell.channel.answer("CP", 0, False, reason)
    for found in (shell.image(0), shell.stored(0)):
        assert found.state == ImageState.ERROR
        assert found.template.get("ERROR") == f"{time.ctime(NOW)} : {reason}"
    assert shell.channel.sent[-1] == f"RM 0 {shell.repo}/0"
    assert f"Image 0 could not be copied into the repository: {reason}" in caplog.text
    shell.channel.answer("RM", 0)
    assert f"Image 0: removed {shell.repo}/0" in caplog.text


def test_no_answer_in_time_is_a_failure_naming_the_timeout(shell):
    """DriverTimeout: ERROR with its message."""
    shell.images.copy(shell.locked(0))
    shell.channel.fail("CP", 0, DriverTimeout("CP 0: no answer from image in 86400 s"))
    assert "no answer from image" in shell.image(0).template.get("ERROR")


def test_a_success_without_size_and_checksum_is_a_failure(shell):
    """The reply must be '<bytes> sha256:<hex>'; anything else is not taken for a copy."""
    shell.images.copy(shell.locked(0))
    shell.channel.answer("CP", 0, True, "done")
    assert shell.image(0).state == ImageState.ERROR
    assert "unexpected answer: 'done'" in shell.image(0).template.get("ERROR")


def test_mkfs_makes_an_empty_datablock(shell, caplog):
    """MKFS iid SOURCE size_mb fstype; READY with the size the driver measured."""
    img = shell.locked(0, path="", size=512, fstype="ext4")
    shell.images.mkfs(img)
    assert shell.channel.sent == [f"MKFS 0 {shell.repo}/0 512 ext4"]
    shell.channel.answer("MKFS", 0, True, f"{512 * 1024**2} {SUM}")
    assert (shell.stored(0).state, shell.stored(0).size) == (ImageState.READY, 512)
    assert "Image 0 made in the repository (512 MB" in caplog.text


def test_saved_checks_the_disk_and_a_missing_one_is_error(shell, caplog):
    """STAT after the VM ended: READY when the file is there, else 'the disk was not saved'."""
    shell.locked(0, path="")
    shell.locked(1, path="")
    shell.images.saved(0)
    shell.images.saved(1)
    assert shell.channel.sent == [f"STAT 0 {shell.repo}/0", f"STAT 1 {shell.repo}/1"]
    shell.channel.answer("STAT", 0, True, f"{2**20} {SUM}")
    shell.channel.answer("STAT", 1, False, f"{shell.repo}/1: No such file or directory")
    assert shell.stored(0).state == ImageState.READY
    assert shell.stored(1).state == ImageState.ERROR
    assert " : the disk was not saved: " in shell.stored(1).template.get("ERROR")
    assert "Image 0 saved from its VM's disk (1 MB" in caplog.text


def test_a_reply_for_an_image_deleted_meanwhile_is_dropped(shell, caplog):
    """The row is gone: nothing is written back, a debug line says why."""
    shell.images.copy(shell.locked(0))
    shell.store.delete_image(0)
    shell.pools.remove_image(0)
    shell.channel.answer("CP", 0, True, f"{GB3} {SUM}")
    assert shell.stored(0) is None and shell.image(0) is None
    assert "Image 0: CP outcome dropped: the image was deleted" in caplog.text
    shell.images.progress("0", 1, 2)  # no image: nothing to show it on


def test_remove_cancels_the_copy_and_removes_the_file_inside_the_repository(shell, caplog):
    """DRIVER_CANCEL of the image's copy, then RM of its source; the cancelled copy is no
    failure (nothing is committed for a deleted image)."""
    img = shell.locked(0)
    shell.images.copy(img)
    shell.store.delete_image(0)
    shell.pools.remove_image(0)
    shell.images.remove(img)
    assert shell.channel.cancelled == [0]
    assert shell.channel.sent[-1] == f"RM 0 {shell.repo}/0"
    shell.channel.answer("RM", 0, False, "Permission denied")
    assert f"Image 0: {shell.repo}/0 left behind: Permission denied" in caplog.text
    assert "could not be copied" not in caplog.text


def test_remove_never_touches_a_source_outside_the_repository(shell, tmp_path, caplog):
    """A registered SOURCE elsewhere, a '..' path and a link out of the repository stay."""
    (tmp_path / "elsewhere").write_text("x")
    os.symlink(tmp_path / "elsewhere", shell.repo / "link")
    sources = ["/srv/images/ttylinux.img", f"{shell.repo}/../elsewhere", f"{shell.repo}/link",
               str(shell.repo)]  # fmt: skip
    for iid, source in enumerate(sources):
        img = Image(iid, 0, f"i{iid}", ImageType.OS, False, False, NOW, Template(),
                    source=source, state=ImageState.READY)  # fmt: skip
        shell.images.remove(img)
    assert shell.channel.sent == [] and shell.channel.cancelled == []
    assert "/srv/images/ttylinux.img is outside the repository: left there" in caplog.text


def test_reconcile_keeps_an_image_a_vm_saves_into_and_ends_an_interrupted_copy(shell):
    """At start: LOCKED with a VM whose DISK has SAVE_AS: stays; LOCKED with a PATH and no VM
    (the copy was cut short): ERROR 'copy interrupted...' and RM; a saved disk whose VM ended
    (or FAILED) is checked with STAT."""
    shell.locked(0, path="")  # VM 7 saves into it
    shell.locked(1)  # a copy oned stopped
    shell.locked(2, path="")  # its VM ended while oned was down
    shell.locked(3, path="")  # its VM FAILED
    shell.locked(4, path="", size=10, fstype="raw")  # an interrupted mkfs
    for vid, iid, state in ((7, 0, VmState.ACTIVE), (8, 3, VmState.FAILED)):
        disk = f'DISK = [ SOURCE = "/x", SAVE = "YES", SAVE_AS = "{iid}" ]'
        shell.pools.vms.put(Vm(vid, 0, f"vm{vid}", parse(disk), state=state))
    shell.images.reconcile()
    assert shell.stored(0).state == ImageState.LOCKED
    for iid in (1, 4):
        assert shell.stored(iid).state == ImageState.ERROR
        assert shell.stored(iid).template.get("ERROR").endswith(f" : {INTERRUPTED}")
    assert sorted(shell.channel.sent) == sorted([
        f"RM 1 {shell.repo}/1", f"STAT 2 {shell.repo}/2", f"STAT 3 {shell.repo}/3",
        f"RM 4 {shell.repo}/4",
    ])  # fmt: skip


def test_an_outcome_the_database_refuses_is_tried_again_until_saved(shell, caplog):
    """PostgreSQL restarting: the READY is not lost, only late; memory follows the store."""
    shell.images.copy(shell.locked(0))
    real, refusals = shell.store.update_image, [2]

    def restarting(image):
        if refusals[0]:
            refusals[0] -= 1
            raise StoreError("postgresql://db: the server is shutting down")
        return real(image)

    shell.store.update_image = restarting
    shell.channel.answer("CP", 0, True, f"{GB3} {SUM}")
    assert shell.image(0).state == ImageState.LOCKED == shell.stored(0).state
    assert "Image 0: CP outcome not saved (postgresql://db: the server is shutting down)" in (
        caplog.text
    )
    shell.clock.advance(images_module.RETRY)
    assert shell.image(0).state == ImageState.LOCKED  # refused a second time
    shell.clock.advance(images_module.RETRY)
    assert shell.image(0).state == ImageState.READY == shell.stored(0).state


def test_without_a_driver_images_fail_with_the_reason_instead_of_staying_locked(tmp_path, caplog):
    """IMAGE_MAD could not be started: the copy fails (after the API answered) naming why."""
    problem = "IMAGE_MAD image (oned.conf line 3): executable one_image not found in /x or PATH"
    shell = Shell(tmp_path, caplog, None, problem)
    try:
        shell.images.copy(shell.locked(0))
        assert shell.image(0).state == ImageState.LOCKED
        shell.clock.advance(0)
        assert shell.stored(0).state == ImageState.ERROR
        assert shell.stored(0).template.get("ERROR").endswith(f" : {problem}")
        assert "left behind" not in caplog.text  # no driver ran: nothing was made
    finally:
        shell.store.close()
