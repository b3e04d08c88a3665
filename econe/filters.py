"""EC2 `Filter.N.Name` / `Filter.N.Value.M` matching over the items an action lists.

Pure. Each action names the filters it knows as a table from filter name to a function that
reads the item's value(s); an item is kept when every filter has a value matching one of its
values. Values may hold EC2's wildcards `*` and `?` (`\\*` for a literal star). A filter the
action does not know is refused, as EC2 does, rather than silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from econe.errors import Ec2Error

Reader = Callable[[Any], "str | Iterable[str] | None"]


def select(items: Iterable[Any], filters: Any, readers: dict[str, Reader]) -> list[Any]:
    """The items every filter accepts; `filters` is the parsed `Filter` parameter (or None)."""
    tests = [_compile(f, readers) for f in _as_list(filters)]
    return [item for item in items if all(test(item) for test in tests)]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _compile(spec: Any, readers: dict[str, Reader]) -> Callable[[Any], bool]:
    if not isinstance(spec, dict) or not isinstance(spec.get("Name"), str):
        raise Ec2Error("InvalidParameterValue", "each Filter needs a Name and Values")
    name = spec["Name"]
    reader = readers.get(name) or _tag_reader(name)
    if reader is None:
        raise Ec2Error("InvalidParameterValue", f"the filter {name[:64]!r} is invalid")
    values = _as_list(spec.get("Value"))
    if not values or not all(isinstance(v, str) for v in values):
        raise Ec2Error("InvalidParameterValue", f"the filter {name[:64]!r} needs values")
    pattern = re.compile("|".join(_wildcard(v) for v in values), re.DOTALL)

    def test(item: Any) -> bool:
        found = reader(item)
        candidates = [found] if isinstance(found, str) else list(found or ())
        return any(pattern.fullmatch(c) for c in candidates)

    return test


def _tag_reader(name: str) -> Reader | None:
    """`tag:<key>` reads the item's tag value; items carry their tags as `item["tags"]`."""
    if not name.startswith("tag:"):
        return None
    key = name[4:]
    return lambda item: (item.get("tags") or {}).get(key) if isinstance(item, dict) else None


def _wildcard(value: str) -> str:
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return "(?:" + "".join(out) + ")"
