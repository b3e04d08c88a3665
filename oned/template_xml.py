"""Templates read from XML: ``<ANY><A>1</A><B><C>2</C></B></ANY>``, the form pyone sends.

``parse_xml`` gives the ``Template`` (oned/template.py) of such a document, the inverse of
``Template.to_xml``; ``parse_any`` chooses it or the text parser by the first character. Pure
module: no I/O.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from oned.errors import TemplateSyntaxError
from oned.template import Template, Value, parse
from oned.template_parser import NAME, position

_XML_DTD = re.compile(r"<!(DOCTYPE|ENTITY)")


def _xml_error(text: str, reason: str, tag: str | None = None) -> TemplateSyntaxError:
    offset = max(text.find(f"<{tag}"), 0) if tag else 0
    line, column = position(text, offset)
    return TemplateSyntaxError(f"syntax error, {reason}", line, column)


def _xml_name(text: str, element: ET.Element) -> str:
    if not NAME.fullmatch(element.tag):
        raise _xml_error(text, f"invalid attribute name <{element.tag}>", element.tag)
    return element.tag.upper()


def _xml_vector(text: str, element: ET.Element) -> dict[str, str]:
    vector: dict[str, str] = {}
    for child in element:
        if len(child):
            raise _xml_error(text, f"<{element.tag}><{child.tag}> holds elements", child.tag)
        vector.setdefault(_xml_name(text, child), child.text or "")
    return vector


def parse_xml(text: str) -> Template:
    """The template of an XML document ``<ANY><A>1</A><B><C>2</C></B></ANY>``.

    An element with children is a vector; the root's name is ignored. Raises TemplateSyntaxError,
    and nothing else, on malformed XML, characters XML cannot hold (lone surrogates), DTDs
    (refused: templates never need entities), or a deeper nesting.
    """
    dtd = _XML_DTD.search(text)
    if dtd:
        line, column = position(text, dtd.start())
        raise TemplateSyntaxError("syntax error, DTDs are not accepted", line, column)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        line, column = error.position
        reason = str(error).split(": line ")[0]
        raise TemplateSyntaxError(f"syntax error, {reason}", line, column + 1) from None
    except UnicodeEncodeError as error:  # a lone surrogate: no XML document can hold one
        line, column = position(text, error.start)
        raise TemplateSyntaxError("syntax error, invalid character", line, column) from None
    attrs: list[tuple[str, Value]] = []
    for element in root:
        name = _xml_name(text, element)
        value = _xml_vector(text, element) if len(element) else element.text or ""
        attrs.append((name, value))
    return Template.trusted(attrs)


def parse_any(text: str) -> Template:
    """``parse_xml`` if ``text`` looks like XML (starts with ``<``), else ``parse``.

    Raises TemplateSyntaxError, and nothing else, for any text (bench/fuzz.py checks it)."""
    return parse_xml(text) if text.lstrip().startswith("<") else parse(text)
