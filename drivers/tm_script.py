"""The transfer script one_tm runs (reference §1.6): its grammar and what each command takes.

Pure. A line is a command and its arguments, each one word of ``drivers.protocol.encode_words``
(oned writes them so; a value can never add a word or a line). ``parse_script`` decodes and
checks every line before one_tm runs anything: the argument count, sizes that are whole MB,
MKIMAGE formats from an allow-list, ``[host:]/absolute`` paths without ``..``, and URLs only
where a command fetches one. A future oned bug must not reach a host through a script.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from drivers.protocol import ProtocolError, decode_words, encode_words

ARITY = {"CLONE": (2, 3), "LN": (2, 2), "MKSWAP": (2, 2), "MKIMAGE": (3, 3), "DELETE": (1, 1)}
ARITY |= {"MV": (2, 2), "CONTEXT": (2, 99)}
URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
_FETCHABLE = re.compile(r"^(https?|ftp)://[^\s\0-\x1f\x7f]+$", re.I)
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*")
# What MKIMAGE makes: mkfs types (1.4 passed FORMAT to mkfs -t as is), plus raw, swap, qcow2.
FORMATS = frozenset({"raw", "swap", "qcow2", "ext2", "ext3", "ext4", "xfs", "vfat", "msdos"})


class Command(NamedTuple):
    """One line of a transfer script."""

    name: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return encode_words((self.name, *self.args))


def parse_script(text: str) -> list[Command]:
    """The commands of a script (blank and ``#`` lines skipped), each line's words decoded with
    ``decode_words`` and checked by ``check_command``; ValueError naming a bad line."""
    commands = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            words = decode_words(line)
        except ProtocolError as err:
            raise ValueError(f"line {number}: {err}") from None
        name, args = words[0].upper(), tuple(words[1:])
        if name not in ARITY:
            raise ValueError(f"{name} not found: {line.strip()}.")  # NOTE: 1.4 one_tm's words
        low, high = ARITY[name]
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}" if high < 99 else f"{low}+"
            raise ValueError(f"line {number}: {name} takes {count} arguments: {line.strip()}")
        command = Command(name, args)
        try:
            check_command(command)
        except ValueError as err:
            raise ValueError(f"line {number}: {command}: {err}") from None
        commands.append(command)
    return commands


def check_command(command: Command) -> None:
    """ValueError unless every argument has its kind's shape: sizes are positive integers (MB),
    MKIMAGE's format is in FORMATS, every path is ``[host:]/absolute`` with no ``..`` segment
    (and a host that is a name), and only CLONE and LN read from a URL."""
    name, args = command
    sizes = {"MKSWAP": args[:1], "MKIMAGE": args[:1], "CLONE": args[2:]}.get(name, ())
    for size in sizes:
        size_mb(size)
    if name == "MKIMAGE" and args[1].lower() not in FORMATS:
        raise ValueError(f"format {args[1][:40]!r} is not one of {', '.join(sorted(FORMATS))}")
    skip = {"MKSWAP": 1, "MKIMAGE": 2}.get(name, 0)
    paths = args[skip : 2 if name == "CLONE" else None]
    for i, text in enumerate(paths):
        if not (i == 0 and name in ("CLONE", "LN") and URL.match(text)):
            check_path(text)
        elif not _FETCHABLE.match(text):
            raise ValueError(f"{text[:80]!r}: only http, https and ftp URLs are fetched")


def check_path(text: str) -> None:
    """ValueError unless ``text`` is ``[host:]/absolute/path`` without a ``..`` segment."""
    host, _, path = text.partition(":") if ":" in text and text[0] != "/" else ("", "", text)
    if host and not _HOST.fullmatch(host):
        raise ValueError(f"{host[:80]!r} is not a host name")
    if not path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"{text[:80]!r} is not an absolute path without '..'")
    if "\0" in path:
        raise ValueError(f"{text[:80]!r} holds a NUL character")


def size_mb(text: str) -> int:
    """``text`` as a positive number of MB (ASCII digits only); ValueError otherwise."""
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ValueError(f"size {text[:40]!r} is not a positive number of MB")
    return int(text)
