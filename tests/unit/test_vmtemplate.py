"""VM templates are checked at allocate, each problem naming its attribute."""

import pytest

from oned.template import Template, parse
from oned.template_xml import parse_xml
from oned.vmtemplate import (
    MAX_ATTRIBUTES,
    MAX_TEMPLATE_SIZE,
    MAX_VALUE_LENGTH,
    check_bounds,
    check_size,
    check_vm_template,
)


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
        ("MEMORY = 16777217", 'MEMORY = "16777217": must be at most 16777216'),
        ("CPU = 1024.5", 'CPU = "1024.5": must be at most 1024'),
        ("VCPU = 99999999999999999999", "must be at most 1024"),
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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'DISK = [ SOURCE = "/x/img H:/x/d\nDELETE H:/victim" ]',
            "DISK/SOURCE contains a control character (\\n)",
        ),
        ('NAME = "a\tb"', "NAME contains a control character (\\t)"),
        ('CONTEXT = [ X = "a\rb" ]', "CONTEXT/X contains a control character (\\r)"),
        ('A = "\x00"', "A contains a control character (\\x00)"),
        ('A = "\x7f"', "A contains a control character (\\x7f)"),
        ('A = "\x85"', "A contains a control character (\\x85)"),
        ('A = "x\u2028y"', "A contains a control character (\\u2028)"),
    ],
)
def test_a_control_character_anywhere_is_refused_naming_the_attribute(text, problem):
    """Issue 10, finding 1: a newline in DISK SOURCE added whole commands to a TM script."""
    assert check_bounds(parse(text)) == [problem]


def test_a_control_character_in_an_xml_template_is_refused_too():
    """pyone's XML form reaches the same check (a newline in CDATA, a tab as a reference)."""
    tmpl = parse_xml("<T><DISK><SOURCE><![CDATA[/a\nb]]></SOURCE></DISK><B>&#9;</B></T>")
    assert check_bounds(tmpl) == [
        "DISK/SOURCE contains a control character (\\n)",
        "B contains a control character (\\t)",
    ]


def test_ordinary_values_pass_the_bounds():
    """Quotes, unicode, ssh keys and 64 KiB of base64 user data are fine."""
    text = (
        'NAME = "vm \\"été\\""\nCONTEXT = [ SSH_KEY = "ssh-rsa AAAA me@h", '
        f'USER_DATA = "{"QUJD" * (MAX_VALUE_LENGTH // 4)}" ]'
    )
    assert check_bounds(parse(text)) == []


def test_a_template_too_long_is_refused_before_parsing():
    """Issue 10, finding 5: a VM of 100,000 attributes stalled oned for 4 s."""
    assert check_size("A=1\n" * (MAX_TEMPLATE_SIZE // 4)) is None
    problem = check_size("A=1\n" * (MAX_TEMPLATE_SIZE // 4 + 1))
    assert problem is not None and "MAX_TEMPLATE_SIZE" in problem


def test_too_many_attributes_and_too_long_values_are_refused():
    """Vector keys count as attributes; a value may hold at most MAX_VALUE_LENGTH characters."""
    keys = {f"K{i}": "1" for i in range(MAX_ATTRIBUTES)}
    assert check_bounds(Template([("V", keys)])) == []
    assert "MAX_ATTRIBUTES" in check_bounds(Template([("V", keys), ("A", "1")]))[0]
    long = Template([("C", {"U": "x" * (MAX_VALUE_LENGTH + 1)})])
    assert check_bounds(long) == [
        f"C/U is longer than MAX_VALUE_LENGTH ({MAX_VALUE_LENGTH} characters)"
    ]


def test_a_name_outside_the_template_alphabet_is_refused():
    """The parsers never produce one; a template built otherwise is still checked."""
    tmpl = Template.trusted([("A-B", "1"), ("V", {"K\n": "1"})])
    assert [p.split(" is ")[0] for p in check_bounds(tmpl)] == ["'A-B'", "'V/K\\n'"]
