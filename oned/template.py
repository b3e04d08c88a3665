"""The OpenNebula template language: parse, hold and render templates (reference §6.1).

A template is an ordered multimap of attributes. A single attribute holds a string; a vector
attribute holds a ``dict`` of UPPER-case keys to strings. Names are case-insensitive and stored
upper-cased; values keep their case. A template is written as text or XML: ``parse`` here reads
text with oned/template_parser.py (the grammar, positions and syntax errors), oned/template_xml.py
reads XML; this module holds the ``Template`` class and renders it (text, XML, the CLI display).
Pure module: no I/O.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator

from oned.errors import TemplateSyntaxError
from oned.template_parser import NAME, Value, attributes

# Value and TemplateSyntaxError (what parse raises) are re-exported for oned's modules.
__all__ = ["Template", "TemplateSyntaxError", "Value", "parse"]

_BARE = re.compile(r"[^=#,\[\]\"\\\s]+")  # unquoted (NOTE on _UNESCAPE: template_parser.py)

_XML_INVALID_CHARS = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
_XML_INVALID = re.compile(_XML_INVALID_CHARS)
_XML_AWKWARD = re.compile("]]>|\r|" + _XML_INVALID_CHARS)


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
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"invalid template attribute name {name!r}: use [A-Za-z0-9_]+")
    return sys.intern(name.upper())


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


def parse(text: str) -> Template:
    """The template written in ``text``. Raises TemplateSyntaxError."""
    return Template.trusted(attributes(text))
