"""VM templates are checked at allocate, each problem naming its attribute."""

import pytest

from oned.template import parse
from oned.vmtemplate import check_vm_template


def test_the_seed_ttylinux_template_is_accepted():
    """The workshop's VM as written there."""
    text = """NAME = ttylinux
CPU = 0.1
MEMORY = 64
DISK = [ source = "/srv/cloud/images/ttylinux/ttylinux.img", target = "hda", readonly = "no" ]
NIC = [ NETWORK = "One-TD" ]
FEATURES = [ acpi="no" ]
GRAPHICS = [ type = "vnc", listen = "loclahost", port = "5902", keymap="es"]
"""
    assert check_vm_template(parse(text)) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("MEMORY = lots", 'MEMORY = "lots": must be a positive integer'),
        ("MEMORY = 0", 'MEMORY = "0": must be a positive integer'),
        ("CPU = -1", 'CPU = "-1": must be a positive number'),
        ("VCPU = 1.5", 'VCPU = "1.5": must be a positive integer'),
        ("MEMORY = [ a = b ]", 'MEMORY = "[...]"'),
        ("DISK = disk.img", "DISK must be a vector attribute"),
        ("NIC = eth0", "NIC must be a vector attribute"),
        ("REQUIREMENTS = [ a = b ]", "REQUIREMENTS must be a single attribute"),
        ('NAME = "a\nb"', "NAME"),
    ],
)
def test_wrong_values_are_reported_by_attribute(text, problem):
    """One line per problem, starting from the attribute's name."""
    problems = check_vm_template(parse(text))
    assert any(problem in p for p in problems), problems
