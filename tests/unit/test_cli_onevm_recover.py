"""onevm recover (issue 11): each flag is one.vm.recover's operation, for each VM named."""

from __future__ import annotations

import pytest

from cli import onevm
from tests.unit.test_cli_onevm_actions import run


@pytest.mark.parametrize(
    ("flag", "operation"), [("--failure", 0), ("--success", 1), ("--retry", 2), ("--delete", 3)]
)
def test_recover_sends_the_operation_of_its_flag_for_each_vm(flag, operation):
    """onevm recover --success 1 one-2: one call per VM, names resolved first."""
    argv = onevm._recover_flags(["recover", flag, "1", "one-2"])
    rc, out, err, calls = run(argv, {"one.vm.recover": lambda vid, op: vid})
    assert (rc, err) == (0, "")
    assert [c for c in calls if c[0] == "one.vm.recover"] == [
        ("one.vm.recover", 1, operation),
        ("one.vm.recover", 2, operation),
    ]


def test_recover_without_a_known_operation_is_an_error_naming_the_flags():
    """A word that is no flag: nothing is sent."""
    rc, out, err, calls = run(["recover", "--now", "1"])
    assert rc != 0 and not [c for c in calls if c[0] == "one.vm.recover"]


def test_only_the_words_after_recover_are_taken_for_its_flags():
    """-v before the command stays an option; a VM named "success" elsewhere is untouched."""
    assert onevm._recover_flags(["-v", "recover", "--retry", "3"]) == [
        "-v",
        "recover",
        "retry",
        "3",
    ]
    assert onevm._recover_flags(["show", "--success"]) == ["show", "--success"]
