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


@pytest.mark.parametrize(
    "text",
    [
        'REQUIREMENTS = "HOSTNAME = \\"host02\\""',
        'REQUIREMENTS = "HOSTNAME = \\"host0*\\" & TOTALCPU > 100 | ! (ARCH = i686)"',
        'REQUIREMENTS = ""',
        'RANK = "- (RUNNING_VMS * 50 + FREE_CPU)"',
        "RANK = FREECPU",
    ],
)
def test_requirements_and_rank_that_parse_are_accepted(text):
    """The expressions of reference §7.3 pass the allocate-time check."""
    assert check_vm_template(parse(text)) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'REQUIREMENTS = "HOSTNAME = @"',
            "REQUIREMENTS = \"HOSTNAME = @\": syntax error at column 12: unexpected '@'",
        ),
        (
            'REQUIREMENTS = "TOTALCPU >= 100"',
            'REQUIREMENTS = "TOTALCPU >= 100": syntax error at column 11',
        ),
        ('RANK = "FREECPU +"', 'RANK = "FREECPU +": syntax error at column 10: unexpected end'),
        (
            'RANK = "RUNNING_VMS ^ 2"',
            "RANK = \"RUNNING_VMS ^ 2\": syntax error at column 13: unexpected '^'",
        ),
    ],
)
def test_requirements_and_rank_that_do_not_parse_are_refused_with_the_column(text, problem):
    """A broken expression is refused at allocate, naming the attribute and the column."""
    problems = check_vm_template(parse(text))
    assert any(p.startswith(problem) for p in problems), problems
