"""one_tm: transfer scripts parsed, the dummy and nfs command sets run on temporary directories."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from drivers.protocol import DriverFailure, Request
from drivers.runner import Place, local_names
from drivers.serve import Logger, Output
from drivers.tm import (
    Command,
    Context,
    command_set,
    parse_script,
    transfer,
)
from tests.e2e.driver_process import DriverProcess

ALL_COMMANDS = """\
CLONE fe:/no/such/image host01:/vm/7/images/disk.0
LN fe:/no/such/image host01:/vm/7/images/disk.1
MKSWAP 64 host01:/vm/7/images/disk.2
MKIMAGE 64 ext3 host01:/vm/7/images/disk.3
CONTEXT /no/such/context.sh host01:/vm/7/images/disk.4
MV host01:/vm/7/images host02:/vm/7/images
DELETE host01:/vm/7/images
"""


class Recorder:
    """A Logger on an in-memory stream; ``lines`` are the LOG lines it wrote."""

    def __init__(self, ident: str = "7") -> None:
        self.stream = io.BytesIO()
        self.log = Logger(Output(self.stream), ident)

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().decode().splitlines()


def run(kind: str, tmp_path: Path, script: str, vid: str = "7") -> tuple[str, Recorder]:
    """Write the script as oned does and answer TRANSFER in-process."""
    path = tmp_path / f"transfer.0.{vid}"
    path.write_text(script)
    recorder = Recorder(vid)
    ctx = Context(kind, local_names(["fe"]))
    return transfer(ctx, Request("TRANSFER", vid, (str(path),)), recorder.log), recorder


def fails(kind: str, tmp_path: Path, script: str) -> str:
    with pytest.raises(DriverFailure) as failure:
        run(kind, tmp_path, script)
    return str(failure.value)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A 1 MB image with recognisable bytes."""
    path = tmp_path / "images" / "ttylinux.img"
    path.parent.mkdir()
    path.write_bytes(bytes(range(256)) * 4096)
    return path


def test_a_script_is_one_command_a_line_and_skips_blanks_and_comments():
    """Commands are upper-cased; blank lines and # comments are not commands."""
    text = "# prolog\n\nclone fe:/a h:/vm/1/images/disk.0 512\nDELETE h:/vm/1/images\n"
    assert parse_script(text) == [
        Command("CLONE", ("fe:/a", "h:/vm/1/images/disk.0", "512")),
        Command("DELETE", ("h:/vm/1/images",)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("COPY a b", "COPY not found: COPY a b."),
        ("CLONE onlyone", "line 1: CLONE takes 2 to 3 arguments: CLONE onlyone"),
        ("\nMKSWAP 64", "line 2: MKSWAP takes 2 arguments: MKSWAP 64"),
        ("CONTEXT h:/dst", "line 1: CONTEXT takes 2+ arguments: CONTEXT h:/dst"),
    ],
)
def test_a_malformed_script_line_is_refused_naming_it(text, message):
    """An unknown command (1.4's 'not found') or a wrong argument count names the line."""
    with pytest.raises(ValueError, match="^" + message.replace("+", r"\+") + "$"):
        parse_script(text)


@pytest.mark.parametrize(
    ("argument", "name"),
    [
        ("ssh", "ssh"),
        ("tm_ssh/tm_ssh.conf", "ssh"),
        ("tm_nfs/tm_nfs.conf", "nfs"),
        ("/etc/one/tm_dummy/tm_dummy.conf", "dummy"),
    ],
)
def test_the_command_set_comes_from_the_name_or_1_4_conf_path(argument, name):
    """oned.conf of 1.4 names the set by its conf file; the plain name works too."""
    assert command_set(argument) == name


def test_an_unknown_command_set_is_refused():
    """tm_lvm is not a set this driver has."""
    with pytest.raises(Exception, match=r"unknown command set 'tm_lvm/tm_lvm\.conf'"):
        command_set("tm_lvm/tm_lvm.conf")


def test_a_path_on_the_front_end_is_local_whatever_it_is_called():
    """No host, this machine's name, or a --front-end name: all local; others are hosts."""
    ctx = Context("ssh", local_names(["fe"]))
    assert ctx.place("/srv/a.img") == Place(None, "/srv/a.img")
    assert ctx.place("fe:/srv/a.img") == Place(None, "/srv/a.img")
    assert ctx.place(f"{socket.gethostname()}:/srv/a.img") == Place(None, "/srv/a.img")
    assert ctx.place("host01:/vm/1/images") == Place("host01", "/vm/1/images")


