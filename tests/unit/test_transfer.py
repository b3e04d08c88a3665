"""The transfer scripts and context.sh oned writes (oned/transfer.py), read back as the drivers
and the guest read them: one_tm's parse_script and a real ``sh``.

Finding 1 of issue 10 (a DISK SOURCE with a newline added DELETE commands; a space added
arguments) and the context.sh part of finding 2 (backquotes ran in the guest).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocol import decode_words
from drivers.tm_script import Command, parse_script
from oned.template import Template
from oned.transfer import Places, TransferError, commands, context_sh, script

AT = Places("fe", "/var/one/7", "/vm/7/images", "host01", "host02")
KINDS = ("prolog", "migrate", "resume", "epilog", "stop", "delete", "delete_prev")
INJECTED = "/x/img H:/x/d\nDELETE host01:/victim\nCLONE /x/img"


def read_back(lines: list[str]) -> list[Command]:
    """The script as one_tm reads it."""
    return parse_script("\n".join(lines) + "\n")


def disk(**attrs: str) -> Template:
    return Template([("DISK", {k.upper(): v for k, v in attrs.items()})])


def test_plain_scripts_are_the_lines_opennebula_writes():
    """Normal values encode to themselves: the reference's lines, word for word."""
    tmpl = Template(
        [("DISK", {"SOURCE": "/srv/a.img", "SAVE": "yes"}),
         ("DISK", {"TYPE": "swap", "SIZE": "64"}),
         ("DISK", {"TYPE": "fs", "SIZE": "128", "FORMAT": "ext3"}),
         ("DISK", {"SOURCE": "host02:/srv/b.img", "CLONE": "no", "SIZE": "512"}),
         ("CONTEXT", {"FILES": "/srv/init.sh  /srv/key.pub", "HOSTNAME": "a"})]
    )  # fmt: skip
    assert script("prolog", tmpl, AT) == [
        "CLONE fe:/srv/a.img host01:/vm/7/images/disk.0",
        "MKSWAP 64 host01:/vm/7/images/disk.1",
        "MKIMAGE 128 ext3 host01:/vm/7/images/disk.2",
        "LN host02:/srv/b.img host01:/vm/7/images/disk.3 512",
        "CONTEXT /var/one/7/context.sh /srv/init.sh /srv/key.pub host01:/vm/7/images/disk.4",
    ]
    assert script("epilog", tmpl, AT) == [
        "MV host01:/vm/7/images/disk.0 fe:/var/one/7/disk.0",
        "DELETE host01:/vm/7/images",
    ]
    assert script("migrate", tmpl, AT) == ["MV host02:/vm/7/images host01:/vm/7/images"]


def test_image_disks_clone_or_link_and_a_saved_disk_goes_into_its_image():
    """A non-persistent image is cloned; a persistent one is linked (CLONE = NO) and moved back
    onto its own file at the epilog (SAVE_AS_SOURCE); a disk saved by one.vm.savedisk goes into
    its new image; a 1.4 SAVE = yes disk still goes to L/disk.i."""
    tmpl = Template(
        [("DISK", {"IMAGE_ID": "0", "SOURCE": "/repo/0", "CLONE": "YES", "SAVE": "NO"}),
         ("DISK", {"IMAGE_ID": "1", "SOURCE": "/repo/1", "CLONE": "NO", "SAVE": "YES",
                   "SAVE_AS_SOURCE": "/repo/1"}),
         ("DISK", {"SOURCE": "/srv/data.img", "SAVE": "YES", "SAVE_AS": "5",
                   "SAVE_AS_SOURCE": "/repo/5"}),
         ("DISK", {"SOURCE": "/srv/old.img", "SAVE": "yes"})]
    )  # fmt: skip
    assert script("prolog", tmpl, AT) == [
        "CLONE fe:/repo/0 host01:/vm/7/images/disk.0",
        "LN fe:/repo/1 host01:/vm/7/images/disk.1",
        "CLONE fe:/srv/data.img host01:/vm/7/images/disk.2",
        "CLONE fe:/srv/old.img host01:/vm/7/images/disk.3",
    ]
    assert script("epilog", tmpl, AT) == [
        "MV host01:/vm/7/images/disk.1 fe:/repo/1",
        "MV host01:/vm/7/images/disk.2 fe:/repo/5",
        "MV host01:/vm/7/images/disk.3 fe:/var/one/7/disk.3",
        "DELETE host01:/vm/7/images",
    ]


def test_a_newline_in_disk_source_stays_one_argument_of_one_command():
    """Finding 1: SOURCE = "/x/img H:/x/d\\nDELETE H:/victim\\nCLONE /x/img" added a DELETE of
    the user's choosing; now the script is one CLONE whose source is that whole (missing) path."""
    lines = script("prolog", disk(source=INJECTED), AT)
    assert len(lines) == 1
    assert read_back(lines) == [Command("CLONE", (INJECTED, "host01:/vm/7/images/disk.0"))]


def test_a_space_in_disk_source_adds_no_argument():
    """Finding 1: a space in SOURCE wrote a file of the user's choosing (a third argument)."""
    source = "/srv/a.img host01:/etc/cron.d/owned"
    lines = script("prolog", disk(source=source, clone="no"), AT)
    assert read_back(lines) == [Command("LN", (source, "host01:/vm/7/images/disk.0"))]


