"""The ``-x``, ``-j`` and ``-y`` outputs of show and list: oned's XML as it is, or converted.

The conversion is OpenNebula's CLI's (``XMLElement#to_hash``): the document is one key, its
root's name; an element with only text is that text; an element with children is a mapping of
their names; a name repeated among siblings is a list of their values, in document order.
Nothing is renamed, typed or dropped: numbers stay the strings oned sent.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import yaml

FORMATS = ("xml", "json", "yaml")


def element_value(elem: ET.Element) -> Any:
    """The value of one element: its text when it has no children, else a mapping.

    NOTE: OpenNebula's to_hash gives an empty element ``{}``; it is ``""`` here, the same
    "nothing" that a text field's readers (and ``onevm show``) expect for, e.g., DEPLOY_ID.
    """
    if not len(elem):
        return elem.text or ""
    value: dict[str, Any] = {}
    for child in elem:
        item = element_value(child)
        if child.tag not in value:
            value[child.tag] = item
        elif isinstance(value[child.tag], _Repeated):
            value[child.tag].append(item)
        else:
            value[child.tag] = _Repeated([value[child.tag], item])
    return {key: list(v) if isinstance(v, _Repeated) else v for key, v in value.items()}


class _Repeated(list):
    """The values of a repeated name (a value may itself be a list: keep them apart)."""


def to_dict(elem: ET.Element) -> dict[str, Any]:
    """``{root name: value}`` for a whole document; an empty pool's value is ``{}`` (as
    OpenNebula's), so ``doc["VM_POOL"].get("VM", [])`` holds for every listing."""
    empty = not len(elem) and not (elem.text or "").strip()
    return {elem.tag: {} if empty else element_value(elem)}


def render(text: str, fmt: str) -> str:
    """``text`` (one XML document from oned) in ``fmt``: xml as it is, json or yaml converted.

    Raises ``ValueError`` for a document that is not XML (the caller names it).
    """
    if fmt == "xml":
        return text
    try:
        doc = to_dict(ET.fromstring(text))
    except ET.ParseError as e:
        raise ValueError(f"malformed XML from oned: {e}") from e
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False)
    # explicit_start: several documents (``onevm show 1 2 -y``) make one valid YAML stream.
    dumped = yaml.safe_dump(doc, explicit_start=True, sort_keys=False, allow_unicode=True)
    return dumped.rstrip("\n")