def test_nfs_works_on_every_path_locally_with_vm_dir_rewritten():
    """With --vm-dir the hosts' VM_DIR maps to the front-end's var dir, as 1.4's fix_paths."""
    ctx = Context("nfs", frozenset(), rewrite=("/srv/cloud/vm", "/one/var"))
    assert ctx.place("host01:/srv/cloud/vm/3/images") == Place(None, "/one/var/3/images")
    assert ctx.place("fe:/srv/images/a.img") == Place(None, "/srv/images/a.img")


def test_the_dummy_set_succeeds_at_every_command_and_touches_nothing(tmp_path):
    """1.4's tm_dummy: even images that do not exist are 'transferred'."""
    before = sorted(tmp_path.rglob("*"))
    assert run("dummy", tmp_path, ALL_COMMANDS)[0] == "-"
    assert sorted(p for p in tmp_path.rglob("*") if not p.name.startswith("transfer.")) == before


def test_a_missing_script_file_fails_as_1_4_says(tmp_path):
    """TRANSFER FAILURE <vid> Transfer file not found: <file>, even for the dummy set."""
    recorder = Recorder()
    missing = str(tmp_path / "transfer.0.prolog")
    with pytest.raises(DriverFailure, match=f"^Transfer file not found: {missing}$"):
        transfer(Context("dummy", frozenset()), Request("TRANSFER", "7", (missing,)), recorder.log)


def test_nfs_clone_copies_the_image_into_a_new_vm_dir(tmp_path, image):
    """CLONE fe:src host:dst makes dst's directories and an exact copy."""
    dst = tmp_path / "vm" / "7" / "images" / "disk.0"
    assert run("nfs", tmp_path, f"CLONE fe:{image} host01:{dst} 1024\n")[0] == "-"
    assert dst.read_bytes() == image.read_bytes()


def test_nfs_ln_links_the_image(tmp_path, image):
    """LN makes a symbolic link to the shared image (clone = no)."""
    dst = tmp_path / "vm" / "7" / "images" / "disk.0"
    run("nfs", tmp_path, f"LN fe:{image} host01:{dst}\n")
    assert dst.is_symlink() and os.readlink(dst) == str(image)


def test_nfs_mkswap_makes_a_real_swap_area_of_that_size(tmp_path):
    """MKSWAP 16 gives a 16 MB file with the swap signature at the end of its first page."""
    dst = tmp_path / "vm" / "7" / "images" / "disk.1"
    run("nfs", tmp_path, f"MKSWAP 16 host01:{dst}\n")
    assert dst.stat().st_size == 16 << 20
    assert dst.read_bytes()[os.sysconf("SC_PAGE_SIZE") - 10 :][:10] == b"SWAPSPACE2"


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="mkfs.ext4 is not installed")
def test_nfs_mkimage_makes_a_file_system_of_the_format(tmp_path):
    """MKIMAGE 16 ext4 gives a 16 MB ext4 file system (magic 0xEF53 in its superblock)."""
    dst = tmp_path / "vm" / "7" / "images" / "disk.2"
    run("nfs", tmp_path, f"MKIMAGE 16 ext4 host01:{dst}\n")
    assert dst.stat().st_size == 16 << 20
    assert dst.read_bytes()[1080:1082] == b"\x53\xef"


def test_nfs_mkimage_raw_is_an_empty_sparse_file(tmp_path):
    """A raw fs disk is only its size."""
    dst = tmp_path / "vm" / "7" / "images" / "disk.2"
    run("nfs", tmp_path, f"MKIMAGE 8 raw host01:{dst}\n")
    assert dst.stat().st_size == 8 << 20


def test_nfs_mv_moves_a_saved_disk_but_not_the_shared_directory(tmp_path, image):
    """Epilog's MV of a disk moves it; MV of the images dir is skipped (it is shared)."""
    images = tmp_path / "vm" / "7" / "images"
    images.mkdir(parents=True)
    shutil.copyfile(image, images / "disk.0")
    saved = tmp_path / "var" / "7" / "disk.0"
    script = (
        f"MV host01:{images} fe:{tmp_path}/var/7/images\nMV host01:{images}/disk.0 fe:{saved}\n"
    )
    _, recorder = run("nfs", tmp_path, script)
    assert saved.read_bytes() == image.read_bytes() and not (images / "disk.0").exists()
    assert not (tmp_path / "var" / "7" / "images").exists()
    assert any("will not move the directory" in line for line in recorder.lines)


