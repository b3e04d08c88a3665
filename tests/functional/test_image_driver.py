"""one_image as oned runs it: a real process on pipes copying files and URLs into a repository."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from drivers.protocol import encode_words
from tests.e2e.driver_process import DriverProcess

GB = 1 << 30


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def leftovers(repo: Path) -> list[str]:
    return sorted(path.name for path in repo.iterdir())


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def drivers(repo: Path) -> Iterator:
    """Start one_image processes (``--repository repo`` unless told); all closed after."""
    started: list[DriverProcess] = []

    def start(arguments: str | None = None) -> DriverProcess:
        driver = DriverProcess(
            "one_image", f"--repository {repo}" if arguments is None else arguments
        )
        started.append(driver)
        assert driver.init() == "INIT SUCCESS - -"
        return driver

    yield start
    for driver in started:
        driver.close()


def request(driver: DriverProcess, *words: object) -> str:
    """Send one request (its words encoded as oned encodes them) and wait for its reply."""
    driver.send(encode_words(words))
    return driver.reply(str(words[0]), words[1], timeout=120)


def progress_of(driver: DriverProcess, iid: int) -> list[tuple[int, int]]:
    """The (done, total) of every PROGRESS line the driver wrote for ``iid`` so far."""
    found = [line.split() for line in driver.seen if line.startswith(f"PROGRESS {iid} ")]
    return [(int(words[2]), int(words[3])) for words in found]


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


# ---------------------------------------------------------------------------------------------
# Local files


def test_a_sparse_multi_gb_file_is_copied_with_progress_and_its_sha256(drivers, repo, tmp_path):
    """3 GB, mostly holes: PROGRESS lines grow to the size, the checksum is the source's, the
    copy keeps the holes and nothing but the image is left."""
    src = tmp_path / "big.img"
    with open(src, "wb") as file:
        for offset in (0, GB + 12345, 3 * GB - 4096):
            file.seek(offset)
            file.write(os.urandom(4096))
    expected = sha256_of(src)
    driver = drivers()
    reply = request(driver, "CP", 7, src, repo / "7")
    assert reply == f"CP SUCCESS 7 {3 * GB} sha256:{expected}"
    steps = progress_of(driver, 7)
    assert steps, "no PROGRESS line for a copy of several seconds"
    assert all(total == 3 * GB for _, total in steps)
    dones = [done for done, _ in steps]
    assert dones == sorted(set(dones)) and 0 < dones[-1] <= 3 * GB
    copied = repo / "7"
    assert copied.stat().st_size == 3 * GB and copied.stat().st_blocks * 512 < 64 << 20
    assert leftovers(repo) == ["7"]


def test_a_copy_sent_again_over_a_stale_part_and_an_old_image_makes_it_anew(
    drivers, repo, tmp_path
):
    """After a crash oned re-issues CP: whatever .part or dst is there, dst ends up the source."""
    src = random_file(tmp_path / "disk.img", 3 << 20)
    repo.mkdir()
    (repo / "3.part").write_bytes(b"half of an old copy")
    (repo / "3").write_bytes(os.urandom(5 << 20))
    reply = request(drivers(), "CP", 3, src, repo / "3")
    assert reply == f"CP SUCCESS 3 {3 << 20} sha256:{sha256_of(src)}"
    assert (repo / "3").read_bytes() == src.read_bytes()
    assert leftovers(repo) == ["3"]


def test_copies_run_at_once_and_an_empty_file_is_an_image(drivers, repo, tmp_path):
    driver = drivers()
    sources = [random_file(tmp_path / f"s{i}", (i + 1) << 20) for i in range(3)]
    empty = tmp_path / "empty"
    empty.touch()
    for iid, src in enumerate([*sources, empty]):
        driver.send(encode_words(["CP", iid, src, repo / str(iid)]))
    for iid, src in enumerate([*sources, empty]):
        size = src.stat().st_size
        assert driver.reply("CP", iid, 60) == f"CP SUCCESS {iid} {size} sha256:{sha256_of(src)}"
    assert leftovers(repo) == ["0", "1", "2", "3"]


def test_a_path_that_is_missing_or_not_a_regular_file_is_refused_naming_it(drivers, repo, tmp_path):
    """A FIFO is refused without being opened (which would block), as are devices and folders."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    driver = drivers()
    missing = tmp_path / "no such.img"
    assert request(driver, "CP", 1, missing, repo / "1") == (
        f"CP FAILURE 1 cannot read {missing}: No such file or directory"
    )
    for iid, path in ((2, fifo), (3, Path("/dev/zero")), (4, tmp_path)):
        assert request(driver, "CP", iid, path, repo / str(iid)) == (
            f"CP FAILURE {iid} {path} is not a regular file"
        )
    assert request(driver, "CP", 5, "relative.img", repo / "5") == (
        "CP FAILURE 5 relative.img is neither an absolute path nor an http(s) URL"
    )
    assert leftovers(repo) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_path_is_refused_naming_it(drivers, repo, tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir()
    random_file(closed / "disk.img", 1024)
    closed.chmod(0)
    try:
        reply = request(drivers(), "CP", 1, closed / "disk.img", repo / "1")
    finally:
        closed.chmod(0o700)
    assert reply == f"CP FAILURE 1 cannot read {closed / 'disk.img'}: Permission denied"


def test_a_destination_outside_the_repository_is_refused(drivers, repo, tmp_path):
    """Defence in depth: a confused oned cannot make the driver write or delete elsewhere."""
    src = random_file(tmp_path / "disk.img", 1024)
    repo.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "link").symlink_to(outside)
    driver = drivers()
    bad = [tmp_path / "7", f"{repo}/../7", repo / "link" / "7", repo, "images/7"]
    for iid, dst in enumerate(bad):
        reply = request(driver, "CP", iid, src, dst)
        assert reply.startswith(f"CP FAILURE {iid} {dst} is not "), reply
    victim = random_file(outside / "keep", 10)
    for action in ("RM", "STAT"):
        reply = request(driver, action, 9, repo / "link" / "keep")
        assert "is not inside the image repository" in reply
    assert victim.exists() and leftovers(outside) == ["keep"]
    assert leftovers(tmp_path) == ["disk.img", "images", "outside"]


