"""The fast template parser against the reference token parser (issue 18): same attributes,
same positions, the same error for every input.

``attributes`` (what ``parse`` uses), ``scan`` and ``parse_entries`` read a text with one regex
and hand what does not fit to ``scan_tokens``, the token-by-token transcription of OpenNebula's
grammar that reports every syntax error. Inputs: the fuzz corpus (bench/fuzz.py's seeds and
generator), hypothesis' token soups, rendered templates and their mutations.
"""

from __future__ import annotations

import re
import string
import sys
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import fuzz
from bench.fuzz_inputs import seeds_of
from oned import template_parser
from oned.errors import TemplateSyntaxError
from oned.template import Template, parse
from oned.template_parser import (
    _ITEMS,
    _PLAIN_ITEMS,
    _TOKEN,
    attributes,
    parse_entries,
    position,
    scan,
    scan_tokens,
)

# The reference lexer as it was before issue 18 rewrote its blank-run pattern into a faster,
# equivalent form: both must cut every text into the same tokens.
_TOKEN_BEFORE = re.compile(
    r"(?P<sp>(?:[ \t\r\n]++|\#[^\n]*+)*+)(?:\"(?P<q>[^\"\\]*+(?:\\.[^\"\\]*+)*+)\""
    r"|(?P<w>[^=\#,\[\]\"\ \t\r\n][^=\#,\[\]\ \t\r\n]*+)|(?P<p>[=,\[\]])|(?P<end>\Z)|(?P<bad>\"))",
    re.DOTALL,
)


def _outcome(read, text: str) -> tuple:
    try:
        return ("parsed", read(text))
    except TemplateSyntaxError as error:
        return ("refused", str(error), error.line, error.column)


def _entries_by_tokens(text: str) -> list[tuple]:
    return [(n, v, *position(text, offset)) for n, v, offset in scan_tokens(text)]


def _entries(text: str) -> list[tuple]:
    return [(e.name, e.value, e.line, e.column) for e in parse_entries(text)]


def _tokens(pattern: re.Pattern[str], text: str) -> list[tuple]:
    tokens = []
    for m in pattern.finditer(text):
        tokens.append((m.lastgroup, m.span(m.lastgroup or 0), m.group("sp")))
        if m.lastgroup in ("end", "bad"):
            break
    return tokens


def assert_same_as_the_token_parser(text: str) -> None:
    """Every reader of ``text`` gives what the token parser gives, or its very error; the
    regex for texts without comments or escapes reads them as the full one does."""
    expected = _outcome(scan_tokens, text)
    assert _outcome(scan, text) == expected
    if expected[0] == "parsed":
        pairs = [(name, value) for name, value, _ in expected[1]]
        assert _outcome(attributes, text) == ("parsed", pairs)
        assert _outcome(parse, text) == ("parsed", Template.trusted(pairs))
        assert _entries(text) == _entries_by_tokens(text)
    else:
        assert _outcome(attributes, text) == expected
        assert _outcome(parse, text) == expected
        assert _outcome(_entries, text) == expected
    assert _tokens(_TOKEN, text) == _tokens(_TOKEN_BEFORE, text)
    if "#" not in text and "\\" not in text:
        assert _PLAIN_ITEMS.findall(text) == _ITEMS.findall(text)


def test_the_fuzz_seeds_read_the_same():
    """The hand-written hostile seeds and 500 grammar outputs of bench/fuzz.py."""
    for text in seeds_of("template", Random(18), 500):
        assert_same_as_the_token_parser(text)


@pytest.mark.parametrize("seed", [18, 1818])
def test_the_fuzz_generator_inputs_read_the_same(seed):
    """3,000 inputs each of the fuzzer's random text, mutations and grammar outputs."""
    for text in fuzz.generated("template", 3000, seed):
        assert_same_as_the_token_parser(text)


# Pieces that matter to the grammar, so that short soups hit every branch of both parsers.
_PIECES = [
    *'AB_1=[],#" \t\n\r\\x',
    "=[",
    '""',
    '"\\"',
    "\\\\",
    "\r\n",
    "# c\n",
    " = ",
    "A=1",
    "V=[K=v]",
    "K=v,",
    '"a b"',
    "\u2028",
    "\x00",
    "é",
]
soups = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)
names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=6)
values = st.one_of(st.text(max_size=8), st.text('"\\#\n\r\t[],= x', max_size=8))
templates = st.lists(
    st.tuples(names, st.one_of(values, st.dictionaries(names, values, min_size=1, max_size=3))),
    max_size=6,
).map(Template)


@st.composite
def mutated(draw) -> str:
    """A rendered template with a few characters inserted, deleted or replaced."""
    text = draw(templates).to_text()
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(_PIECES))
        cut = draw(st.integers(0, 2))
        text = text[:at] + piece + text[at + cut :]
    return text


@settings(max_examples=500, deadline=None)
@given(soups)
def test_token_soups_read_the_same(text):
    """Short texts made of the grammar's own characters and fragments."""
    assert_same_as_the_token_parser(text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(mutated(), st.tuples(templates.map(Template.to_text), soups).map("".join)))
def test_templates_with_mistakes_read_the_same(text):
    """Valid templates with a mistake inside or at the end: the fast path hands over midway."""
    assert_same_as_the_token_parser(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n\t\r\n",
        "# only a comment",
        "A=",
        "A=\n",
        "A=#c\nB=1",
        'A=""',
        "A=1B=2",
        'A="x"B=2',
        "A = B = C",
        "A=[B=1,B=2]",
        "A=[B=1\n,C=2]",
        "A=[B=\n1]",
        "A=[B=1,]",
        "A=[]",
        "A=[B=1",
        'A="\\',
        'A="a\\\nb"',
        'A=x"y"',
        'A=[B="]",C=d]',
        "A=[B=1 # ] c\n]",
        "a=[b=1]\nA=2",
        "\u2028A=1",
        "A=1\u2028",
        "1=2\n_=3",
    ],
)
def test_edge_cases_read_the_same(text):
    """Empty texts, empty values, glued attributes, vectors cut short, comments in vectors."""
    assert_same_as_the_token_parser(text)


def test_long_texts_read_the_same_with_an_error_at_the_end():
    """Thousands of attributes, then an error: the fast path gives over at the last one."""
    lines = 'A=1\nV=[K=v, L="w x"]\n' * 300
    for tail in ("", "B=[", "B=[K=v,", "B=", 'B="', "=", "B=[K=v]]"):
        assert_same_as_the_token_parser(lines + tail)


def test_names_and_short_values_are_shared():
    """Issue 18's memory saving stays: names, vector keys and values of up to 32 characters
    are interned; longer values are not."""
    long = "x" * 40
    template = parse(f'name = ab\nV = [ key = "cd", L = {long} ]')
    (name, value), (vname, vector) = list(template)
    assert name is sys.intern("NAME") and value is sys.intern("ab")
    assert vname is sys.intern("V")
    (key, item), (_, long_value) = vector.items()
    assert key is sys.intern("KEY") and item is sys.intern("cd")
    assert long_value == long and long_value is not sys.intern(long)


def test_the_name_cache_stays_bounded():
    """A template of 10,000 new names does not grow the cache of upper-cased names past
    its bound; the names still read right."""
    text = "".join(f"n{i}x = {i}\n" for i in range(10000))
    assert [name for name, _ in attributes(text)][-1] == "N9999X"
    assert len(template_parser._NAMES) <= template_parser._NAMES_MAX
