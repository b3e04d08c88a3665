"""REQUIREMENTS and RANK (reference §7.3): grammar, globbing, arithmetic, errors, explanations."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oned.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_STRING,
    ExpressionError,
    explain,
    number_of,
    parse_rank,
    parse_requirements,
)

HOST = {
    "HOSTNAME": "host02",
    "NAME": "host02",
    "HYPERVISOR": "kvm",
    "ARCH": "x86_64",
    "MODELNAME": "Intel(R) Core(TM)2 Duo CPU",
    "TOTALCPU": "200",
    "FREECPU": "184.0",
    "USEDCPU": "16.0",
    "TOTALMEMORY": "2017004",
    "FREEMEMORY": "1848172",
    "RUNNING_VMS": 3,
    "FREE_CPU": 184,
    "EMPTY": "",
    "CUSTOM": "gold",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("   ", True),
        ('HOSTNAME = "host02"', True),
        ('HOSTNAME = "host09"', False),
        ('HOSTNAME != "host09"', True),
        ('HOSTNAME ! = "host02"', False),
        ("HOSTNAME = host02", True),
        ("hostname = host02", True),
        ("TOTALCPU = 200", True),
        ("TOTALCPU != 200", False),
        ("TOTALCPU > 199", True),
        ("TOTALCPU > 200", False),
        ("TOTALCPU < 201", True),
        ("FREECPU > 183.5", True),
        ("FREECPU = 184", True),
        ("RUNNING_VMS < 4", True),
        ("RUNNING_VMS > -1", True),
        ("RUNNING_VMS = 3.0", True),
        ('CUSTOM = "gold"', True),
        ("TOTALCPU > 100 & ARCH = x86_64", True),
        ("TOTALCPU > 300 | ARCH = x86_64", True),
        ("TOTALCPU > 300 & ARCH = x86_64", False),
        ("! (TOTALCPU > 300)", True),
        ("!TOTALCPU > 300", True),
        ("!!(TOTALCPU > 300)", False),
        ("((((HYPERVISOR = kvm))))", True),
        ('HYPERVISOR = "kvm" & (ARCH = "i686" | ARCH = "x86_64")', True),
    ],
)
def test_requirements_evaluate_as_the_grammar_table_says(text, expected):
    """Comparisons on numbers and strings, combinators, negation, parentheses, case."""
    assert parse_requirements(text)(HOST) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('HOSTNAME = "host0*"', True),
        ('HOSTNAME = "host?2"', True),
        ('HOSTNAME = "host[0-1]*"', True),
        ('HOSTNAME = "host[1-9]*"', False),
        ('HOSTNAME = "host[0-9][0-9]"', True),
        ('HOSTNAME = "*"', True),
        ('HOSTNAME = "HOST02"', False),
        ('HOSTNAME != "web*"', True),
        ('MODELNAME = "*Core*"', True),
        ('HOSTNAME = "host"', False),
    ],
)
def test_string_comparisons_are_shell_globs(text, expected):
    """`*`, `?` and `[..]` match as fnmatch does, case-sensitively, on the whole value."""
    assert parse_requirements(text)(HOST) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('MISSING = "x"', False),
        ('MISSING != "x"', False),
        ('EMPTY = "*"', False),
        ('EMPTY != "x"', False),
        ("MISSING = 0", True),
        ("MISSING != 0", False),
        ("MISSING > -1", True),
        ("HOSTNAME = 0", True),
    ],
)
def test_missing_attributes_read_as_opennebula_reads_them(text, expected):
    """Strings: an empty or missing attribute is false for = and !=; numbers: it reads as 0."""
    assert parse_requirements(text)(HOST) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TOTALCPU > 300 | ARCH = x86_64 & CUSTOM = silver", False),
        ("ARCH = x86_64 & CUSTOM = silver | TOTALCPU > 100", True),
        ("! ARCH = i686 & CUSTOM = gold", True),
        ("TOTALCPU > 300 & CUSTOM = silver | ARCH = x86_64", True),
    ],
)
def test_and_or_and_not_share_one_left_associative_level(text, expected):
    """As OpenNebula's grammar: `a | b & c` is `(a | b) & c`."""
    assert parse_requirements(text)(HOST) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0.0),
        ("7", 7.0),
        ("2.5", 2.5),
        ("FREECPU", 184.0),
        ("- RUNNING_VMS", -3.0),
        ("--RUNNING_VMS", 3.0),
        ("RUNNING_VMS * 50 + FREE_CPU", 334.0),
        ("- (RUNNING_VMS * 50 + FREE_CPU)", -334.0),
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),
        ("100 / 10 / 5", 2.0),
        ("TOTALCPU / 0", 0.0),
        ("MISSING + 1", 1.0),
        ("HOSTNAME * 2", 0.0),
        ("freecpu - usedcpu", 168.0),
    ],
)
def test_rank_is_arithmetic_with_the_usual_precedence(text, expected):
    """+ - * /, unary minus, parentheses; missing or non-numeric attributes read as 0."""
    assert parse_rank(text)(HOST) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("HOSTNAME = @", 12, "unexpected '@'"),
        ('HOSTNAME = "host02', 12, "unterminated string"),
        ("TOTALCPU >= 100", 11, "unexpected '=', expecting a number (there is no >= or <="),
        ("TOTALCPU <= 100", 11, "unexpected '='"),
        ("100 < TOTALCPU", 1, "unexpected '100', expecting an attribute name"),
        ("TOTALCPU > abc", 12, "expecting a number"),
        ("TOTALCPU > ", 12, "unexpected end of expression, expecting a number"),
        ("(ARCH = x86_64", 15, "unexpected end of expression, expecting ')'"),
        ("ARCH = x86_64)", 14, "unexpected ')', expecting an operator or the end"),
        ("ARCH x86_64", 6, "unexpected 'x86_64', expecting =, !=, > or <"),
        ("ARCH = x86_64 && A = 1", 16, "unexpected '&'"),
        ("A = 1 B = 2", 7, "unexpected 'B'"),
        ("A = 1.5.3", 8, "unexpected '.'"),
    ],
)
def test_requirement_errors_name_the_column_and_the_token(text, column, message):
    """ExpressionError carries the 1-based column; its message names the offending token."""
    with pytest.raises(ExpressionError) as info:
        parse_requirements(text)
    assert info.value.position == column
    assert message in info.value.message
    assert str(info.value).startswith(f"syntax error at column {column}: ")


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("FREECPU +", 10, "unexpected end of expression"),
        ("RUNNING_VMS ^ 2", 13, "unexpected '^'"),
        ('"text"', 1, "unexpected '\"text\"'"),
        ("2 3", 3, "unexpected '3'"),
        ("(1 + 2", 7, "expecting ')'"),
        ("FREECPU > 3", 9, "unexpected '>'"),
        ("A $ B", 3, "unexpected '$'"),
    ],
)
def test_rank_errors_name_the_column_and_the_token(text, column, message):
    """The same error form for RANK."""
    with pytest.raises(ExpressionError) as info:
        parse_rank(text)
    assert (info.value.position, message in info.value.message) == (column, True)


