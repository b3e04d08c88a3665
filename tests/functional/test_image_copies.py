"""Copies into the image repository with a real oned and the real one_image driver: progress
while a multi-GB sparse file copies, READY with size and checksum, a failed copy that leaves
nothing, and a copy cut short by kill -9 that is ERROR after the restart with nothing left."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import signal
import threading
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

import pyone
import pytest

from oned.images import INTERRUPTED
from tests.functional.oned_process import OnedProcess, alive
from tests.waiting import wait_for

SESSION = "oneadmin:onecloud"
LOCKED, READY, ERROR = 4, 1, 5
GB = 1024**3


def sparse(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes with a few data bytes at both ends."""
    with open(path, "wb") as f:
        f.write(b"onecloud image head")
        f.truncate(size)
        f.seek(size - 4)
        f.write(b"tail")
    return path


def info(oned, iid: int) -> ET.Element:
    """one.image.info's <IMAGE> as written on the wire (PROGRESS is onecloud's own)."""
    ok, body, code = xmlrpc.client.ServerProxy(oned.endpoint).one.image.info(SESSION, iid)
    assert ok, body
    return ET.fromstring(body)


def wait_state(oned, iid: int, states: set[int], timeout: float = 180) -> tuple[ET.Element, list]:
    """Poll until the image's STATE is one of ``states``; also the (DONE, TOTAL) seen while
    it was LOCKED."""
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = info(oned, iid)
        state = int(image.findtext("STATE"))
        done = image.findtext("PROGRESS/DONE")
        if state == LOCKED and done is not None:
            pair = (int(done), int(image.findtext("PROGRESS/TOTAL")))
            if not seen or seen[-1] != pair:
                seen.append(pair)
        if state in states:
            return image, seen
        time.sleep(0.02)
    raise AssertionError(f"image {iid} still {state} after {timeout} s; oned.log:\n{oned.log}")


def repository(oned) -> Path:
    return oned.location / "var" / "images"


