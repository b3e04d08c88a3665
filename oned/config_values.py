"""The values oned.conf may hold: converters from an attribute's text to its value; pure.

Each converter takes the text of a value and returns what Config holds, or raises ``Invalid``
with what is wrong, as the end of a sentence that starts with the value (``oned.config``
writes the file, line and attribute in front of it).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

Converter = Callable[[str], Any]


class Invalid(ValueError):
    """What is wrong with a value, as the end of a sentence that starts with the value."""


def integer(low: int, high: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", text) or not low <= int(text) <= high:
            raise Invalid(f"is not an integer between {low} and {high}")
        return int(text)

    return convert


def choice(*allowed: str, fold: Callable[[str], str] = str.upper) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if fold(value.strip()) not in allowed:
            raise Invalid("is not one of " + ", ".join(a or '""' for a in allowed))
        return fold(value.strip())

    return convert


def text(value: str) -> str:
    return value


def nonempty(value: str) -> str:
    if not value.strip():
        raise Invalid("is empty")
    return value


def optional(value: str) -> str | None:
    return value or None


def absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise Invalid("is not an absolute path")
    return value


def optional_absolute_path(value: str) -> str | None:
    return absolute_path(value) if value else None


def absolute_paths(value: str) -> tuple[str, ...]:
    """A space-separated list of absolute directories (SAFE_DIRS, RESTRICTED_DIRS)."""
    paths = tuple(value.split())
    for path in paths:
        if not path.startswith("/"):
            raise Invalid(f"names {show(path)}, which is not an absolute path")
    return paths


def umask(value: str) -> int:
    """An octal umask that at least keeps every file from others (``077``, or ``027``)."""
    if not re.fullmatch(r"0?[0-7]{3}", value.strip()):
        raise Invalid('is not an octal umask such as "077"')
    mask = int(value.strip(), 8)
    if mask & 0o007 != 0o007:
        raise Invalid("lets other users read oned's files; use 077 (or 027 for a group)")
    return mask


def attribute_name(value: str) -> str:
    """``NAME`` or ``VECTOR/KEY`` (upper-cased), or empty for none."""
    text = value.strip().upper()
    if text and not re.fullmatch(r"[A-Z0-9_]+(/[A-Z0-9_]+)?", text):
        raise Invalid("is not an attribute name: NAME or VECTOR/KEY")
    return text


def mac_prefix(value: str) -> str:
    if not re.fullmatch(r"[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}", value):
        raise Invalid('is not two hexadecimal bytes "hh:hh"')
    if int(value[:2], 16) & 1:
        raise Invalid("is a multicast prefix: its first byte must be even")
    return value.lower()


def listen_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", value):
            raise Invalid("is not an IP address or a host name") from None
    return value


_YES_NO = choice("YES", "NO", "")


def yes_no(value: str) -> bool:
    return _YES_NO(value) == "YES"


_BACKENDS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}


def backend(value: str) -> str:
    return _BACKENDS[choice(*_BACKENDS, fold=str.lower)(value)]


def show(value: str) -> str:
    """The value quoted on one line, shortened if long."""
    return json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=False)
