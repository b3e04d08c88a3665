"""The OpenNebula template language: parse, hold and render templates (reference §6.1).

A template is an ordered multimap of attributes. A single attribute holds a string; a vector
attribute holds a ``dict`` of UPPER-case keys to strings. Names are case-insensitive and stored
upper-cased; values keep their case. A template is written as text or XML; it is read from
text here and from XML in oned/template_xml.py. Pure module: no I/O.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

from oned.errors import TemplateSyntaxError

Value: TypeAlias = str | dict[str, str]

_NAME = re.compile(r"[A-Za-z0-9_]+")

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
_BARE = re.compile(r"[^=#,\[\]\"\\\s]+")

_PUNCT_NAMES = {"=": "EQUAL", ",": "COMMA", "[": "OBRACKET", "]": "CBRACKET"}

_XML_INVALID_CHARS = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
_XML_INVALID = re.compile(_XML_INVALID_CHARS)
_XML_AWKWARD = re.compile("]]>|\r|" + _XML_INVALID_CHARS)


@dataclass(frozen=True)
class Entry:
    """One parsed attribute with the 1-based position of its name in the source text."""

    name: str
    value: Value
    line: int
    column: int


class Template:
    """An ordered multimap of attributes; names (and vector keys) are stored upper-cased.

    Attributes keep the order they were added in (OpenNebula's std::multimap sorts them by name).
    Vectors returned by ``get``/``get_all``/iteration are the stored dicts: treat them as
    read-only and change a template through ``add``/``set``/``remove``/``merge``.
    """

    __slots__ = ("_attrs",)

    def __init__(self, attrs: Iterable[tuple[str, Value]] = ()) -> None:
        """A template of ``attrs`` in order, each checked as ``add`` checks it."""
        self._attrs: list[tuple[str, Value]] = []
        for name, value in attrs:
            self.add(name, value)

    @classmethod
    def trusted(cls, attrs: list[tuple[str, Value]]) -> Template:
        """A template over ``attrs`` as they are, without the per-attribute checks: for text
        this module produced (a stored template read back), where the caller vouches for upper-
        case names, non-empty vectors and string values."""
        template = cls.__new__(cls)
        template._attrs = attrs
        return template

    def __iter__(self) -> Iterator[tuple[str, Value]]:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        return self._attrs == other._attrs

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.upper()
        return any(n == key for n, _ in self._attrs)

    def __repr__(self) -> str:
        return f"Template({self._attrs!r})"

    def get(self, name: str, default: Value | None = None) -> Value | None:
        """The value of the first attribute called ``name``, else ``default``."""
        key = name.upper()
        for n, v in self._attrs:
            if n == key:
                return v
        return default

    def get_str(self, name: str, default: str | None = None) -> str | None:
        """The value of the first *single* attribute called ``name``, else ``default``."""
        key = name.upper()
        for n, v in self._attrs:
            if n == key and isinstance(v, str):
                return v
        return default

    def get_all(self, name: str) -> list[Value]:
        """Every value of ``name``, in template order."""
        key = name.upper()
        return [v for n, v in self._attrs if n == key]

    def add(self, name: str, value: Value) -> None:
        """Append one attribute (vectors are copied).

        Raises ValueError for a bad name or an empty vector, TypeError for a value that is not a
        str or a dict of str.
        """
        self._attrs.append((_checked_name(name), _checked_value(name, value)))

    def set(self, name: str, value: Value) -> None:
        """Replace every attribute called ``name`` by one, at the first one's position."""
        self._replace({_checked_name(name): [_checked_value(name, value)]})

    def remove(self, name: str) -> list[Value]:
        """Take out every attribute called ``name``; returns their values in order."""
        key = name.upper()
        removed = [v for n, v in self._attrs if n == key]
        if removed:
            self._attrs = [(n, v) for n, v in self._attrs if n != key]
        return removed

    def merge(self, other: Template) -> None:
        """Replace mode: each name of ``other`` replaces all of ours (at our first position)."""
        incoming: dict[str, list[Value]] = {}
        for n, v in other._attrs:
            incoming.setdefault(n, []).append(_copy_value(v))
        self._replace(incoming)

    def _replace(self, incoming: dict[str, list[Value]]) -> None:
        merged: list[tuple[str, Value]] = []
        done: set[str] = set()
        for n, v in self._attrs:
            if n not in incoming:
                merged.append((n, v))
            elif n not in done:
                done.add(n)
                merged.extend((n, new) for new in incoming[n])
        for n, values in incoming.items():
            if n not in done:
                merged.extend((n, new) for new in values)
        self._attrs = merged

    def copy(self) -> Template:
        """An independent copy (vectors are copied too)."""
        return Template.trusted([(n, _copy_value(v)) for n, v in self._attrs])

    def to_text(self) -> str:
        """Template-language text, one attribute per line: ``parse(t.to_text()) == t`` always."""
        lines = []
        for n, v in self._attrs:
            if isinstance(v, str):
                lines.append(f"{n}={_quote(v)}\n")
            else:
                pairs = ",\n".join(f"  {k}={_quote(x)}" for k, x in v.items())
                lines.append(f"{n}=[\n{pairs} ]\n")
        return "".join(lines)

    def to_xml(self, root: str = "TEMPLATE") -> str:
        """OpenNebula 2.0+ XML: every value in CDATA, no whitespace between elements.

        A carriage return is written as ``&#13;`` (XML would read a raw one as a newline) and a
        character XML 1.0 cannot hold is replaced by U+FFFD, so the document is always
        well-formed. Names are not checked: a name starting with a digit gives invalid XML, as
        in OpenNebula.
        """
        if not self._attrs:
            return f"<{root}/>"
        parts = [f"<{root}>"]
        for n, v in self._attrs:
            if isinstance(v, str):
                parts.append(f"<{n}>{_cdata(v)}</{n}>")
            else:
                inner = "".join(f"<{k}>{_cdata(x)}</{k}>" for k, x in v.items())
                parts.append(f"<{n}>{inner}</{n}>")
        parts.append(f"</{root}>")
        return "".join(parts)

    def to_str(self) -> str:
        """The CLI display (reference §12.3): ``NAME=value`` lines, vectors over several lines."""
        lines = []
        for n, v in self._attrs:
            if isinstance(v, str):
                lines.append(f"{n}={v}")
            else:
                pairs = ",\n".join(f"  {k}={x}" for k, x in v.items())
                lines.append(f"{n}=[\n{pairs} ]")
        return "\n".join(lines)


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"invalid template attribute name {name!r}: use [A-Za-z0-9_]+")
    return _intern(name.upper())


