"""The session of an XML-RPC call read from the head of its body alone; pure.

A body bigger than MAX_UNAUTHENTICATED_REQUEST_SIZE is decoded only once the session it
starts with is known to be good, so reading that session must cost no more than the head: an
expat parser fed only the head, stopped as soon as the session has gone by. A
``system.multicall`` carries a session per call: the first call's is read (each call is still
authenticated on its own once the body is decoded).
"""

from __future__ import annotations

from xml.parsers import expat

_CALL = ("methodCall", "params", "param", "value")
_MULTI = (*_CALL, "array", "data", "value", "struct", "member")
_INNER = (*_MULTI, "value", "array", "data", "value")


class _Stop(Exception):
    """Raised from a handler to stop the parser once the answer is known."""


class _Reader:
    def __init__(self) -> None:
        self.path: list[str] = []
        self.text: list[str] = []
        self.method = ""
        self.member = ""
        self.session: str | None = None

    def start(self, tag: str, _attrs: object) -> None:
        self.path.append(tag)
        self.text = []

    def end(self, tag: str) -> None:
        where = tuple(self.path)
        self.path.pop()
        text = "".join(self.text)
        self.text = []
        if where == ("methodCall", "methodName"):
            self.method = text
            return
        value = _CALL if self.method != "system.multicall" else _INNER
        if self.method == "system.multicall" and where == (*_MULTI, "name"):
            self.member = text
        if self.method == "system.multicall" and self.member != "params":
            return
        if where in ((*value, "string"), value):
            self.session = text
            raise _Stop
        if len(where) == len(value) + 1 and where[:-1] == value:
            raise _Stop  # the first parameter is not a string: no session

    def characters(self, data: str) -> None:
        self.text.append(data)


def _no_doctype(*_: object) -> None:
    raise _Stop  # XML-RPC has no use for one, and entity expansion is work


def session_of(head: bytes) -> tuple[str, str] | None:
    """(method name, session) of the call ``head`` starts: the session is the first parameter,
    or the first call's for a multicall; None when it is not there in full, is not a string
    or the head is malformed."""
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.characters
    parser.StartDoctypeDeclHandler = _no_doctype
    try:
        parser.Parse(head, False)
    except _Stop:
        return None if reader.session is None else (reader.method, reader.session)
    except expat.ExpatError:
        return None
    return None
