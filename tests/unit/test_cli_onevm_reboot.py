"""``onevm reboot [--hard]``: the modern action names on the wire, --help, refusals."""

from __future__ import annotations

from oned.client import OneCallError
from tests.unit.test_cli_onevm_actions import run


def test_reboot_sends_reboot_and_hard_sends_reboot_hard():
    """Modern OpenNebula's one.vm.action names, which onecloud's oned takes too."""
    rc, out, err, calls = run(["reboot", "2"], {"one.vm.action": 2})
    assert (rc, out, err, calls) == (0, "", "", [("one.vm.action", "reboot", 2)])
    calls = run(["reboot", "--hard", "ttylinux", "2"], {"one.vm.action": 0})[3]
    assert calls == [
        ("one.vmpool.info", -2, -1, -1, -1),
        ("one.vm.action", "reboot-hard", 1),
        ("one.vm.action", "reboot-hard", 2),
    ]
    assert run(["reboot", "-v", "2"], {"one.vm.action": 2})[1] == "Rebooting VM\n"


def test_a_reboot_oned_refuses_is_its_message_and_exit_255():
    def refuse(action: str, vid: int) -> int:
        raise OneCallError(f"[one.vm.action] VM {vid} is PENDING: {action} is allowed in "
                           "ACTIVE/RUNNING", 0x800)  # fmt: skip

    rc, out, err, _ = run(["reboot", "1"], {"one.vm.action": refuse})
    assert (rc, out) == (255, "")
    assert err == ("Error: [one.vm.action] VM 1 is PENDING: reboot is allowed in ACTIVE/RUNNING\n")


def test_reboot_help_names_the_hard_flag(capsys):
    assert run(["reboot", "--help"])[0] == 0
    assert "--hard" in capsys.readouterr().out
