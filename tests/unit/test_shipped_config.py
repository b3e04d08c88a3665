"""The configuration files an install ships (issue 16, item 6): every file oned.conf.example or
the README names under etc/ is in share/etc/ (or made by oned or the operator), sched.conf
documents every knob mm_sched reads with its real default, each driver file documents every
option of its driver, and install.sh copies the top-level ones into etc/ without overwriting."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from scheduler.config import IGNORED, KNOBS, Settings, load_settings
from tests.unit.test_install_script import bash

REPO = Path(__file__).resolve().parents[2]
SHARE_ETC = REPO / "share" / "etc"
# Files under etc/ the docs name that an install does not ship: oned makes the first, the
# operator brings the others (credentials.yaml from the shipped .example), econe.conf is
# shipped as econe.conf.example (an install is not an econe set-up).
NOT_SHIPPED = {
    "ec2_keys.key",
    "oned.conf",  # installed from oned.conf.example
    "oned.crt",
    "oned.key",
    "ec2/credentials.yaml",
    "econe/econe.conf",
}


def named_in_docs() -> set[str]:
    """Paths relative to etc/ that oned.conf.example's drivers or the README's text name."""
    example = (REPO / "oned.conf.example").read_text()
    names = set(re.findall(r'(?:arguments|default)\s*=\s*"([\w.-]+/[\w.-]+\.conf)', example))
    readme = (REPO / "README.md").read_text()
    # $ONE_LOCATION/etc/x, `etc/x` (not /etc/systemd..., which are the system's own)
    names |= set(re.findall(r"(?:ONE_LOCATION/|`)etc/([\w.-]+(?:/[\w.-]+)?)", readme))
    names |= set(re.findall(r"ONE_LOCATION/etc/([\w.-]+(?:/[\w.-]+)?)", example))
    return {n.rstrip(".") for n in names}


def test_every_file_the_docs_name_under_etc_is_shipped():
    named = named_in_docs()
    assert {"sched.conf", "tm_ssh/tm_ssh.conf", "vmm_kvm/vmm_kvm.conf"} <= named
    missing = sorted(n for n in named - NOT_SHIPPED if not shipped(n))
    assert missing == []


def shipped(name: str) -> bool:
    """install.sh copies share/etc/* and templates/ (the examples and instance types) to etc/."""
    if name.startswith("templates/"):
        return (REPO / name).exists()
    return (SHARE_ETC / name).is_file()
    for name in ("defaultrc", "im_kvm/im_kvm.conf", "im_xen/im_xen.conf"):
        assert (SHARE_ETC / name).is_file()


def test_defaultrc_has_the_seeds_one_mad_debug():
    assert "ONE_MAD_DEBUG=" in (SHARE_ETC / "defaultrc").read_text().splitlines()


SCHED = (SHARE_ETC / "sched.conf").read_text()


def test_sched_conf_as_shipped_sets_nothing_and_warns_of_nothing():
    assert load_settings(SCHED, "sched.conf") == Settings()


def test_sched_conf_documents_every_knob_with_its_real_default():
    """Uncommenting every attribute line changes nothing: each documented default is the one
    mm_sched uses (ONE_XMLRPC and ONED_PORT: the default endpoint)."""
    attributes = re.findall(r"^#([A-Z_]+) *= *(.*)$", SCHED, re.M)
    assert sorted(name for name, _ in attributes) == sorted(KNOBS)
    for name in IGNORED:
        assert name in SCHED
    uncommented = "\n".join(f"{name} = {value}" for name, value in attributes)
    settings = load_settings(uncommented, "sched.conf")
    assert settings.endpoint == "http://localhost:2633/RPC2"
    for field in fields(Settings):
        if field.name != "endpoint":
            assert getattr(settings, field.name) == getattr(Settings(), field.name), field.name
    for name, value in attributes:  # "Default: N." in the text says the same
        if name not in ("ONE_XMLRPC", "ONED_PORT"):
            assert re.search(rf"{name}:.*?Default: {re.escape(value)}\.", SCHED, re.S), name


DRIVER_FILES = [
    ("tm", ["ssh"], "tm_ssh/tm_ssh.conf"),
    ("tm", ["nfs"], "tm_nfs/tm_nfs.conf"),
    ("tm", ["dummy"], "tm_dummy/tm_dummy.conf"),
    ("im_ssh", ["kvm"], "im_kvm/im_kvm.conf"),
    ("im_ssh", ["xen"], "im_xen/im_xen.conf"),
    ("im_dummy", [], "im_dummy/im_dummy.conf"),
    ("vmm_kvm", [], "vmm_kvm/vmm_kvm.conf"),
    ("vmm_xen", [], "vmm_xen/vmm_xen.conf"),
]


@pytest.mark.parametrize(("module", "argv", "path"), DRIVER_FILES)
def test_each_driver_file_documents_every_option_of_its_driver(module, argv, path):
    driver = importlib.import_module(f"drivers.{module}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        driver.parse_args([*argv, "--help"])
    options = set(re.findall(r"(--[a-z][a-z-]+)", out.getvalue())) - {"--help"}
    text = (SHARE_ETC / path).read_text()
    assert options and sorted(o for o in options if f"#   {o} " not in text) == []
    assert all(line.startswith("#") for line in text.splitlines()), "the driver reads nothing"
    # the name in the file's path is what the driver takes from it
    if argv:
        assert driver.parse_args([path]).__dict__ == driver.parse_args(argv).__dict__


def test_install_copies_the_top_level_files_once_and_never_over_the_operators(tmp_path):
    location = tmp_path / "one"
    venv = Path(sys.prefix)
    done = bash(
        f'read_locations "{venv}"; mkdir -p "$ETC"; echo mine > "$ETC/sched.conf"; '
        "install_etc_files",
        location,
    )
    assert done.returncode == 0, done.stderr
    etc = location / "etc"
    assert (etc / "sched.conf").read_text() == "mine\n"
    assert (etc / "defaultrc").read_text() == (SHARE_ETC / "defaultrc").read_text()
    assert (etc / "tm_nfs" / "tm_nfs.conf").is_file() and (etc / "im_kvm" / "im_kvm.conf").is_file()
    (etc / "sched.conf").unlink()
    assert bash(f'read_locations "{venv}"; install_etc_files', location).returncode == 0
    assert (etc / "sched.conf").read_text() == SCHED