def test_nfs_delete_removes_the_vm_directory(tmp_path, image):
    """DELETE host:R is rm -rf R."""
    images = tmp_path / "vm" / "7" / "images"
    images.mkdir(parents=True)
    shutil.copyfile(image, images / "disk.0")
    run("nfs", tmp_path, f"DELETE host01:{images}\n")
    assert not images.exists() and (tmp_path / "vm" / "7").exists()


def test_delete_refuses_the_root_directory(tmp_path):
    """A DELETE of / is a mistake, never a command to run."""
    assert "will not delete /" in fails("nfs", tmp_path, "DELETE host01:/\n")


def test_nfs_context_builds_an_iso_with_context_sh_and_the_files(tmp_path):
    """CONTEXT context.sh init.sh host:dst: an ISO 9660 image holding both files."""
    var = tmp_path / "var" / "7"
    var.mkdir(parents=True)
    (var / "context.sh").write_text('# Context variables generated by OpenNebula\nIP="10.0.0.5"\n')
    (tmp_path / "init.sh").write_text("echo hello\n")
    dst = tmp_path / "vm" / "7" / "images" / "disk.1"
    run("nfs", tmp_path, f"CONTEXT {var}/context.sh {tmp_path}/init.sh host01:{dst}\n")
    listing = subprocess.run(
        ["isoinfo", "-J", "-f", "-i", str(dst)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listing) == ["/context.sh", "/init.sh"]
    content = subprocess.run(
        ["isoinfo", "-J", "-i", str(dst), "-x", "/context.sh"], capture_output=True, check=True
    ).stdout
    assert content == (var / "context.sh").read_bytes()


def test_a_missing_image_fails_the_prolog_naming_it_and_creates_nothing(tmp_path, image):
    """The sources are checked before anything is made: no VM directory appears."""
    vm = tmp_path / "vm" / "7"
    script = (
        f"CLONE fe:{image} host01:{vm}/images/disk.0\n"
        f"CLONE fe:/srv/missing.img host01:{vm}/images/disk.1\n"
    )
    assert fails("nfs", tmp_path, script) == "CLONE: /srv/missing.img does not exist"
    assert not vm.exists()


def test_a_failing_command_stops_the_script_and_rolls_back_what_it_made(tmp_path, image):
    """disk.0 was cloned, disk.1 cannot be moved in: both and the VM directory are gone after."""
    vm = tmp_path / "vm" / "7"
    script = (
        f"CLONE fe:{image} host01:{vm}/images/disk.0\n"
        f"MV host01:{tmp_path}/saved/gone host01:{vm}/images/disk.1\n"
        f"MKSWAP 8 host01:{vm}/images/disk.2\n"
    )
    message = fails("nfs", tmp_path, script)
    assert message.startswith(
        f"MV host01:{tmp_path}/saved/gone host01:{vm}/images/disk.1: mv failed"
    )
    assert not vm.exists()


def test_rollback_keeps_directories_that_were_there_before(tmp_path, image):
    """Only what this transfer created goes: an existing VM directory stays."""
    images = tmp_path / "vm" / "7" / "images"
    images.mkdir(parents=True)
    (images / "deployment.0").write_text("<VM/>")
    script = f"CLONE fe:{image} host01:{images}/disk.0\nMV fe:{tmp_path}/gone fe:{images}/x\n"
    assert "mv failed" in fails("nfs", tmp_path, script)
    assert sorted(p.name for p in images.iterdir()) == ["deployment.0"]


def test_one_tm_answers_transfer_as_oned_runs_it(tmp_path, image):
    """The executable, ARGUMENTS as 1.4's conf path: INIT, then TRANSFER SUCCESS and FAILURE."""
    driver = DriverProcess("one_tm", "tm_nfs/tm_nfs.conf")
    try:
        assert driver.init() == "INIT SUCCESS - -"
        good, bad = tmp_path / "transfer.0.prolog", tmp_path / "transfer.1.prolog"
        good.write_text(f"CLONE {socket.gethostname()}:{image} h:{tmp_path}/vm/3/images/disk.0\n")
        bad.write_text(f"CLONE {image}.missing h:{tmp_path}/vm/4/images/disk.0\n")
        driver.send(f"TRANSFER 3 {good}", f"TRANSFER 4 {bad}")
        assert driver.reply("TRANSFER", 3) == "TRANSFER SUCCESS 3 -"
        assert driver.reply("TRANSFER", 4) == (
            f"TRANSFER FAILURE 4 CLONE: {image}.missing does not exist"
        )
        assert (tmp_path / "vm" / "3" / "images" / "disk.0").exists()
    finally:
        driver.close()


class HostsHere:
    """Stands in for SshPool: every "host" runs its commands on this machine, and is recorded.

    The e2e tests (tests/e2e/test_tm_ssh.py) run the ssh set against real SSH hosts; this lets
    the chunked copies be checked in a unit test, with chunks made small.
    """

    def __init__(self) -> None:
        self.hosts: list[str] = []

    def run(self, host, argv, *, timeout, input=None, on_cancel=None):
        from drivers.runner import run_local

        self.hosts.append(host)
        return run_local(argv, timeout=timeout, input=input, on_cancel=on_cancel)


def test_ssh_moves_a_tree_between_hosts_in_chunks_and_removes_the_source(
    tmp_path, image, monkeypatch
):
    """MV h1:R h2:R2 relays every file through the driver, chunk by chunk, then removes R."""
    monkeypatch.setattr("drivers.runner.CHUNK", 300_000)  # the 1 MB image takes four chunks
    monkeypatch.setattr("drivers.runner.READ_CHUNK", 300_000)
    src, dst = tmp_path / "h1" / "7" / "images", tmp_path / "h2" / "7" / "images"
    (src / "sub").mkdir(parents=True)
    shutil.copyfile(image, src / "disk.0")
    (src / "sub" / "empty").write_bytes(b"")
    script = tmp_path / "transfer.0.migrate"
    script.write_text(f"MV h1:{src} h2:{dst}\n")
    pool = HostsHere()
    ctx = Context("ssh", local_names(), pool=pool)  # type: ignore[arg-type]
    assert transfer(ctx, Request("TRANSFER", "7", (str(script),)), Recorder().log) == "-"
    assert (dst / "disk.0").read_bytes() == image.read_bytes()
    assert (dst / "sub" / "empty").read_bytes() == b"" and not src.exists()
    assert set(pool.hosts) == {"h1", "h2"} and not list(dst.rglob("*.part"))


def test_ssh_clone_uploads_from_the_front_end_and_a_failed_write_leaves_no_part_file(
    tmp_path, image, monkeypatch
):
    """CLONE to a host whose disk is 'full' (the write fails): FAILURE, no .part, no dirs."""
    monkeypatch.setattr("drivers.runner.CHUNK", 300_000)
    vm = tmp_path / "h1" / "7"
    pool = HostsHere()
    original = pool.run

    def full_disk(host, argv, **kwargs):
        if argv[:2] == ["sh", "-c"] and argv[2].startswith("cat >>"):
            from drivers.runner import RunResult

            return RunResult(1, "", "cat: write error: No space left on device")
        return original(host, argv, **kwargs)

    pool.run = full_disk  # type: ignore[method-assign]
    script = tmp_path / "transfer.0.prolog"
    script.write_text(f"CLONE {image} h1:{vm}/images/disk.0\n")
    ctx = Context("ssh", local_names(), pool=pool)  # type: ignore[arg-type]
    with pytest.raises(DriverFailure, match="No space left on device"):
        transfer(ctx, Request("TRANSFER", "7", (str(script),)), Recorder().log)
    assert not vm.exists()


# ---------------------------------------------------------------------------------------------
# What one_tm accepts before it runs anything (issue 10, findings 1 and 2)


def test_script_words_are_decoded_so_a_path_with_a_space_is_one_argument():
    """oned encodes every word (drivers/protocol.encode_words); one_tm decodes them."""
    assert parse_script("CLONE fe:/srv/my%20image%0A.img h:/vm/1/images/disk.0\n") == [
        Command("CLONE", ("fe:/srv/my image\n.img", "h:/vm/1/images/disk.0")),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("MKIMAGE 64 ext3%20-O%20x h:/vm/1/d", "format 'ext3 -O x' is not one of"),
        ("MKIMAGE 64 -V h:/vm/1/d", "format '-V' is not one of"),
        ("MKIMAGE 64 ../../bin/sh h:/vm/1/d", "format '../../bin/sh' is not one of"),
        ("MKSWAP 1e3 h:/vm/1/d", "size '1e3' is not a positive number of MB"),
        ("MKSWAP 0 h:/vm/1/d", "size '0' is not a positive number of MB"),
        ("CLONE /srv/a.img h:/vm/1/d %D9%A3", "is not a positive number of MB"),
        ("CLONE /srv/a.img h:vm/1/d", "'h:vm/1/d' is not an absolute path without '..'"),
        ("DELETE h:/vm/1/../../etc", "is not an absolute path without '..'"),
        ("CONTEXT /ctx.sh ../one_auth h:/vm/1/d", "'../one_auth' is not an absolute path"),
        ("MV -rf:/x h:/vm/1/d", "'-rf' is not a host name"),
        ("DELETE ''", "'' is not an absolute path"),
        ("CLONE file:///etc/shadow h:/vm/1/d", "only http, https and ftp URLs are fetched"),
        ("CLONE 'x' h:/vm/1/d", "line 1: malformed word \"'x'\""),
    ],
)
def test_one_tm_refuses_a_script_whose_arguments_are_not_what_their_command_takes(line, message):
    """Checked first, then run: formats from an allow-list (never an mkfs option), sizes that
    are whole MB, absolute paths without '..', host names that are names; the line is named."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_script(line + "\n")


def test_mkimage_makes_only_the_allowed_formats(tmp_path):
    """Finding 2: FORMAT went to mkfs -t as the user wrote it; a refused format makes nothing."""
    target = tmp_path / "vm" / "7" / "images" / "disk.0"
    message = fails("nfs", tmp_path, f"MKIMAGE 8 minix h:{target}\n")
    assert "format 'minix' is not one of ext2, ext3, ext4, msdos, qcow2, raw, swap, vfat, xfs" in (
        message
    )
    assert not (tmp_path / "vm").exists()


def test_an_injected_disk_source_deletes_nothing_and_fails_as_a_missing_image(tmp_path):
    """Finding 1 end to end on the nfs set: the SOURCE oned encoded as one word is looked up as
    one (missing) file; the file the injected DELETE named is still there."""
    from oned.template import Template
    from oned.transfer import Places, script

    victim = tmp_path / "victim"
    victim.write_text("keep me")
    source = f"/x/img h:/x/d\nDELETE h:{victim}\nCLONE /x/img"
    at = Places("fe", str(tmp_path / "var"), str(tmp_path / "vm" / "7" / "images"), "h")
    lines = script("prolog", Template([("DISK", {"SOURCE": source})]), at)
    message = fails("nfs", tmp_path, "\n".join(lines) + "\n")
    assert message == f"CLONE: {source} does not exist"
    assert victim.read_text() == "keep me"


def test_nfs_mv_of_a_persistent_image_link_onto_the_image_keeps_the_image(tmp_path, image):
    """A persistent image is LN'd in place; the epilog's MV of that link onto the image itself
    removes the link and leaves the image whole (mv would put the link over its own target)."""
    disk = tmp_path / "vm" / "7" / "images" / "disk.0"
    content = image.read_bytes()
    run("nfs", tmp_path, f"LN fe:{image} host01:{disk}\n")
    _, recorder = run(
        "nfs", tmp_path, f"MV host01:{disk} fe:{image}\nDELETE host01:{disk.parent}\n"
    )
    assert not image.is_symlink() and image.read_bytes() == content
    assert not disk.parent.exists()
    assert any("is a link to" in line for line in recorder.lines)


def test_mv_of_a_link_onto_its_target_on_a_host_over_ssh_keeps_the_target(tmp_path, image):
    """The same rule on a host reached over SSH (readlink -f there)."""
    disk = tmp_path / "h1" / "7" / "images" / "disk.0"
    content = image.read_bytes()
    script = tmp_path / "transfer.0.epilog"
    script.write_text(f"LN h1:{image} h1:{disk}\nMV h1:{disk} h1:{image}\n")
    pool = HostsHere()
    ctx = Context("ssh", local_names(), pool=pool)  # type: ignore[arg-type]
    assert transfer(ctx, Request("TRANSFER", "7", (str(script),)), Recorder().log) == "-"
    assert not image.is_symlink() and image.read_bytes() == content and not disk.exists()
    assert set(pool.hosts) == {"h1"}


def test_mv_of_a_saved_disk_onto_another_file_still_replaces_it(tmp_path, image):
    """Only a link to the destination is spared: a real disk saved over an older image (or a
    link to something else) moves as before."""
    disk = tmp_path / "vm" / "7" / "images" / "disk.0"
    disk.parent.mkdir(parents=True)
    disk.write_bytes(b"new content")
    run("nfs", tmp_path, f"MV host01:{disk} fe:{image}\n")
    assert image.read_bytes() == b"new content" and not disk.exists()
