"""The template language's text parser: OpenNebula's grammar, positions and errors (§6.1).

``parse_entries`` gives every attribute of a template text in order with the line and column of
its name; ``scan`` gives (NAME, value, offset) triples, which ``oned.template.parse`` makes a
``Template`` of. ``scan`` matches whole attributes with one regex each and hands what does not
fit that common shape to ``scan_tokens``, the reference parser, which alone reports syntax
errors with OpenNebula's (bison's) words. Rendering text and the ``Template`` class are
oned/template.py; XML is read in oned/template_xml.py. Pure module: no I/O.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from oned.errors import TemplateSyntaxError

Value: TypeAlias = str | dict[str, str]

NAME = re.compile(r"[A-Za-z0-9_]+")

# Blanks, newlines and comments; a quoted value (group q, still escaped); an unquoted value or
# a name (group w). Blanks are " \t\r" so that CRLF files read like LF files. The quantifiers are
# possessive: nothing they take could help what follows, and backtracking into the blank runs of
# _SP would take exponential time on a bad line.
_SP = r"(?:[ \t\r\n]++|\#[^\n]*+)*+"
_QUOTED = r'"(?P<q>[^"\\]*+(?:\\.[^"\\]*+)*+)"'
_WORD = r'(?P<w>[^=\#,\[\]"\ \t\r\n][^=\#,\[\]\ \t\r\n]*+)'

# The reference lexer: one token per match, after what it skips (group sp). "=,[]" is group p;
# bad is a quote never closed. Every position matches, so the token stream has no gaps.
_TOKEN = re.compile(
    rf"(?P<sp>{_SP})(?:{_QUOTED}|{_WORD}|(?P<p>[=,\[\]])|(?P<end>\Z)|(?P<bad>\"))",
    re.VERBOSE | re.DOTALL,
)

# The fast path: a whole attribute head (up to its value or "[") or a whole vector pair per match.
_FAST_ATTR = re.compile(
    rf"{_SP}(?P<name>[A-Za-z0-9_]++){_SP}=[\ \t\r]*(?:{_QUOTED}|{_WORD}|(?P<vec>\[)|(?=[\#\n]|\Z))",
    re.VERBOSE | re.DOTALL,
)
_FAST_PAIR = re.compile(
    rf"{_SP}(?P<name>[A-Za-z0-9_]++){_SP}=[\ \t\r]*(?:{_QUOTED}|{_WORD}){_SP}(?P<sep>[,\]])",
    re.VERBOSE | re.DOTALL,
)
_FAST_REST = re.compile(rf"{_SP}\Z", re.VERBOSE)

# NOTE: OpenNebula 1.4 unescapes only \" inside quotes, so no string ending in a backslash can be
# written. Here \\ also becomes \ (and \" becomes "); any other backslash is kept as it is, so
# 1.4 templates holding "C:\dir" or "\d+" read the same. Rendering escapes every \ and ",
# which makes parse(render(s)) == s for any string.
_UNESCAPE = re.compile(r"\\([\\\"])")

_PUNCT_NAMES = {"=": "EQUAL", ",": "COMMA", "[": "OBRACKET", "]": "CBRACKET"}

# Issue 18: names, vector keys and short values (yes, hda, vnc, 1024...) are interned, held
# once for all the templates in memory: 4.1 KB -> 1.9 KB for the benchmark VM's, +3 us a parse.
SHARED_MAX = 32
_intern = sys.intern


@dataclass(frozen=True)
class Entry:
    """One parsed attribute with the 1-based position of its name in the source text."""

    name: str
    value: Value
    line: int
    column: int


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _token_name(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind == "end":
        return "$end"
    if kind == "p":
        return _PUNCT_NAMES[m.group("p")]
    if kind == "w" and NAME.fullmatch(m.group("w")):
        return "VARIABLE"
    return "STRING"


def _unexpected(text: str, m: re.Match[str], expecting: str) -> TemplateSyntaxError:
    kind = m.lastgroup or "end"
    line, column = position(text, m.start(kind))
    if kind == "bad":
        reason = "syntax error, unterminated quoted value, expecting '\"'"
    else:
        reason = f"syntax error, unexpected {_token_name(m)}, expecting {expecting}"
    return TemplateSyntaxError(reason, line, column)


def _missing_value(text: str, m: re.Match[str], expecting: str) -> TemplateSyntaxError:
    """The error for a vector key whose value is not ``m``: a newline, $end or punctuation."""
    newline = m.group("sp").find("\n")
    if newline < 0:
        return _unexpected(text, m, expecting)
    line, column = position(text, m.start() + newline)
    reason = f"syntax error, unexpected newline, expecting {expecting}"
    return TemplateSyntaxError(reason, line, column)


def _value_on_line(m: re.Match[str]) -> bool:
    """Whether ``m`` (the token after ``=``) starts on the same line as the ``=``."""
    return m.lastgroup != "end" and "\n" not in m.group("sp")


def _string(m: re.Match[str]) -> str | None:
    """The value of a STRING token, or None if ``m`` is not one."""
    kind = m.lastgroup
    if kind == "w":
        return m.group("w")
    if kind == "q":
        return _unquote(m.group("q"))
    return None


def _unquote(quoted: str) -> str:
    return _UNESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted


def _name(text: str, m: re.Match[str]) -> str:
    if m.lastgroup == "w":
        word = m.group("w")
        if NAME.fullmatch(word):
            return word.upper()
    raise _unexpected(text, m, "VARIABLE")


def _expect_equal(text: str, m: re.Match[str]) -> None:
    if m.lastgroup != "p" or m.group("p") != "=":
        raise _unexpected(text, m, "EQUAL")


def _vector(
    text: str, tokens: Iterator[re.Match[str]], vector: dict[str, str] | None = None
) -> dict[str, str]:
    """The pairs after ``[`` (or after the pairs of ``vector`` and their ``,``) through ``]``."""
    vector = {} if vector is None else vector
    while True:
        key = _name(text, next(tokens))
        _expect_equal(text, next(tokens))
        m = next(tokens)
        value = _string(m) if _value_on_line(m) else None
        if value is None:
            raise _missing_value(text, m, "STRING")
        vector.setdefault(key, value)
        m = next(tokens)
        if m.lastgroup != "p" or m.group("p") not in ",]":
            raise _unexpected(text, m, "COMMA or CBRACKET")
        if m.group("p") == "]":
            return vector


def scan_tokens(text: str) -> list[tuple[str, Value, int]]:
    """The reference parser, token by token; it alone reports syntax errors."""
    return _token_attrs(text, _TOKEN.finditer(text), [])


def _token_attrs(
    text: str, tokens: Iterator[re.Match[str]], attrs: list[tuple[str, Value, int]]
) -> list[tuple[str, Value, int]]:
    """``attrs`` and the attributes of ``tokens``, which start where an attribute may."""
    m = next(tokens)
    while m.lastgroup != "end":
        offset = m.start(m.lastgroup or "end")
        name = _name(text, m)
        _expect_equal(text, next(tokens))
        m = next(tokens)
        value: Value = ""
        if _value_on_line(m):
            string = _string(m)
            if string is not None:
                value = string
            elif m.lastgroup == "p" and m.group("p") == "[":
                value = _vector(text, tokens)
            else:
                raise _unexpected(text, m, "STRING or OBRACKET")
            m = next(tokens)
        attrs.append((name, value, offset))
    return attrs


def _fast_vector(text: str, pos: int) -> tuple[dict[str, str], int, bool]:
    """The pairs from ``pos`` (after ``[``), the offset after them, and whether the ``]`` was
    reached; if not, the offset is where the first pair that did not fit starts."""
    vector: dict[str, str] = {}
    while True:
        m = _FAST_PAIR.match(text, pos)
        if m is None:
            return vector, pos, False
        q = m.group("q")
        value = m.group("w") if q is None else _unquote(q)
        if len(value) <= SHARED_MAX:
            value = _intern(value)
        vector.setdefault(_intern(m.group("name").upper()), value)
        pos = m.end()
        if m.group("sep") == "]":
            return vector, pos, True


def scan(text: str) -> list[tuple[str, Value, int]]:
    """Every attribute of ``text`` as (NAME, value, offset of the name).

    Whole attributes (and vector pairs) are matched by one regex each; from the first one that
    does not fit that common shape on, ``_token_attrs`` parses the rest or reports the error,
    so that a long template is read once whatever it holds.
    """
    attrs: list[tuple[str, Value, int]] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _FAST_ATTR.match(text, pos)
        if m is None:
            if _FAST_REST.match(text, pos):
                break
            return _token_attrs(text, _TOKEN.finditer(text, pos), attrs)
        pos = m.end()
        name, offset = _intern(m.group("name").upper()), m.start("name")
        word: str | None = m.group("w")
        value: Value | None = _intern(word) if word and len(word) <= SHARED_MAX else word
        if value is None:
            q = m.group("q")
            if q is not None:
                quoted = _unquote(q)
                value = _intern(quoted) if len(quoted) <= SHARED_MAX else quoted
            elif m.group("vec") is None:
                value = ""
            else:
                value, pos, closed = _fast_vector(text, pos)
                if not closed:
                    tokens = _TOKEN.finditer(text, pos)
                    attrs.append((name, _vector(text, tokens, value), offset))
                    return _token_attrs(text, tokens, attrs)
        attrs.append((name, value, offset))
    return attrs


def parse_entries(text: str) -> list[Entry]:
    """Every attribute of ``text`` in order, with positions. Raises TemplateSyntaxError."""
    entries = []
    line, line_start, counted = 1, 0, 0
    for name, value, offset in scan(text):
        newlines = text.count("\n", counted, offset)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", counted, offset) + 1
        counted = offset
        entries.append(Entry(name, value, line, offset - line_start + 1))
    return entries