def test_nesting_deeper_than_the_limit_is_an_expression_error():
    """Thousands of parentheses are refused with a position, not a RecursionError."""
    deep = "(" * (MAX_DEPTH + 1) + "A = 1" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ExpressionError) as info:
        parse_requirements(deep)
    assert info.value.position == MAX_DEPTH + 1
    with pytest.raises(ExpressionError):
        parse_rank("(" * 5000 + "1" + ")" * 5000)
    assert parse_requirements("(" * MAX_DEPTH + "A = 1" + ")" * MAX_DEPTH)({"A": "1"})


def test_long_chains_evaluate_without_deep_recursion():
    """A thousand-term chain or sum is flat: no recursion limit is reached."""
    requirement = parse_requirements(" | ".join(f"A = {i}" for i in range(3000)))
    assert requirement({"A": 2999}) is True
    assert parse_rank(" + ".join(["1"] * 3000))({}) == 3000.0
    assert parse_requirements("!" * 5001 + "A = 1")({"A": 1}) is False


def test_compiled_expressions_are_cached_by_text():
    """Many VMs with one template compile their expressions once."""
    assert parse_requirements("ARCH = x86_64") is parse_requirements("ARCH = x86_64")
    assert parse_rank("FREECPU") is parse_rank("FREECPU")


@pytest.mark.parametrize(
    ("text", "explanation"),
    [
        ('HOSTNAME = "host09"', 'HOSTNAME = "host09" is false (HOSTNAME is "host02")'),
        ("TOTALCPU > 400", "TOTALCPU > 400 is false (TOTALCPU is 200)"),
        ("RUNNING_VMS > 5", "RUNNING_VMS > 5 is false (RUNNING_VMS is 3)"),
        ("GPU = yes", "GPU = yes is false (GPU is not set)"),
        ("ARCH = x86_64 & TOTALCPU > 400", "TOTALCPU > 400 is false (TOTALCPU is 200)"),
        (
            "ARCH = i686 | TOTALCPU > 400",
            'ARCH = i686 is false (ARCH is "x86_64"); TOTALCPU > 400 is false (TOTALCPU is 200)',
        ),
        ('! (ARCH = "x86_*")', 'ARCH = "x86_*" is true (ARCH is "x86_64")'),
        ("", "no REQUIREMENTS (always true)"),
    ],
)
def test_explain_names_the_comparisons_that_decided(text, explanation):
    """The scheduler's reason says which comparison failed and what the host has."""
    assert explain(parse_requirements(text), HOST) == explanation


