"""oneimage and onevm saveas: exact output from oned's own image documents, and the calls made."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import image_view, oneimage, onevm
from cli.common import CliError, run_cli
from oned import imagetemplate
from oned.client import OneCallError
from oned.image_views import image_xml
from oned.records import Image
from oned.states import ImageState, ImageType
from oned.template import parse

T0 = 1795262100  # Sat Nov 21 2026 11:55:00 UTC
GIB = 1024**3


def an_image(iid: int = 0, name: str = "ttylinux", uid: int = 0, **fields: Any) -> Image:
    template = parse(fields.pop("template", f'NAME = "{name}"\nPATH = /srv/t.img\nDEV_PREFIX = hd'))
    img = Image(iid, uid, name, ImageType.OS, False, False, T0, template)
    for key, value in fields.items():
        setattr(img, key, value)
    return img


def doc(img: Image, uname: str = "oneadmin", vms: tuple[int, ...] = ()) -> str:
    state = ImageState.USED if vms and img.state == ImageState.READY else img.state
    return image_xml(img, uname, vms, state)


READY = an_image(
    source="/one/var/images/0",
    path="/srv/t.img",
    size=3072,
    checksum="sha256:ab12",
    state=ImageState.READY,
)
LOCKED = an_image(
    1, "big", source="/one/var/images/1", state=ImageState.LOCKED, done=1449551463, total=3 * GIB
)
FAILED = an_image(
    2,
    "broken",
    uid=1,
    state=ImageState.ERROR,
    template='NAME = broken\nPATH = /nope\nERROR = "Sat Nov 21 11:55:02 2026 : /nope: not found"',
)
POOL = (
    "<IMAGE_POOL>"
    + doc(READY, vms=(4,))
    + doc(LOCKED)
    + doc(FAILED, "helen")
    + doc(an_image(3, "big", uid=1, state=ImageState.READY), "helen")
    + "</IMAGE_POOL>"
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


class FakeOned:
    """Answers each method from a table (a value, a function of the params, or an exception)."""

    def __init__(self, answers: dict[str, Any], session: str = "oneadmin:x"):
        self.answers = {"one.imagepool.info": POOL, **answers}
        self.session = session
        self.calls: list[tuple[Any, ...]] = []

    def call(self, method: str, *params: Any) -> Any:
        self.calls.append((method, *params))
        answer = self.answers[method]
        if isinstance(answer, Exception):
            raise answer
        return answer(*params) if callable(answer) else answer


def run(argv: list[str], answers: dict[str, Any] | None = None, cli=oneimage, **kw: Any):
    fake = FakeOned(answers or {}, **kw)
    out, err = io.StringIO(), io.StringIO()
    rc = run_cli(cli.PROG, cli.DESCRIPTION, cli.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue(), fake.calls


# ---------------------------------------------------------------------------- list and show


def test_list_has_2_0_columns_and_short_words():
    assert image_view.list_lines(POOL) == [
        "  ID     USER                 NAME TYPE              REGTIME PUB PER STAT  #VMS",
        "   0 oneadmin             ttylinux   OS   Nov 21, 2026 11:55  No  No used     1",
        "   1 oneadmin                  big   OS   Nov 21, 2026 11:55  No  No lock     0",
        "   2    helen               broken   OS   Nov 21, 2026 11:55  No  No  err     0",
        "   3    helen                  big   OS   Nov 21, 2026 11:55  No  No  rdy     0",
    ]


def test_list_filters_by_user_name_and_sends_the_2_0_filter():
    rc, out, _, calls = run(["list", "helen"])
    assert rc == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["2", "3"]
    assert calls == [("one.imagepool.info", -2)]
    assert run(["list", "m"])[3] == [("one.imagepool.info", -1)]
    rc, out, _, _ = run(["list", "-x"])
    assert out == POOL + "\n"


def test_show_ready_image_in_2_0_layout_with_size_path_and_checksum():
    assert image_view.show_lines(doc(READY, vms=(4,))) == [
        f"{'IMAGE  INFORMATION':<80}",
        "ID             : 0                   ",
        "NAME           : ttylinux            ",
        "TYPE           : OS                  ",
        "REGISTER TIME  : 11/21 11:55:00      ",
        "PUBLIC         : No                  ",
        "PERSISTENT     : No                  ",
        "SOURCE         : /one/var/images/0   ",
        "PATH           : /srv/t.img          ",
        "SIZE           : 3.0 GiB             ",
        "CHECKSUM       : sha256:ab12         ",
        "STATE          : used                ",
        "RUNNING_VMS    : 1                   ",
        "",
        f"{'IMAGE TEMPLATE':<80}",
        "NAME=ttylinux",
        "PATH=/srv/t.img",
        "DEV_PREFIX=hd",
    ]


def test_show_gives_the_bytes_copied_while_locked_and_the_reason_of_an_error():
    locked = image_view.show_lines(doc(LOCKED))
    assert "COPIED         : 1.4 GiB of 3.0 GiB (45%)" in locked
    assert "SIZE           : -                   " in locked
    failed = image_view.show_lines(doc(FAILED, "helen"))
    assert "ERROR          : Sat Nov 21 11:55:02 2026 : /nope: not found" in failed
    assert not any(line.startswith(("COPIED", "CHECKSUM")) for line in failed)
    waiting = image_view.show_lines(doc(an_image(4, state=ImageState.LOCKED)))  # a saveas
    assert "STATE          : lock                " in waiting
    assert not any(line.startswith("COPIED") for line in waiting)


def test_show_resolves_a_name_to_the_callers_own_image_first():
    rc, _, err, calls = run(["show", "big"], {"one.image.info": doc(LOCKED)})
    assert rc == 0, err
    assert calls[-1] == ("one.image.info", 1)
    _, _, _, calls = run(["show", "big"], {"one.image.info": doc(LOCKED)}, session="helen:x")
    assert calls[-1] == ("one.image.info", 3)
    rc, _, err, _ = run(["show", "big"], session="paul:x")
    assert rc == 255
    assert (
        err == 'Error: there are several images named "big": oneadmin (1), helen (3); use the id\n'
    )
    rc, _, err, _ = run(["show", "nothing"])
    assert (rc, err) == (255, 'Error: image "nothing" not found\n')


# ---------------------------------------------------------------------------- progress


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (210 * 2**20, "210 MiB"), (3 * GIB, "3.0 GiB")],
)
def test_sizes_are_binary_with_one_decimal_below_ten(count, text):
    assert image_view.human_bytes(count) == text


def test_progress_bar_as_documented():
    text = image_view.progress_text(1449551463, 3 * GIB, 210 * 2**20)
    assert text == "[#########-----------]  45%  1.4 GiB / 3.0 GiB  210 MiB/s"
    assert image_view.progress_text(3 * GIB, 3 * GIB, None).startswith("[" + "#" * 20 + "] 100%")
    assert image_view.progress_text(5 * 2**20, 0, None, bar=False) == "5.0 MiB"
    assert image_view.progress_text(0, 0, None) == "LOCKED, no progress reported yet"
    assert image_view.copied_text(5 * 2**20, 0) == "5.0 MiB"


def test_meter_rate_over_its_window_and_after_a_restart():
    meter = image_view.Meter(window=3)
    assert meter.add(0.0, 0) is None
    assert meter.add(1.0, 100) == 100
    assert meter.add(2.0, 300) == 150
    assert meter.add(5.0, 600) == 100  # from the newest sample 3 s old: (600-300)/3
    meter.add(6.0, 0)
    assert meter.add(7.0, 50) == 50


class Copy:
    """A copy seen through one.image.info: LOCKED with growing PROGRESS, then the end state."""

    def __init__(self, steps: int, end: Image):
        self.docs = [
            doc(an_image(7, "ttylinux", state=ImageState.LOCKED, done=i * GIB, total=steps * GIB))
            for i in range(steps)
        ] + [doc(end)]
        self.now = 0.0

    def fetch(self) -> str:
        return self.docs.pop(0)

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _wait(copy: Copy, tty: bool) -> tuple[str, str | Exception]:
    out = io.StringIO()
    try:
        result: str | Exception = oneimage.wait_image(
            copy.fetch, out.write, tty, clock=lambda: copy.now, sleep=copy.sleep
        )
    except CliError as e:
        result = e
    return out.getvalue(), result


def test_wait_without_a_terminal_logs_a_line_every_5_seconds_then_the_ready_line():
    out, last = _wait(Copy(12, an_image(7, size=12288, checksum="sha256:ff", state=1)), tty=False)
    assert out.splitlines() == [
        "ttylinux:   0%  0 B / 12 GiB",
        "ttylinux:  83%  10 GiB / 12 GiB  2.0 GiB/s",
    ]
    assert last == "ttylinux: READY (12 GiB, sha256:ff)"


def test_wait_on_a_terminal_redraws_the_bar_and_ends_it_at_100_percent():
    out, last = _wait(Copy(2, an_image(7, size=2048, state=ImageState.READY)), tty=True)
    frames = out.split("\r")[1:]
    assert frames[0] == "[--------------------]   0%  0 B / 2.0 GiB" + oneimage.CLEAR_EOL
    assert frames[1].startswith("[##########----------]  50%  1.0 GiB / 2.0 GiB  2.0 GiB/s")
    assert frames[2] == "[####################] 100%  2.0 GiB / 2.0 GiB" + oneimage.CLEAR_EOL + "\n"
    assert last == "ttylinux: READY (2.0 GiB)"


def test_wait_ends_with_the_templates_error_naming_the_image():
    end = an_image(7, "x", state=ImageState.ERROR, template='NAME = x\nERROR = "t : disk full"')
    out, error = _wait(Copy(1, end), tty=True)
    assert out.endswith("\n") and isinstance(error, CliError)
    assert str(error) == 'image 7 "x": t : disk full'


def test_create_wait_exits_255_with_one_error_line_on_error():
    end = an_image(7, "x", state=ImageState.ERROR, template='NAME = x\nERROR = "t : 404"')
    answers = {"one.image.allocate": 7, "one.image.info": doc(end)}
    rc, out, err, calls = run(["create", "--wait", __file__], answers)
    assert (rc, out, err) == (255, "", 'Error: image 7 "x": t : 404\n')
    assert calls[0][0] == "one.image.allocate" and calls[1] == ("one.image.info", 7)


def test_ctrl_c_stops_waiting_and_says_the_copy_goes_on(capsys):
    def interrupted(iid: int) -> str:
        raise KeyboardInterrupt

    answers = {"one.image.allocate": 7, "one.image.info": interrupted}
    rc, out, _, calls = run(["create", "--wait", __file__], answers)
    assert (rc, out) == (130, "")
    assert "oned goes on copying image 7 (oneimage show 7)" in capsys.readouterr().err
    assert [c[0] for c in calls] == ["one.image.allocate", "one.image.info"]


def test_create_without_wait_makes_one_call_and_says_the_id_with_v():
    rc, out, _, calls = run(["-v", "create", __file__], {"one.image.allocate": 9})
    assert (rc, out, len(calls)) == (0, "ID: 9\n", 1)


# ---------------------------------------------------------------------------- actions


@pytest.mark.parametrize(
    ("argv", "call"),
    [
        (["delete", "ttylinux"], ("one.image.delete", 0)),
        (["enable", "0"], ("one.image.enable", 0, True)),
        (["disable", "0"], ("one.image.enable", 0, False)),
        (["publish", "0"], ("one.image.publish", 0, True)),
        (["unpublish", "0"], ("one.image.publish", 0, False)),
        (["persistent", "0"], ("one.image.persistent", 0, True)),
        (["nonpersistent", "0"], ("one.image.persistent", 0, False)),
        (["update", "0", "DESCRIPTION", "a b"], ("one.image.update", 0, "DESCRIPTION", "a b")),
        (["rmattr", "0", "DESCRIPTION"], ("one.image.rmattr", 0, "DESCRIPTION")),
    ],
)
def test_each_action_sends_the_2_0_call(argv, call):
    answers = {call[0]: call[1]}
    rc, _, err, calls = run(argv, answers)
    assert rc == 0, err
    assert calls[-1] == call


def test_actions_take_ranges_and_stop_at_the_first_refusal():
    refusal = OneCallError("[one.image.delete] image 1 is used by VMs 4", 0x800)

    def delete(iid: int) -> int:
        if iid == 1:
            raise refusal
        return iid

    answers = {"one.image.delete": delete}
    rc, _, err, calls = run(["delete", "0-2"], answers)
    assert rc == 255 and err == "Error: [one.image.delete] image 1 is used by VMs 4\n"
    assert calls == [("one.image.delete", 0), ("one.image.delete", 1)]


def test_update_with_a_file_replaces_or_merges_the_template(tmp_path):
    template = tmp_path / "new.one"
    template.write_text('DESCRIPTION = "new"\n')
    _, _, _, calls = run(["update", "0", str(template)], {"one.image.update": 0})
    assert calls == [("one.image.update", 0, 'DESCRIPTION = "new"\n', 0)]
    _, _, _, calls = run(["update", "0", str(template), "--append"], {"one.image.update": 0})
    assert calls == [("one.image.update", 0, 'DESCRIPTION = "new"\n', 1)]
    rc, _, err, _ = run(["update", "0", "A", "b", "--append"])
    assert rc == 255 and "--append goes with a template file" in err


@pytest.mark.parametrize("command", [c.name for c in oneimage.COMMANDS])
def test_every_command_has_a_help_page(command, capsys):
    assert oneimage.main([command, "--help"]) == 0
    assert f"usage: oneimage {command}" in capsys.readouterr().out


# ---------------------------------------------------------------------------- onevm saveas

VM_POOL = "<VM_POOL><VM><ID>5</ID><NAME>web</NAME></VM></VM_POOL>"


def test_saveas_allocates_an_init_image_then_asks_the_vm_to_save_the_disk():
    answers = {"one.vmpool.info": VM_POOL, "one.image.allocate": 8, "one.vm.savedisk": 5}
    rc, out, err, calls = run(
        ["saveas", "web", "1", 'my "disk"', "--type", "datablock"], answers, onevm
    )
    assert rc == 0, err
    assert calls[1:] == [
        ("one.image.allocate", 'NAME="my \\"disk\\""\nTYPE=DATABLOCK\n'),
        ("one.vm.savedisk", 5, 1, 8),
    ]
    assert out.splitlines() == [
        "Image ID: 8",
        "The disk is copied into image 8 when VM 5 shuts down",
    ]


def test_saveas_deletes_the_image_it_made_when_the_vm_refuses():
    refusal = OneCallError("[one.vm.savedisk] VM 5 has no disk with DISK_ID 3", 0x400)
    answers = {"one.image.allocate": 8, "one.vm.savedisk": refusal, "one.image.delete": 8}
    rc, out, err, calls = run(["saveas", "5", "3", "copy"], answers, onevm)
    assert (rc, out) == (255, "")
    assert err == "Error: [one.vm.savedisk] VM 5 has no disk with DISK_ID 3\n"
    assert calls[-1] == ("one.image.delete", 8)
    answers["one.image.delete"] = OneCallError("[one.image.delete] oned went away", 0x2000)
    _, _, err, _ = run(["saveas", "5", "3", "copy"], answers, onevm)
    assert "(and image 8 it made could not be deleted: [one.image.delete] oned went away)" in err


def test_saveas_refuses_a_disk_id_that_is_not_a_number_before_any_call():
    rc, _, err, calls = run(["saveas", "5", "hda", "copy"], {}, onevm)
    assert (rc, calls) == (255, [])
    assert err == "Error: onevm saveas: disk id must be a number, not 'hda'\n"


# ---------------------------------------------------------------------------- templates/

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.parametrize(
    ("name", "kind", "public", "persistent"),
    [
        ("ttylinux-image.one", ImageType.OS, False, False),
        ("datablock.one", ImageType.DATABLOCK, False, True),
        ("install-cd.one", ImageType.CDROM, True, False),
    ],
)
def test_the_example_image_templates_register_as_documented(name, kind, public, persistent):
    tmpl = parse((TEMPLATES / name).read_text())
    img = imagetemplate.build(tmpl, oid=0, uid=0, regtime=T0, default_type="OS", dev_prefix="hd")
    assert (img.type, img.public, img.persistent) == (kind, public, persistent)
    assert img.state == ImageState.LOCKED  # each has content to copy or make


def test_the_example_vm_boots_from_the_ttylinux_image():
    image_name = parse((TEMPLATES / "ttylinux-image.one").read_text()).get("NAME")
    vm = parse((TEMPLATES / "ttylinux-vm.one").read_text())
    assert vm.get("DISK") == {"IMAGE": image_name}
