"""oneimage and onevm saveas against a real oned, its image driver and real files (issue 13)."""

from __future__ import annotations

import hashlib
import http.server
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.functional.oned_process import OnedProcess

GIB = 1024**3
ONEIMAGE = "import sys, cli.oneimage as m; sys.exit(m.main())"
LIST_HEADER = ["ID", "USER", "NAME", "TYPE", "REGTIME", "PUB", "PER", "STAT", "#VMS"]


def ok(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def failed(result: subprocess.CompletedProcess) -> str:
    """The one Error: line of a command that failed."""
    assert result.returncode == 255, result.stdout
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    return result.stderr


def write_template(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.one"
    path.write_text(text)
    return str(path)


def a_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows(oned: OnedProcess, *argv: str, env: dict[str, str] | None = None) -> list[list[str]]:
    """``oneimage list`` as cells, checking the header; REGTIME's 4 words are joined."""
    out = ok(oned.run_cli("oneimage", "list", *argv, env=env))
    assert out[0].split() == LIST_HEADER
    cells = [line.split() for line in out[1:]]
    return [[*r[:4], " ".join(r[4:8]), *r[8:]] for r in cells]


def show(oned: OnedProcess, image: str) -> dict[str, str]:
    """The ``NAME : value`` fields of ``oneimage show``."""
    fields = {}
    for line in ok(oned.run_cli("oneimage", "show", image)):
        label, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields[label.strip()] = value.strip()
    return fields


def repository(oned: OnedProcess) -> Path:
    return oned.location / "var" / "images"


def repository_files(oned: OnedProcess) -> list[str]:
    path = repository(oned)
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def user_env(oned: OnedProcess, tmp_path: Path, name: str) -> dict[str, str]:
    ok(oned.run_cli("oneuser", "create", name, "pw"))
    auth = tmp_path / f"{name}_auth"
    auth.write_text(f"{name}:pw\n")
    return {**oned.env, "ONE_AUTH": str(auth)}


# ---------------------------------------------------------------------------- create --wait


def test_create_wait_copies_a_sparse_gigabyte_with_progress_then_ready(oned, tmp_path):
    """Not a terminal: progress lines, then `ttylinux: READY (1.0 GiB, sha256:...)`; the file
    in the repository is the same bytes, and show gives its SIZE, SOURCE and CHECKSUM."""
    image = tmp_path / "ttylinux.img"
    with image.open("wb") as f:
        f.truncate(GIB)
    template = write_template(tmp_path, "ttylinux", f'NAME = ttylinux\nPATH = "{image}"\n')
    out = ok(oned.run_cli("oneimage", "create", template, "--wait"))
    digest = hashlib.sha256()
    with image.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    checksum = f"sha256:{digest.hexdigest()}"
    assert out[-1] == f"ttylinux: READY (1.0 GiB, {checksum})"
    progress = re.compile(r"ttylinux: (LOCKED, no progress reported yet| +\d+%  .* / 1\.0 GiB.*)")
    assert out[:-1] and all(progress.fullmatch(line) for line in out[:-1]), out
    fields = show(oned, "ttylinux")
    assert fields["STATE"] == "rdy" and fields["SIZE"] == "1.0 GiB"
    assert fields["CHECKSUM"] == checksum and fields["PATH"] == str(image)
    assert Path(fields["SOURCE"]).parent == repository(oned)
    assert Path(fields["SOURCE"]).stat().st_size == GIB
    listed = rows(oned)
    assert listed == [["0", "oneadmin", "ttylinux", "OS", listed[0][4], "No", "No", "rdy", "0"]]
    assert re.fullmatch(r"[A-Z][a-z]{2} \d\d, \d{4} \d\d:\d\d", listed[0][4])


def test_create_wait_on_a_terminal_draws_the_bar_in_place(oned, tmp_path):
    """On a pty: `\\r[####...] NN%` frames, a last one at 100%, then the READY line."""
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(GIB)
    template = write_template(tmp_path, "disk", f'NAME = disk\nPATH = "{image}"\n')
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", ONEIMAGE, "create", template, "--wait"],
        env=oned.env,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    output = read_pty(master, proc, deadline=time.monotonic() + 120)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    text = output.decode()
    assert re.search(r"\r\[[#-]{20}\] +\d+%", text)
    assert "\r[####################] 100%  1.0 GiB / 1.0 GiB" in text
    assert text.rstrip().splitlines()[-1].startswith("disk: READY (1.0 GiB, sha256:")


def read_pty(master: int, proc: subprocess.Popen, deadline: float) -> bytes:
    """Everything written to the pty until the process ends (killed at ``deadline``)."""
    chunks = []
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("oneimage create --wait did not end in time")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait(timeout=30)
    return b"".join(chunks)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a directory: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_create_wait_from_an_http_url_and_a_404(oned, tmp_path, web):
    base, root = web
    data = os.urandom(3 * 1024 * 1024 + 5)
    a_file(root, "cd.iso", data)
    template = write_template(tmp_path, "cd", f'NAME = cd\nTYPE = CDROM\nPATH = "{base}/cd.iso"\n')
    out = ok(oned.run_cli("oneimage", "create", template, "--wait"))
    assert out[-1] == f"cd: READY (4.0 MiB, sha256:{hashlib.sha256(data).hexdigest()})"
    assert Path(show(oned, "cd")["SOURCE"]).read_bytes() == data
    assert rows(oned)[0][3] == "CD"
    missing = write_template(tmp_path, "gone", f'NAME = gone\nPATH = "{base}/gone.iso"\n')
    error = failed(oned.run_cli("oneimage", "create", missing, "--wait"))
    assert "gone.iso" in error and "404" in error
    assert repository_files(oned) == [Path(show(oned, "cd")["SOURCE"]).name]


# ---------------------------------------------------------------------------- bad input


def test_a_missing_path_and_a_taken_name_are_one_error_line_and_leave_nothing(oned, tmp_path):
    nowhere = tmp_path / "nowhere.img"
    template = write_template(tmp_path, "x", f'NAME = x\nPATH = "{nowhere}"\n')
    error = failed(oned.run_cli("oneimage", "create", template, "--wait"))
    assert str(nowhere) in error
    assert repository_files(oned) == []
    data = a_file(tmp_path, "small.img", b"\1" * 4096)
    twice = write_template(tmp_path, "twice", f'NAME = twice\nPATH = "{data}"\n')
    ok(oned.run_cli("oneimage", "create", twice, "--wait"))
    assert "twice" in failed(oned.run_cli("oneimage", "create", twice))
    assert [r[2] for r in rows(oned) if r[2] == "twice"] == ["twice"]
    assert 'image "nothing" not found' in failed(oned.run_cli("oneimage", "show", "nothing"))


# ---------------------------------------------------------------------------- actions


def test_publish_persistent_enable_update_and_delete(oned, tmp_path):
    data = a_file(tmp_path, "a.img", os.urandom(65536))
    template = write_template(tmp_path, "a", f'NAME = a\nPATH = "{data}"\n')
    ok(oned.run_cli("oneimage", "create", template, "--wait"))
    ok(oned.run_cli("oneimage", "publish", "a"))
    ok(oned.run_cli("oneimage", "persistent", "a"))
    assert rows(oned)[0][5:8] == ["Yes", "Yes", "rdy"]
    ok(oned.run_cli("oneimage", "unpublish", "0"))
    ok(oned.run_cli("oneimage", "nonpersistent", "0"))
    ok(oned.run_cli("oneimage", "disable", "a"))
    assert rows(oned)[0][5:8] == ["No", "No", "disa"]
    ok(oned.run_cli("oneimage", "enable", "a"))
    assert rows(oned)[0][7] == "rdy"
    ok(oned.run_cli("oneimage", "update", "a", "DESCRIPTION", "first try"))
    assert "DESCRIPTION=first try" in ok(oned.run_cli("oneimage", "show", "a"))
    extra = write_template(tmp_path, "extra", 'LABEL = "blue"\n')
    ok(oned.run_cli("oneimage", "update", "a", extra, "--append"))
    shown = ok(oned.run_cli("oneimage", "show", "a"))
    assert "LABEL=blue" in shown and "DESCRIPTION=first try" in shown
    ok(oned.run_cli("oneimage", "rmattr", "a", "LABEL"))
    assert "LABEL=blue" not in ok(oned.run_cli("oneimage", "show", "a"))
    source = Path(show(oned, "a")["SOURCE"])
    assert source.exists()
    ok(oned.run_cli("oneimage", "delete", "a"))
    assert rows(oned) == [] and not source.exists()


def test_images_are_private_until_published(oned, tmp_path):
    """helen's empty DATABLOCK: paul does not see it until she publishes it; oneadmin does."""
    helen = user_env(oned, tmp_path, "helen")
    paul = user_env(oned, tmp_path, "paul")
    template = write_template(
        tmp_path, "data", "NAME = data\nTYPE = DATABLOCK\nSIZE = 16\nFSTYPE = raw\n"
    )
    ok(oned.run_cli("oneimage", "create", template, "--wait", env=helen))
    assert [r[1:4] for r in rows(oned)] == [["helen", "data", "DB"]]
    assert rows(oned, env=paul) == []
    assert 'image "data" not found' in failed(oned.run_cli("oneimage", "show", "data", env=paul))
    ok(oned.run_cli("oneimage", "publish", "data", env=helen))
    assert [r[1:3] for r in rows(oned, env=paul)] == [["helen", "data"]]
    assert rows(oned, "helen")[0][2] == "data" and rows(oned, "paul") == []


# ---------------------------------------------------------------------------- onevm saveas


def test_onevm_saveas_makes_an_image_the_vm_will_fill_and_undoes_it_when_refused(oned, tmp_path):
    data = a_file(tmp_path, "os.img", os.urandom(65536))
    template = write_template(tmp_path, "os", f'NAME = os\nPATH = "{data}"\n')
    ok(oned.run_cli("oneimage", "create", template, "--wait"))
    vm = write_template(tmp_path, "vm", 'NAME = web\nMEMORY = 64\nDISK = [ IMAGE = "os" ]\n')
    ok(oned.run_cli("onevm", "create", vm))
    out = ok(oned.run_cli("onevm", "saveas", "web", "0", "web-disk", "--type", "os"))
    assert out == ["Image ID: 1", "The disk is copied into image 1 when VM 0 shuts down"]
    assert [r[2:4] + r[7:8] for r in rows(oned)][1] == ["web-disk", "OS", "lock"]
    error = failed(oned.run_cli("onevm", "saveas", "web", "9", "never"))
    assert "9" in error
    assert [r[2] for r in rows(oned)] == ["os", "web-disk"]