def wait_empty(folder: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(folder.iterdir()):
        time.sleep(0.05)
    assert not any(folder.iterdir()), sorted(p.name for p in folder.iterdir())


@pytest.fixture
def admin(oned):
    return pyone.OneServer(oned.endpoint, session=SESSION)


def test_a_3_gb_copy_shows_progress_then_ready_with_size_and_checksum(oned, admin, tmp_path):
    """LOCKED with PROGRESS/DONE growing toward TOTAL, then READY, SIZE 3072, a sha256 CHECKSUM
    and the file in the repository, still sparse; the log says so under [ImM]."""
    big = sparse(tmp_path / "big.img", 3 * GB)
    iid = admin.image.allocate(f'NAME = big\nPATH = "{big}"', 1)
    image, seen = wait_state(oned, iid, {READY, ERROR})
    assert image.findtext("STATE") == str(READY), image.findtext("TEMPLATE/ERROR")
    assert len(seen) >= 2, f"PROGRESS while LOCKED: {seen}"
    dones = [done for done, _ in seen]
    assert dones == sorted(dones) and all(total == 3 * GB for _, total in seen)
    assert image.findtext("SIZE") == "3072" and image.find("PROGRESS") is None
    assert image.findtext("CHECKSUM").startswith("sha256:")
    copied = repository(oned) / str(iid)
    assert image.findtext("SOURCE") == str(copied)
    assert copied.stat().st_size == 3 * GB and copied.stat().st_blocks * 512 < 64 << 20
    assert f"[ImM][I]: Image {iid} copied into the repository (3072 MB, sha256:" in oned.log
    assert admin.image.info(iid).SIZE == 3072  # pyone reads the document too


def test_the_checksum_is_the_files_sha256_and_the_size_is_rounded_up(oned, admin, tmp_path):
    """1 MB and 1 byte of data: SIZE 2, CHECKSUM sha256 of exactly those bytes."""
    small = tmp_path / "small.img"
    small.write_bytes(os.urandom(2**20 + 1))
    iid = admin.image.allocate(f'NAME = small\nPATH = "{small}"', 1)
    image, _ = wait_state(oned, iid, {READY, ERROR})
    assert image.findtext("SIZE") == "2"
    assert image.findtext("CHECKSUM") == "sha256:" + hashlib.sha256(small.read_bytes()).hexdigest()


@pytest.fixture
def web(tmp_path):
    """An HTTP server on loopback serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_a_url_that_is_not_there_is_error_naming_it_and_leaves_no_file(oned, admin, web):
    """404: ERROR whose reason names the URL; nothing in the repository."""
    url = f"{web}/missing.img"
    iid = admin.image.allocate(f'NAME = missing\nPATH = "{url}"', 1)
    image, _ = wait_state(oned, iid, {READY, ERROR})
    assert image.findtext("STATE") == str(ERROR)
    reason = image.findtext("TEMPLATE/ERROR")
    assert url in reason and " : " in reason and "404" in reason
    assert f"Image {iid} could not be copied into the repository" in oned.log
    wait_empty(repository(oned))


def copying(oned, admin, path: Path) -> int:
    """Allocate an image of ``path`` and wait until its copy has written part of its file."""
    iid = admin.image.allocate(f'NAME = "{path.name}"\nPATH = "{path}"', 1)
    deadline = time.monotonic() + 60
    while not any(repository(oned).iterdir()) or not info(oned, iid).findtext("PROGRESS/DONE"):
        assert time.monotonic() < deadline, oned.log
        assert info(oned, iid).findtext("STATE") == str(LOCKED), oned.log
        time.sleep(0.02)
    return iid


def interrupted_and_cleaned(oned, iid: int) -> None:
    """After the restart: ERROR 'copy interrupted...', and what the copy left is removed."""
    image = info(oned, iid)
    assert image.findtext("STATE") == str(ERROR)
    assert image.findtext("TEMPLATE/ERROR").endswith(f" : {INTERRUPTED}")
    wait_empty(repository(oned))
    removed = f"Image {iid}: removed {repository(oned) / str(iid)}"
    wait_for(lambda: removed in oned.log, 10)


def gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_a_copy_cut_short_by_kill_9_is_error_after_the_restart_with_nothing_left(
    oned, admin, tmp_path
):
    """kill -9 of oned mid-copy, its driver frozen first so that it cannot clean up as it does
    when its input closes (a power cut): the partial file stays; the restarted oned marks the
    image ERROR and removes that file."""
    iid = copying(oned, admin, sparse(tmp_path / "huge.img", 24 * GB))
    drivers = oned.children("one_image")
    assert drivers
    for pid in drivers:
        os.kill(pid, signal.SIGSTOP)
    oned.stop(signal.SIGKILL)
    for pid in drivers:
        os.kill(pid, signal.SIGKILL)
    left = gone(drivers, 10)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "one_image outlived oned"
    assert any(repository(oned).iterdir())  # what the copy had written so far
    oned.start()
    interrupted_and_cleaned(oned, iid)


def test_a_copy_oned_stops_within_stop_grace_is_error_at_the_next_start(oned, admin, tmp_path):
    """SIGTERM: the copy gets STOP_GRACE (1 s) to finish, then the driver is stopped; the
    image stays LOCKED in the database and the next start ends it as an interrupted copy."""
    oned.stop()
    oned.set(STOP_GRACE=1).start()
    admin = pyone.OneServer(oned.endpoint, session=SESSION)
    iid = copying(oned, admin, sparse(tmp_path / "huge.img", 24 * GB))
    began = time.monotonic()
    assert oned.stop() == 0
    assert time.monotonic() - began < 8
    oned.start()
    interrupted_and_cleaned(oned, iid)


def test_without_its_driver_an_image_is_error_naming_why_instead_of_staying_locked(
    tmp_path,
):
    """IMAGE_MAD names an executable that is not there: oned starts, says so, and a copy
    fails at once with that reason."""
    oned = OnedProcess(tmp_path / "one", conf_extra='IMAGE_MAD = [ executable = "no_image" ]')
    oned.start()
    try:
        admin = pyone.OneServer(oned.endpoint, session=SESSION)
        path = sparse(tmp_path / "a.img", 2**20)
        iid = admin.image.allocate(f'NAME = a\nPATH = "{path}"', 1)
        image, _ = wait_state(oned, iid, {READY, ERROR}, timeout=30)
        reason = image.findtext("TEMPLATE/ERROR")
        assert image.findtext("STATE") == str(ERROR) and "executable no_image not found" in reason
        assert "IMAGE_MAD image (oned.conf line" in reason
    finally:
        oned.stop()
