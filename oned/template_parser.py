"""The template language's text parser: OpenNebula's grammar, positions and errors (§6.1).

``attributes`` gives every attribute of a template text in order, which ``oned.template.parse``
makes a ``Template`` of; ``scan`` gives the same with the offset of each name and
``parse_entries`` with its line and column. They read the whole text with one regex call
(``_ITEMS``: one match per attribute or vector pair, checked in order by ``_fast``) and hand
what does not fit, from the first item that does not, to the token parser (``scan_tokens``),
the reference, which alone reports syntax errors with OpenNebula's (bison's) words. Rendering
text and the ``Template`` class are oned/template.py; XML is read in oned/template_xml.py. Pure
module: no I/O.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeAlias

from oned.errors import TemplateSyntaxError

Value: TypeAlias = str | dict[str, str]

NAME = re.compile(r"[A-Za-z0-9_]+")

# Blanks, newlines and comments; a quoted value (still escaped, without its quotes); an unquoted
# value or a name. Blanks are " \t\r" so that CRLF files read like LF files. The quantifiers are
# possessive: nothing they take could help what follows, and backtracking into the blank runs of
# _SP would take exponential time on a bad line.
_SP = r"[ \t\r\n]*+(?:\#[^\n]*+[ \t\r\n]*+)*+"
_QUOTED = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
_WORD = r'[^=\#,\[\]"\ \t\r\n][^=\#,\[\]\ \t\r\n]*+'

# The reference lexer: one token per match, after what it skips (group sp); q is a quoted
# value, w a word, p one of "=,[]", bad a quote never closed. Every position matches, so the
# token stream has no gaps.
_TOKEN = re.compile(
    rf'(?P<sp>{_SP})(?:"(?P<q>{_QUOTED})"|(?P<w>{_WORD})|(?P<p>[=,\[\]])|(?P<end>\Z)|(?P<bad>"))',
    re.DOTALL,
)


def _items(blanks: str, quoted: str) -> re.Pattern[str]:
    """The fast path's regex, which reads a text as items, one per match: a name (group 1),
    "=" and a value, quoted (2), a word (3), "[" (4), or empty before a comment or newline (5)
    or the end; the "," or "]" after it, if any (6), makes it a vector's pair.

    The ``blanks`` (and comments) after each item are taken with it, so that a match starts
    where an item may; group 7 takes the rest of the text from the first place that is no
    item, and the first alternative a text of blanks alone. Every position thus matches:
    findall never searches (it stays linear) and gives the items in order.
    """
    value = rf'(?:"({quoted})"|({_WORD})|(\[)|(?=([\#\n]))|\Z)'
    item = rf"([A-Za-z0-9_]++){blanks}=[\ \t\r]*+{value}{blanks}([,\]]?){blanks}"
    return re.compile(rf"\A{blanks}\Z|{blanks}(?:{item}|(.+))", re.DOTALL)


_ITEMS = _items(_SP, _QUOTED)
# The same for a text without "#" or "\\" (most are): with no comment or escape to look for, it
# reads the benchmark template in 3/4 of the time and gives the same matches.
_PLAIN_ITEMS = _items(r"[ \t\r\n]*+", r'[^"]*+')


def _items_for(text: str) -> re.Pattern[str]:
    return _ITEMS if "#" in text or "\\" in text else _PLAIN_ITEMS


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


# Names seen, to their interned upper case: most templates use the same few dozen names, and a
# lookup costs half of upper() and intern(). Bounded, so hostile names cannot grow it.
_NAMES: dict[str, str] = {}
_NAMES_MAX = 4096


def _shared_name(raw: str) -> str:
    name = _NAMES.get(raw)
    if name is None:
        name = _intern(raw.upper())
        if len(_NAMES) < _NAMES_MAX and len(raw) <= SHARED_MAX:
            _NAMES[raw] = name
    return name


def _fast(text: str) -> tuple[list[tuple[str, Value]], int, dict[str, str] | None]:
    """The attributes read by ``_ITEMS``, the offset where the token parser must go on (-1 if
    nowhere), and the vector it must finish first, already in the attributes (or None)."""
    attrs: list[tuple[str, Value]] = []
    name_of, append = _NAMES.get, attrs.append
    vector: dict[str, str] | None = None
    items = _items_for(text)
    for index, (name, quoted, word, opens, empty, after, rest) in enumerate(items.findall(text)):
        key = name_of(name) or _shared_name(name)
        value = word or (_unquote(quoted) if "\\" in quoted else quoted)
        if len(value) <= SHARED_MAX:
            value = _intern(value)
        if after:  # a vector's pair
            if vector is None or opens or empty:
                return attrs, _item_offset(items, text, index), vector
            if key not in vector:
                vector[key] = value
            if after == "]":
                vector = None
        elif vector is not None or rest:
            return attrs, _item_offset(items, text, index), vector
        elif opens:
            vector = {}
            append((key, vector))
        elif name:
            append((key, value))
    return attrs, -1 if vector is None else len(text), vector


def _item_offset(items: re.Pattern[str], text: str, index: int) -> int:
    """Where match number ``index`` of ``items`` starts (found again: only after a mistake)."""
    return next(islice(items.finditer(text), index, None)).start()


def _finish(
    text: str, offset: int, vector: dict[str, str] | None, attrs: list[tuple[str, Value, int]]
) -> list[tuple[str, Value, int]]:
    """``attrs`` and what the token parser reads from ``offset`` on, ``vector``'s pairs first."""
    tokens = _TOKEN.finditer(text, offset)
    if vector is not None:
        _vector(text, tokens, vector)
    return _token_attrs(text, tokens, attrs)


def attributes(text: str) -> list[tuple[str, Value]]:
    """Every attribute of ``text`` as (NAME, value). Raises TemplateSyntaxError.

    ``_ITEMS`` reads the whole text in one call; from the first item that does not fit the
    grammar on, the token parser reads the rest or reports the error.
    """
    attrs, offset, vector = _fast(text)
    if offset >= 0:
        attrs += [(name, value) for name, value, _ in _finish(text, offset, vector, [])]
    return attrs


def scan(text: str) -> list[tuple[str, Value, int]]:
    """Every attribute of ``text`` as (NAME, value, offset of the name), as ``attributes``
    reads them. Raises TemplateSyntaxError."""
    attrs, offset, vector = _fast(text)
    # An attribute's first item is the only one without a "," or "]" after it.
    starts = (m.start(1) for m in _items_for(text).finditer(text) if m[1] and not m[6])
    scanned = [(name, value, start) for (name, value), start in zip(attrs, starts, strict=False)]
    return scanned if offset < 0 else _finish(text, offset, vector, scanned)


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