def test_a_cancelled_copy_stops_and_leaves_no_part(drivers, repo, tmp_path):
    """DRIVER_CANCEL mid-copy: no reply, no .part, no image; an RM then finds nothing to do."""
    src = tmp_path / "big.img"
    with open(src, "wb") as file:
        file.truncate(8 * GB)
    driver = drivers()
    driver.send(encode_words(["CP", 4, src, repo / "4"]))
    driver.wait_line(lambda line: line.startswith("PROGRESS 4 "), timeout=30)
    driver.send("DRIVER_CANCEL 4")
    driver.wait_line(lambda line: line == "LOG - 4 Driver command for 4 cancelled")
    wait_until(lambda: leftovers(repo) == [])
    assert request(driver, "RM", 4, repo / "4") == "RM SUCCESS 4 -"
    with pytest.raises(AssertionError):
        driver.reply("CP", 4, timeout=1)


# ---------------------------------------------------------------------------------------------
# A full disk


@pytest.fixture
def small_repo(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted as the repository (root only), always unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the full disk needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("how", ["file", "url"])
def test_a_full_disk_fails_the_copy_naming_the_image_and_leaves_nothing(
    drivers, small_repo, tmp_path, how, web
):
    src = random_file(tmp_path / "www" / "disk.img", 20 << 20)
    driver = drivers(f"--repository {small_repo}")
    where = f"{web.url}/disk.img" if how == "url" else src
    reply = request(driver, "CP", 7, where, small_repo / "7")
    assert reply == f"CP FAILURE 7 No space left on device writing {small_repo / '7'}"
    assert leftovers(small_repo) == []


# ---------------------------------------------------------------------------------------------
# URLs


class Handler(http.server.SimpleHTTPRequestHandler):
    """Files of the folder, plus ``/moved`` and ``/to-ftp`` (redirects), ``/slow`` (a body of
    unknown length in three pieces 0.7 s apart), ``/endless`` (pieces until the client goes
    away) and ``/stall`` (1 MiB of the 8 it announces, then nothing for 20 s)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path in ("/moved", "/to-ftp"):
            self.send_response(302)
            where = "/disk.img" if self.path == "/moved" else "ftp://127.0.0.1/disk.img"
            self.send_header("Location", where)
            self.end_headers()
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", str(8 << 20))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(b"\1" * (1 << 20))
                self.wfile.flush()
                time.sleep(20)
        elif self.path in ("/slow", "/endless"):
            self.send_response(200)
            self.end_headers()
            pieces = 3 if self.path == "/slow" else 10_000
            with contextlib.suppress(OSError):
                for index in range(pieces):
                    self.wfile.write(bytes([index + 1]) * (1 << 20))
                    self.wfile.flush()
                    time.sleep(0.7)
        else:
            super().do_GET()


class Web:
    def __init__(self, folder: Path, context: ssl.SSLContext | None = None) -> None:
        folder.mkdir(exist_ok=True)
        handler = partial(Handler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    """http.server on loopback serving tmp_path/www."""
    server = Web(tmp_path / "www")
    yield server
    server.close()


def test_an_http_url_is_copied_following_redirects(drivers, repo, tmp_path, web):
    src = random_file(tmp_path / "www" / "disk.img", 6 << 20)
    driver = drivers()
    for iid, path in ((1, "disk.img"), (2, "moved")):
        reply = request(driver, "CP", iid, f"{web.url}/{path}", repo / str(iid))
        assert reply == f"CP SUCCESS {iid} {6 << 20} sha256:{sha256_of(src)}"
        assert (repo / str(iid)).read_bytes() == src.read_bytes()
    assert leftovers(repo) == ["1", "2"]


def test_a_reply_without_length_reports_progress_with_total_zero(drivers, repo, web):
    driver = drivers()
    body = b"".join(bytes([index + 1]) * (1 << 20) for index in range(3))
    reply = request(driver, "CP", 5, f"{web.url}/slow", repo / "5")
    assert reply == f"CP SUCCESS 5 {3 << 20} sha256:{hashlib.sha256(body).hexdigest()}"
    steps = progress_of(driver, 5)
    assert steps and all(total == 0 and done > 0 for done, total in steps)


def test_a_redirect_to_another_scheme_is_refused(drivers, repo, tmp_path, web):
    random_file(tmp_path / "www" / "disk.img", 1024)
    reply = request(drivers(), "CP", 3, f"{web.url}/to-ftp", repo / "3")
    assert reply.startswith(f"CP FAILURE 3 {web.url}/to-ftp: HTTP 302 ")
    assert "to ftp://127.0.0.1/disk.img (refused: not http or https)" in reply
    assert leftovers(repo) == []


def test_a_driver_told_to_finish_mid_copy_leaves_no_part(drivers, repo, web):
    """FINALIZE (oned stopping) while a copy runs: the driver ends and removes its .part."""
    driver = drivers()
    driver.send(encode_words(["CP", 8, f"{web.url}/endless", repo / "8"]))
    driver.wait_line(lambda line: line.startswith("PROGRESS 8 "), timeout=30)
    assert driver.close() == 0
    assert leftovers(repo) == []


def test_a_url_that_404s_fails_naming_the_url_and_the_status(drivers, repo, web):
    reply = request(drivers(), "CP", 6, f"{web.url}/missing.img", repo / "6")
    assert reply == f"CP FAILURE 6 {web.url}/missing.img: HTTP 404 File not found"
    assert leftovers(repo) == []


def test_a_cancelled_download_stops_and_leaves_no_part(drivers, repo, web):
    driver = drivers()
    driver.send(encode_words(["CP", 8, f"{web.url}/endless", repo / "8"]))
    driver.wait_line(lambda line: line.startswith("PROGRESS 8 "), timeout=30)
    assert leftovers(repo) == ["8.part"]
    driver.send("DRIVER_CANCEL 8")
    wait_until(lambda: leftovers(repo) == [])


def test_a_cancel_stops_a_download_whose_server_sends_nothing(drivers, repo, web):
    driver = drivers()
    driver.send(encode_words(["CP", 9, f"{web.url}/stall", repo / "9"]))
    wait_until(lambda: (repo / "9.part").exists() and (repo / "9.part").stat().st_size > 0)
    started = time.monotonic()
    driver.send("DRIVER_CANCEL 9")
    wait_until(lambda: leftovers(repo) == [], timeout=5)
    assert time.monotonic() - started < 2


def test_a_server_that_stops_sending_fails_the_copy_after_the_timeout(drivers, repo, web):
    driver = drivers(f"--repository {repo} --timeout 1")
    reply = request(driver, "CP", 10, f"{web.url}/stall", repo / "10")
    assert reply == f"CP FAILURE 10 {web.url}/stall: no data for 1 s"
    assert leftovers(repo) == []


@pytest.fixture
def tls_web(tmp_path: Path) -> Iterator[tuple[Web, Path]]:
    """An https server with a self-signed certificate for 127.0.0.1, and that certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Web(tmp_path / "www", context)
    yield server, cert
    server.close()


def test_https_verifies_the_certificate_unless_given_its_ca(drivers, repo, tmp_path, tls_web):
    server, cert = tls_web
    src = random_file(tmp_path / "www" / "disk.img", 1 << 20)
    url = f"{server.url}/disk.img"
    reply = request(drivers(), "CP", 1, url, repo / "1")
    assert reply.startswith(f"CP FAILURE 1 {url}: ") and "CERTIFICATE_VERIFY_FAILED" in reply
    trusting = drivers(f"--repository {repo} --cafile {cert}")
    assert request(trusting, "CP", 2, url, repo / "2") == (
        f"CP SUCCESS 2 {1 << 20} sha256:{sha256_of(src)}"
    )
    assert leftovers(repo) == ["2"]


# ---------------------------------------------------------------------------------------------
# MKFS, STAT, RM


def test_mkfs_raw_is_a_sparse_file_of_zeros(drivers, repo):
    reply = request(drivers(), "MKFS", 2, repo / "2", 64, "raw")
    zeros = hashlib.sha256(bytes(64 << 20)).hexdigest()
    assert reply == f"MKFS SUCCESS 2 {64 << 20} sha256:{zeros}"
    made = repo / "2"
    assert made.stat().st_size == 64 << 20 and made.stat().st_blocks == 0
    assert leftovers(repo) == ["2"]


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="mkfs.ext4 is not installed")
def test_mkfs_ext4_holds_a_file_system(drivers, repo):
    reply = request(drivers(), "MKFS", 3, repo / "3", 32, "ext4")
    made = repo / "3"
    assert reply == f"MKFS SUCCESS 3 {32 << 20} sha256:{sha256_of(made)}"
    with open(made, "rb") as image:
        image.seek(1024 + 56)
        assert image.read(2) == b"\x53\xef"  # the ext2/3/4 superblock magic
    assert leftovers(repo) == ["3"]


