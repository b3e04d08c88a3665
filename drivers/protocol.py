"""The driver line protocol (OpenNebula 2.0's MAD wire, reference §1.1-1.2): its codec.

oned -> driver: ``ACTION ID ARG...``; driver -> oned: ``ACTION SUCCESS|FAILURE ID INFO`` and
``LOG - ID text``. Every line ends in ``\\n`` and nothing else in it is a line break. The codec
(``encode_words``/``decode_words``, ``parse_request``, ``parse_reply``, ``format_*``) is pure and
shared with oned, so the grammar has one implementation. ``drivers/serve.py`` is the loop every
driver's ``main()`` calls.

Every value that crosses into a driver as a word (request arguments, transfer script lines, hook
arguments) goes through ``encode_word``: plain values (paths, ``host:path``, numbers, names) stay
as they are, so lines look like OpenNebula's; anything else is percent-encoded (UTF-8), so an
encoded word never holds a space, a control character or a line break and cannot be re-split.
``decode_word`` is its strict twin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

NO_ID = "-"
_ACTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEEDS_QUOTES = re.compile(r'[\s=#,\[\]"\\]')
NO_ID_ACTIONS = frozenset({"INIT", "FINALIZE"})
SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:@+,=~-")
EMPTY_WORD = "''"  # the empty string, which would otherwise vanish between two spaces
_WORD = re.compile(r"(?:[A-Za-z0-9_./:@+,=~-]|%[0-9A-F]{2})+")


class ProtocolError(ValueError):
    """A line that does not follow the grammar; the message says what is wrong with it."""


class BadArgument(ProtocolError):
    """A request line whose action and id are fine but an argument is not a word we encode."""

    def __init__(self, action: str, ident: str, message: str) -> None:
        super().__init__(message)
        self.action, self.id = action, ident


class DriverFailure(Exception):
    """Raised by an action to answer FAILURE; its message becomes the reply's INFO."""


class NoReply(Exception):
    """Raised by an action that answers nothing at all (a simulated hang)."""


class Request(NamedTuple):
    """One oned -> driver line: ``ACTION ID ARG...`` (ID is ``-`` for INIT and FINALIZE)."""

    action: str
    id: str
    args: tuple[str, ...] = ()


class Reply(NamedTuple):
    """One driver -> oned line. ``result`` is SUCCESS, FAILURE, or ``-`` for LOG lines."""

    action: str
    result: str
    id: str
    info: str

    @property
    def ok(self) -> bool:
        return self.result == "SUCCESS"


def one_line(text: str) -> str:
    """``text`` with every line break (and NUL) turned into a space, stripped."""
    return " ".join(text.replace("\0", " ").splitlines()).strip()


def encode_word(word: str) -> str:
    """``word`` as one token of a line: itself when every character is in SAFE_CHARS, else
    each UTF-8 byte outside them as ``%XX``; the empty string is EMPTY_WORD."""
    if not word:
        return EMPTY_WORD
    if SAFE_CHARS.issuperset(word):
        return word
    data = word.encode("utf-8", "surrogatepass")
    return "".join(chr(b) if chr(b) in SAFE_CHARS else f"%{b:02X}" for b in data)


def decode_word(token: str) -> str:
    """The word ``encode_word`` made ``token`` from; ProtocolError naming a token that it could
    not have made (a character outside the set, a bad or needless escape, lower-case hex, bytes
    that are not UTF-8)."""
    if token == EMPTY_WORD:
        return ""
    if not _WORD.fullmatch(token):
        raise ProtocolError(f"malformed word {token[:80]!r}")
    if "%" not in token:
        return token
    try:
        word = unquote_to_bytes(token).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ProtocolError(f"malformed word {token[:80]!r}: not UTF-8") from None
    if encode_word(word) != token:
        raise ProtocolError(f"malformed word {token[:80]!r}: not the canonical encoding")
    return word


def encode_words(words: Iterable[object]) -> str:
    """One line (without its line break) of ``encode_word(str(w))`` joined by single spaces."""
    return " ".join(encode_word(str(word)) for word in words)


def decode_words(line: str) -> list[str]:
    """The words of a line ``encode_words`` made (any run of blanks separates them)."""
    return [decode_word(token) for token in line.split()]


def parse_request(line: str) -> Request:
    """Split a request line; the action is upper-cased as OpenNebula's Ruby drivers do, and
    every argument is decoded with ``decode_word``.

    Raises ProtocolError for a blank line, an action that is not a word, a missing ID, or
    BadArgument (a ProtocolError carrying the action and id) for a malformed argument.
    """
    tokens = line.split()
    if not tokens:
        raise ProtocolError("empty line")
    action = tokens[0].upper()
    if not _ACTION.fullmatch(action):
        raise ProtocolError(f"bad action {tokens[0][:40]!r}")
    if len(tokens) < 2 and action not in NO_ID_ACTIONS:
        raise ProtocolError(f"{action} without an id")
    ident = tokens[1] if len(tokens) > 1 else NO_ID
    try:
        args = tuple(decode_word(token) for token in tokens[2:])
    except ProtocolError as err:
        raise BadArgument(action, ident, str(err)) from None
    return Request(action, ident, args)


def parse_reply(line: str) -> Reply:
    """Split a driver's line into action, result, id and INFO (the rest, ``-`` kept verbatim).

    Raises ProtocolError when there are fewer than three fields or the result is unknown.
    """
    parts = line.strip().split(None, 3)
    if len(parts) < 3:
        raise ProtocolError(f"short reply {line.strip()[:80]!r}")
    action, result, ident = parts[0].upper(), parts[1].upper(), parts[2]
    if result not in ("SUCCESS", "FAILURE") and not (action == "LOG" and len(result) == 1):
        raise ProtocolError(f"bad result {parts[1][:40]!r} in {action} reply")
    return Reply(action, result, ident, parts[3] if len(parts) > 3 else "")


def format_reply(action: str, ok: bool, ident: str | int, info: str = "") -> str:
    """``ACTION SUCCESS|FAILURE ID INFO\\n``: always exactly one line, INFO ``-`` when empty."""
    result = "SUCCESS" if ok else "FAILURE"
    return f"{action} {result} {ident} {one_line(info) or '-'}\n"


def format_log(ident: str | int, text: str, severity: str = "-") -> str:
    """``LOG - ID text\\n`` (ID ``-`` when the line is about no object); always one line.
    ``severity`` is 1.4's ``-`` or 3.x's E, W, I or D (oned logs the line at that level)."""
    return f"LOG {severity} {ident} {one_line(text) or '-'}\n"


def format_attribute(name: str, value: object) -> str:
    """``NAME=value`` in template syntax, double-quoted (``\\`` and ``"`` escaped) when needed."""
    text = one_line(str(value))
    if text and not _NEEDS_QUOTES.search(text):
        return f"{name}={text}"
    return '{}="{}"'.format(name, text.replace("\\", "\\\\").replace('"', '\\"'))


def format_attributes(pairs: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """Space-separated template attributes, the INFO of ``MONITOR SUCCESS`` (2.0 style)."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return " ".join(format_attribute(k, v) for k, v in items)