def _checked_value(name: str, value: Value) -> Value:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"attribute {name}: value must be str or dict, not {type(value).__name__}")
    if not value:
        raise ValueError(f"vector attribute {name} needs at least one key")
    vector: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise TypeError(f"attribute {name}[{key}]: value must be str, not {type(item)}")
        vector.setdefault(_checked_name(key), item)
    return vector


def _copy_value(value: Value) -> Value:
    return value if isinstance(value, str) else dict(value)


def _quote(value: str) -> str:
    if _BARE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cdata(value: str) -> str:
    if not _XML_AWKWARD.search(value):
        return f"<![CDATA[{value}]]>"
    value = _XML_INVALID.sub("\ufffd", value)
    sections = (
        "<![CDATA[" + part.replace("]]>", "]]]]><![CDATA[>") + "]]>" for part in value.split("\r")
    )
    return "&#13;".join(sections)


# --- the text parser --------------------------------------------------------------------------


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _token_name(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind == "end":
        return "$end"
    if kind == "p":
        return _PUNCT_NAMES[m.group("p")]
    if kind == "w" and _NAME.fullmatch(m.group("w")):
        return "VARIABLE"
    return "STRING"


def _unexpected(text: str, m: re.Match[str], expecting: str) -> TemplateSyntaxError:
    kind = m.lastgroup or "end"
    line, column = _position(text, m.start(kind))
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
    line, column = _position(text, m.start() + newline)
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
        if _NAME.fullmatch(word):
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


def _scan_tokens(text: str) -> list[tuple[str, Value, int]]:
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


# Issue 18: names, vector keys and short values (yes, hda, vnc, 1024...) are interned, held
# once for all the templates in memory: 4.1 KB -> 1.9 KB for the benchmark VM's, +3 us a parse.
SHARED_MAX = 32
_intern = sys.intern


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


def _scan(text: str) -> list[tuple[str, Value, int]]:
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
    for name, value, offset in _scan(text):
        newlines = text.count("\n", counted, offset)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", counted, offset) + 1
        counted = offset
        entries.append(Entry(name, value, line, offset - line_start + 1))
    return entries


def parse(text: str) -> Template:
    """The template written in ``text``. Raises TemplateSyntaxError."""
    return Template.trusted([(name, value) for name, value, _ in _scan(text)])
