"""one_tm answers a transfer sent again after a crash (issue 11, finding 3 and "Partial files").

oned re-issues the transfer that was in flight when it or the driver died; every command must
then end as if it had run once. The ssh set runs here on "hosts" that are this machine
(``HostsHere``, as in test_tm.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.protocol import Request
from drivers.runner import RunResult, local_names
from drivers.tm import Context, transfer
from tests.unit.test_tm import HostsHere, Recorder
from tests.unit.test_tm import image as image  # the fixture, as a re-export


class Killed(BaseException):
    """The driver process dying: nothing after it runs, not even a rollback."""


class DiesInCp(HostsHere):
    """A pool whose driver is killed while ``cp`` has written half of the image."""

    def run(self, host, argv, *, timeout, input=None, on_cancel=None):
        if argv[0] == "cp":
            src, target = Path(argv[-2]), Path(argv[-1])
            target.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
            self.run = self.dead  # type: ignore[method-assign]
            raise Killed()
        return super().run(host, argv, timeout=timeout, input=input, on_cancel=on_cancel)

    def dead(self, host, argv, **kwargs) -> RunResult:
        raise Killed()


class Recording(HostsHere):
    """A pool that keeps every command it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[list[str]] = []

    def run(self, host, argv, *, timeout, input=None, on_cancel=None):
        self.commands.append(list(argv))
        return super().run(host, argv, timeout=timeout, input=input, on_cancel=on_cancel)


def ssh_transfer(tmp_path: Path, pool: HostsHere, lines: list[str]) -> str:
    script = tmp_path / "transfer.0.prolog"
    script.write_text("\n".join(lines) + "\n")
    ctx = Context("ssh", local_names(), pool=pool)  # type: ignore[arg-type]
    return transfer(ctx, Request("TRANSFER", "7", (str(script),)), Recorder().log)


def test_a_copy_killed_mid_way_leaves_no_partial_target_and_the_reissue_completes_it(
    tmp_path, image
):
    """Finding 3 of issue 11: a copy on a host wrote its target in place, so a driver killed
    mid-way left half an image under the disk's own name. Now the half is ``disk.0.part``,
    and the re-issued CLONE replaces it with the whole image."""
    (tmp_path / "h1").mkdir()
    disk = tmp_path / "h1" / "7" / "images" / "disk.0"
    clone = [f"CLONE h1:{image} h1:{disk}"]
    with pytest.raises(Killed):
        ssh_transfer(tmp_path, DiesInCp(), clone)
    assert not disk.exists()
    assert ssh_transfer(tmp_path, HostsHere(), clone) == "-"
    assert disk.read_bytes() == image.read_bytes()
    assert not disk.with_name("disk.0.part").exists()


def test_a_reissued_clone_whose_target_is_whole_copies_nothing(tmp_path, image):
    """Idempotent CLONE: the target there is as big as the source, so it is done."""
    disk = tmp_path / "h1" / "7" / "images" / "disk.0"
    clone = [f"CLONE {image} h1:{disk}"]
    assert ssh_transfer(tmp_path, HostsHere(), clone) == "-"
    again = Recording()
    assert ssh_transfer(tmp_path, again, clone) == "-"
    assert not [argv for argv in again.commands if argv[:2] == ["sh", "-c"] and "cat" in argv[2]]
    assert disk.read_bytes() == image.read_bytes()


def test_a_clone_onto_a_shorter_leftover_copies_the_image_again(tmp_path, image):
    """A target smaller than its source (not made by this driver) is not counted as done."""
    disk = tmp_path / "h1" / "7" / "images" / "disk.0"
    disk.parent.mkdir(parents=True)
    disk.write_bytes(b"left over")
    disk.with_name("disk.0.part").write_bytes(b"half")
    assert ssh_transfer(tmp_path, HostsHere(), [f"CLONE {image} h1:{disk}"]) == "-"
    assert disk.read_bytes() == image.read_bytes()
    assert not disk.with_name("disk.0.part").exists()


def test_a_reissued_move_whose_source_is_gone_and_destination_is_there_succeeds(tmp_path, image):
    """The MV of a migration or a stop ran before the crash; sent again, it is done."""
    src, dst = tmp_path / "h1" / "7" / "images", tmp_path / "h2" / "7" / "images"
    dst.mkdir(parents=True)
    (dst / "disk.0").write_bytes(image.read_bytes())
    assert ssh_transfer(tmp_path, HostsHere(), [f"MV h1:{src} h2:{dst}"]) == "-"
    assert (dst / "disk.0").read_bytes() == image.read_bytes()


def test_a_reissued_delete_of_what_is_gone_succeeds(tmp_path):
    """The epilog's DELETE ran before the crash; sent again, it succeeds."""
    gone = tmp_path / "h1" / "7" / "images"
    assert ssh_transfer(tmp_path, HostsHere(), [f"DELETE h1:{gone}"]) == "-"


def test_a_reissued_mkimage_makes_the_image_anew_not_on_what_the_first_one_left(tmp_path):
    """A raw MKIMAGE killed after writing (or a file of another size there) is made again:
    the re-issued one gives an empty disk of the size asked for, not the old bytes."""
    disk = tmp_path / "h1" / "7" / "images" / "disk.1"
    disk.parent.mkdir(parents=True)
    disk.write_bytes(b"\xff" * (3 << 20))
    assert ssh_transfer(tmp_path, HostsHere(), [f"MKIMAGE 1 raw h1:{disk}"]) == "-"
    assert disk.read_bytes() == bytes(1 << 20)
