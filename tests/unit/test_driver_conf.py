"""A driver's configuration file under etc/ as the defaults of its options (issue 16 item 6):
read with the drivers' real parsers, the arguments of oned.conf winning."""

from __future__ import annotations

import re

import pytest

from drivers import im_ssh, tm, vmm_kvm


@pytest.fixture
def etc(tmp_path, monkeypatch):
    monkeypatch.setenv("ONE_LOCATION", str(tmp_path))
    return tmp_path / "etc"


def write(etc, name: str, text: str) -> None:
    path = etc / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_tm_file_sets_options_and_the_arguments_win(etc):
    write(etc, "tm_ssh/tm_ssh.conf", "# the shipped comments\n\nTIMEOUT = 42\nCONCURRENCY=3\n")
    args = tm.parse_args(["tm_ssh/tm_ssh.conf"])
    assert (args.set, args.timeout, args.concurrency) == ("ssh", 42, 3)
    assert tm.parse_args(["tm_ssh/tm_ssh.conf --timeout 7"]).timeout == 7


def test_a_vm_mad_default_file_sets_the_vmm_options_and_is_no_argument_itself(etc):
    write(etc, "vmm_kvm/vmm_kvm.conf", 'DOMAIN_TYPE = "qemu"\nUNSAFE_MIGRATION = YES\n')
    args = vmm_kvm.parse_args(["vmm_kvm/vmm_kvm.conf"])
    assert (args.domain_type, args.unsafe_migration) == ("qemu", True)
    write(etc, "vmm_kvm/vmm_kvm.conf", "UNSAFE_MIGRATION = no\n")
    assert vmm_kvm.parse_args(["vmm_kvm/vmm_kvm.conf"]).unsafe_migration is False


def test_a_missing_file_is_no_error_and_an_im_file_names_the_probe_set(etc):
    assert im_ssh.parse_args(["im_kvm/im_kvm.conf"]).hypervisor == "kvm"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("NO_SUCH = 1\n", r"tm_ssh.conf line 1: NO_SUCH is not an option of one_tm"),
        ("TIMEOUT 42\n", r"tm_ssh.conf line 1: not NAME = value"),
        ("# ok\nTIMEOUT = soon\n", r"argument --timeout"),
    ],
)
def test_a_bad_line_stops_the_driver_naming_the_file_and_line(etc, capsys, text, error):
    write(etc, "tm_ssh/tm_ssh.conf", text)
    with pytest.raises(SystemExit):
        tm.parse_args(["tm_ssh/tm_ssh.conf"])
    assert re.search(error, capsys.readouterr().err)