def test_explain_names_at_most_a_few_comparisons():
    """A long failing disjunction is summed up."""
    text = " | ".join(f"A = {i}" for i in range(10))
    assert explain(parse_requirements(text), {"A": 99}).endswith("; and 7 more")


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("184.0", 184.0),
        (" 12abc", 12.0),
        ("abc", 0.0),
        ("", 0.0),
        (None, 0.0),
        (7, 7),
        ("1e999", 0.0),
        (float("nan"), 0.0),
        ("-3", -3.0),
        (".5", 0.5),
    ],
)
def test_attribute_values_read_as_their_leading_number(value, number):
    """NOTE: OpenNebula reads numeric attributes with istringstream: the leading number counts."""
    assert number_of(value) == number


# --- properties ----------------------------------------------------------------------------

_ALPHABET = st.sampled_from(list('!&|=<>()*+/^-" \tABCxyz019._$@\n'))


@settings(max_examples=400, deadline=None)
@given(st.text(_ALPHABET, max_size=40) | st.text(max_size=20))
def test_random_text_raises_only_expression_errors(text):
    """No input crashes either parser with anything but ExpressionError."""
    for compile_expression in (parse_requirements, parse_rank):
        try:
            compile_expression(text)
        except ExpressionError as e:
            assert 1 <= e.position <= len(text) + 1


_NAMES = st.sampled_from(["TOTALCPU", "FREECPU", "HOSTNAME", "ARCH", "MISSING", "EMPTY"])
_NUMBERS = st.integers(-1000, 1000).map(str) | st.floats(0, 1e6).map(lambda f: f"{f:.3f}")
_COMPARISONS = st.tuples(_NAMES, st.sampled_from(["=", "!=", ">", "<"]), _NUMBERS).map(" ".join)
_GLOBS = st.tuples(_NAMES, st.sampled_from(["=", "!="]), st.text("ab*?[]x", max_size=5)).map(
    lambda t: f'{t[0]} {t[1]} "{t[2]}"'
)


def _combined(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["&", "|"]), children).map(" ".join),
        children.map(lambda c: f"!({c})"),
        children.map(lambda c: f"({c})"),
    )


_REQUIREMENTS = st.recursive(_COMPARISONS | _GLOBS, _combined, max_leaves=12)
_ATOMS = _NAMES | _NUMBERS
_RANKS = st.recursive(
    _ATOMS,
    lambda c: (
        st.tuples(c, st.sampled_from(["+", "-", "*", "/"]), c).map(" ".join)
        | c.map(lambda x: f"-({x})")
    ),
    max_leaves=12,
)
_HOSTS = st.fixed_dictionaries(
    {},
    optional={
        "TOTALCPU": st.integers(0, 10**6) | st.text(max_size=5),
        "FREECPU": st.floats(allow_nan=True) | st.text(max_size=5),
        "HOSTNAME": st.text(max_size=8),
        "ARCH": st.text(max_size=8),
        "EMPTY": st.just(""),
    },
)


@settings(max_examples=300, deadline=None)
@given(_REQUIREMENTS, _HOSTS)
def test_generated_requirements_parse_and_evaluate_to_a_boolean(text, host):
    """Every sentence of the grammar parses, and evaluating it never raises."""
    requirement = parse_requirements(text)
    assert requirement(host) in (True, False)
    assert isinstance(explain(requirement, host), str)


@settings(max_examples=300, deadline=None)
@given(_RANKS, _HOSTS)
def test_generated_ranks_parse_and_evaluate_to_a_finite_number(text, host):
    """RANK never raises and never answers inf or nan (they would break the ordering)."""
    assert math.isfinite(parse_rank(text)(host))


def test_an_int_attribute_past_floats_range_reads_as_zero():
    """Fuzzing finding (issue 10): an int attribute over 1e308 raised OverflowError in RANK
    arithmetic and in number_of; it now counts as a non-finite number, 0."""
    host = {"BIG": 10**400, "ONE": 1}
    assert number_of(10**400) == 0.0 and number_of(True) == 1.0
    assert parse_rank("BIG * 1.5 + ONE")(host) == 1.0
    assert parse_requirements("BIG > 0")(host) is False


def test_expressions_longer_than_max_length_are_refused():
    """Fuzzing finding (issue 10): a megabyte of "!" took the compiler seconds."""
    with pytest.raises(ExpressionError, match="longer than"):
        parse_requirements("!" * MAX_LENGTH + "A = 1")
    with pytest.raises(ExpressionError, match="longer than"):
        parse_rank("-" * MAX_LENGTH + "1")
    assert parse_requirements("!" * (MAX_LENGTH - 6) + "A = 1")({"A": 1}) is True


def test_globs_longer_than_max_string_are_refused():
    """Fuzzing finding (issue 10): compiling a 64 KiB "*a*a..." glob took a second."""
    with pytest.raises(ExpressionError, match="string longer than") as caught:
        parse_requirements('A = 1 & B = "' + "*a" * MAX_STRING + '"')
    assert caught.value.position == 13
    assert parse_requirements('A = "' + "*a" * (MAX_STRING // 2) + '"')({"A": "a" * 3000})