def test_a_newline_in_a_disk_size_or_format_is_refused_by_the_driver_not_run():
    """SIZE and FORMAT are one word each too, and one_tm refuses them as sizes and formats."""
    for tmpl in (
        disk(type="swap", size="64\nDELETE host01:/victim"),
        disk(type="fs", size="64", format="ext3 host01:/victim"),
        disk(source="/srv/a.img", size="1 host01:/victim"),
    ):
        lines = script("prolog", tmpl, AT)
        assert len(lines) == 1
        with pytest.raises(ValueError, match=r"not a positive number|is not one of"):
            read_back(lines)


def test_context_files_are_split_on_blanks_and_each_file_is_one_word():
    """Finding 1/2: FILES is a blank-separated list (its grammar); a newline in it makes more
    files of the one CONTEXT command, never a new command, and one_tm refuses a relative one."""
    tmpl = Template([("CONTEXT", {"FILES": "/srv/init.sh\nDELETE host01:/victim"})])
    lines = script("prolog", tmpl, AT)
    assert [decode_words(line) for line in lines] == [
        ["CONTEXT", "/var/one/7/context.sh", "/srv/init.sh", "DELETE", "host01:/victim",
         "host01:/vm/7/images/disk.0"],
    ]  # fmt: skip
    with pytest.raises(ValueError, match="'DELETE' is not an absolute path"):
        read_back(lines)


TEXT = st.text() | st.sampled_from(["", " ", "\n", "a b", INJECTED, "64", "ext3", "/srv/a.img"])
DISK = st.fixed_dictionaries(
    {"SOURCE": TEXT, "SIZE": TEXT},
    optional={"TYPE": st.sampled_from(["swap", "fs", "disk"]), "FORMAT": TEXT,
              "CLONE": st.sampled_from(["yes", "no"]), "SAVE": st.sampled_from(["yes", "no"]),
              "SAVE_AS_SOURCE": TEXT},
)  # fmt: skip


@given(
    st.lists(DISK, max_size=4),
    st.none() | st.dictionaries(st.sampled_from(["FILES", "TARGET"]), TEXT, min_size=1),
    st.sampled_from(KINDS),
)
def test_any_template_gives_a_script_that_reads_back_as_exactly_its_commands(disks, ctx, kind):
    """The TM script property: whatever the values, the driver reads one command a line and
    exactly the arguments oned meant, or refuses the script; never another command."""
    tmpl = Template([("DISK", d) for d in disks] + ([("CONTEXT", ctx)] if ctx is not None else []))
    try:
        meant = commands(kind, tmpl, AT)
    except TransferError:
        return
    lines = script(kind, tmpl, AT)
    assert len(lines) == len(meant) and all("\n" not in line for line in lines)
    assert [tuple(decode_words(line)) for line in lines] == [tuple(c) for c in meant]
    try:
        read = read_back(lines)
    except ValueError:
        return
    assert read == [Command(c[0], tuple(c[1:])) for c in meant]


# ---------------------------------------------------------------------------------------------
# context.sh, sourced by a real sh as the guest's vmcontext.sh does


def source(tmp_path: Path, text: str, names: list[str]) -> list[str]:
    """Each variable's value after ``set -a; . ./context.sh`` in sh (as share/vmcontext.sh)."""
    (tmp_path / "context.sh").write_text(text)
    show = "".join(f'printf "%s\\0" "${name}"; ' for name in names)
    done = subprocess.run(
        ["sh", "-c", f"set -a; . ./context.sh; set +a; {show}"],
        cwd=tmp_path, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.decode().split("\0")[:-1]


HOSTILE_VALUES = [
    "`touch ran-backquote`",
    "$(touch ran-dollar)",
    '"; touch ran-quote; x="',
    "'; touch ran-single; '",
    "\\`touch ran-escaped\\`",
    "ends in a backslash\\",
    "two\nlines; touch ran-newline",
    "$HOME ${PATH} $1 $$",
    "plain",
]


def test_context_values_come_back_literally_and_nothing_in_them_runs(tmp_path):
    """Finding 2: context.sh did not escape backquotes, so a CONTEXT value ran in the guest."""
    names = [f"V{i}" for i in range(len(HOSTILE_VALUES))]
    text = context_sh(dict(zip(names, HOSTILE_VALUES, strict=True)))
    assert source(tmp_path, text, names) == HOSTILE_VALUES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["context.sh"]


def test_context_sh_keeps_opennebulas_form_for_plain_values():
    """First line, then KEY="value" with the key upper-cased (reference §6.2)."""
    assert context_sh({"hostname": "web", "ip": "10.0.0.2"}) == (
        '# Context variables generated by OpenNebula\nHOSTNAME="web"\nIP="10.0.0.2"\n'
    )


@pytest.mark.parametrize("key", ["A-B", "1X", "X Y", "A;touch x", "é"])
def test_a_context_key_that_is_not_a_shell_variable_name_is_refused(key):
    """context.sh is sourced: a key must be [A-Za-z_][A-Za-z0-9_]*, else the prolog fails."""
    with pytest.raises(TransferError, match="is not a shell variable name"):
        context_sh({key: "v"})


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text().filter(lambda v: "\0" not in v), min_size=1, max_size=10))
def test_any_context_value_comes_back_literally_from_sh(tmp_path_factory, values):
    """Any text without NUL (which sh cannot hold, and context_sh refuses) survives sourcing."""
    tmp_path = tmp_path_factory.mktemp("ctx")
    names = [f"V{i}" for i in range(len(values))]
    assert source(tmp_path, context_sh(dict(zip(names, values, strict=True))), names) == values
