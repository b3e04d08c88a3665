"""onevm recover (issue 11): each flag is one.vm.recover's operation, for each VM named."""

from __future__ import annotations

import pytest

from tests.unit.test_cli_onevm_actions import run


@pytest.mark.parametrize(
    ("flag", "operation"), [("--failure", 0), ("--success", 1), ("--retry", 2), ("--delete", 3)]
)
def test_recover_sends_the_operation_of_its_flag_for_each_vm(flag, operation):
    """onevm recover --success 1 one-2: one call per VM, names resolved first."""
    rc, out, err, calls = run(
        ["recover", flag, "1", "one-2"], {"one.vm.recover": lambda vid, op: vid}
    )
    assert (rc, err) == (0, "")
    assert [c for c in calls if c[0] == "one.vm.recover"] == [
        ("one.vm.recover", 1, operation),
        ("one.vm.recover", 2, operation),
    ]


def test_recover_without_a_known_operation_is_an_error_naming_the_flags():
    """A word that is no flag: nothing is sent."""
    rc, out, err, calls = run(["recover", "--now", "1"])
    assert rc != 0 and not [c for c in calls if c[0] == "one.vm.recover"]


def test_recover_needs_exactly_one_operation():
    """No flag, or two of them: a usage error, nothing sent."""
    for argv in (["recover", "1"], ["recover", "--success", "--retry", "1"]):
        rc, out, err, calls = run(argv)
        assert rc != 0 and not [c for c in calls if c[0] == "one.vm.recover"]


def test_create_hold_sends_allocate_with_hold_and_plain_create_the_1_4_form(tmp_path):
    """onevm create --hold FILE: one.vm.allocate(text, true); without it, 1.4's one argument."""
    template = tmp_path / "vm.one"
    template.write_text("NAME = a\nMEMORY = 64\n")
    rc, _, err, calls = run(["create", "--hold", str(template)], {"one.vm.allocate": lambda *a: 7})
    assert (rc, err) == (0, "")
    assert ("one.vm.allocate", "NAME = a\nMEMORY = 64\n", True) in calls
    rc, _, _, calls = run(["create", str(template)], {"one.vm.allocate": lambda *a: 8})
    assert rc == 0 and ("one.vm.allocate", "NAME = a\nMEMORY = 64\n") in calls