def test_mkfs_refuses_an_unknown_format_and_a_bad_size(drivers, repo):
    driver = drivers()
    assert request(driver, "MKFS", 4, repo / "4", 32, "ntfs").startswith(
        "MKFS FAILURE 4 format 'ntfs' is not one of ext2, ext3, ext4"
    )
    assert request(driver, "MKFS", 5, repo / "5", "-1", "raw") == (
        "MKFS FAILURE 5 size '-1' is not a positive number of MB"
    )
    assert leftovers(repo) == []


def test_stat_gives_size_and_checksum_or_says_why_not(drivers, repo, tmp_path):
    driver = drivers()
    saved = random_file(repo / "9", 2 << 20)
    assert (
        request(driver, "STAT", 9, saved) == f"STAT SUCCESS 9 {2 << 20} sha256:{sha256_of(saved)}"
    )
    assert request(driver, "STAT", 10, repo / "10") == (
        f"STAT FAILURE 10 cannot read {repo / '10'}: No such file or directory"
    )
    (repo / "11").symlink_to(saved)
    assert request(driver, "STAT", 11, repo / "11") == (
        f"STAT FAILURE 11 {repo / '11'} is not a regular file"
    )


def test_rm_removes_the_image_and_its_part_and_is_idempotent(drivers, repo):
    driver = drivers()
    random_file(repo / "5", 1024)
    random_file(repo / "5.part", 1024)
    random_file(repo / "6", 1024)
    assert request(driver, "RM", 5, repo / "5") == "RM SUCCESS 5 -"
    assert request(driver, "RM", 5, repo / "5") == "RM SUCCESS 5 -"
    assert leftovers(repo) == ["6"]


def test_the_repository_is_created_0750_and_odd_names_cross_the_wire(drivers, tmp_path):
    """A repository path with a space and non-ASCII letters, given as oned gives it (quoted)."""
    repo = tmp_path / "var" / "mes images é"
    driver = drivers(f"--repository '{repo}'")
    assert repo.is_dir() and (repo.stat().st_mode & 0o777) & ~0o750 == 0
    src = random_file(tmp_path / "disque n°1.img", 1000)
    reply = request(driver, "CP", 1, src, repo / "1")
    assert reply == f"CP SUCCESS 1 1000 sha256:{sha256_of(src)}"
