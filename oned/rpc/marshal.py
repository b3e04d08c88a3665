"""Encode XML-RPC replies and decode calls; pure.

Replies are always ``[success, value, error_code]``. Large XML documents are cached by the pools
already escaped for an XML-RPC ``<string>`` (as UTF-8 bytes), so a pool listing is one join of
cached fragments and never re-escapes unchanged objects (DESIGN.md §9).

``decode_call`` reads any body a client sends and raises only ValueError: it refuses DTDs (so no
entity is ever declared or expanded), nesting deeper than ``MAX_DEPTH`` elements, and doubles
that are not finite.
"""

from __future__ import annotations

import math
import xmlrpc.client
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

_HEAD = b"<?xml version='1.0'?>\n<methodResponse><params><param><value><array><data>"
_TAIL = b"</data></array></value></param></params></methodResponse>"
_TRUE = b"<value><boolean>1</boolean></value>"
_FALSE = b"<value><boolean>0</boolean></value>"
_ARRAY = b"<value><array><data>"
_END_ARRAY = b"</data></array></value>"

# Elements open at once in a call. A system.multicall of structs of arrays is 13 deep; a value
# nested thousands deep would make every later repr() or walk of it raise RecursionError.
MAX_DEPTH = 100


@dataclass(frozen=True)
class Escaped:
    """A string value whose parts are already XML-escaped UTF-8 bytes."""

    parts: tuple[bytes, ...]

    @classmethod
    def of(cls, text: str) -> Escaped:
        return cls((escape_bytes(text),))


def escape_bytes(text: str) -> bytes:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text.encode("utf-8", "xmlcharrefreplace")


def _value(value: object) -> list[bytes]:
    if isinstance(value, Escaped):
        return [b"<value><string>", *value.parts, b"</string></value>"]
    if isinstance(value, bool):
        return [_TRUE if value else _FALSE]
    if isinstance(value, int):
        return [b"<value><int>%d</int></value>" % value]
    if isinstance(value, str):
        return [b"<value><string>", escape_bytes(value), b"</string></value>"]
    if isinstance(value, list | tuple):  # one.user.ec2keycreate's [id, secret]
        items = [part for item in value for part in _value(item)]
        return [b"<value><array><data>", *items, b"</data></array></value>"]
    raise TypeError(f"cannot encode {type(value).__name__} in a reply")


def success(value: object) -> list[bytes]:
    """The reply as a list of byte strings: large documents are never joined here, the
    transport concatenates them once while sending."""
    return [_HEAD, _TRUE, *_value(value), b"<value><int>0</int></value>", _TAIL]


def failure(message: str, code: int) -> list[bytes]:
    return [_HEAD, _FALSE, *_value(message), *_value(code), _TAIL]


def fault(message: str, code: int) -> list[bytes]:
    """An XML-RPC fault: only for ``system.multicall`` refused as a whole, where standard
    clients (``xmlrpc.client.MultiCall``) expect one; OpenNebula's methods never fault."""
    return [xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True).encode()]


def multicall(replies: list[list[bytes]]) -> list[bytes]:
    """The reply to ``system.multicall``: per call, a one-item array holding its reply (the
    reply's own parts between ``_HEAD`` and ``_TAIL``, wrapped)."""
    parts = [_HEAD]
    for reply in replies:
        parts += [_ARRAY, _ARRAY, *reply[1:-1], _END_ARRAY, _END_ARRAY]
    parts.append(_TAIL)
    return parts


class _Unmarshaller(xmlrpc.client.Unmarshaller):
    """xmlrpc.client's reader, refusing the doubles XML-RPC cannot carry (nan, inf, 1e999)."""

    dispatch: dict[str, Any] = dict(xmlrpc.client.Unmarshaller.dispatch)

    def end_double(self, data: str) -> None:
        value = float(data)
        if not math.isfinite(value):
            raise ValueError(f"double {data[:40]!r} is not a finite number")
        self.append(value)
        self._value = False

    dispatch["double"] = end_double
    dispatch["float"] = end_double


def _refuse_dtd(*_: object) -> None:
    raise ValueError("DTDs are not accepted")


def decode_call(body: bytes) -> tuple[str, tuple]:
    """(method, params) of an XML-RPC call; raises ValueError on anything malformed.

    Nothing else escapes, whatever ``body`` holds: a DTD is refused before any entity is
    declared, and an element nested deeper than ``MAX_DEPTH`` stops the parse.
    """
    reader = _Unmarshaller(use_datetime=False, use_builtin_types=False)
    reader.xml(None, None)  # type: ignore[arg-type]  # expat hands str: nothing to decode
    parser = expat.ParserCreate(None, None)
    depth = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"elements nested more than {MAX_DEPTH} deep")
        reader.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        reader.end(tag)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = reader.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(body, True)
        params, method = reader.close(), reader.getmethodname()
    except Exception as exc:  # expat, ResponseError, Fault, binascii, int() limits...
        raise ValueError(f"malformed XML-RPC request: {exc}") from None
    if not isinstance(method, str) or not method:
        raise ValueError("malformed XML-RPC request: no methodName")
    return method, params
