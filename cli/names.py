"""Names and ranges: a command's object arguments as ids.

``expand_ranges`` writes out ``1-3`` and ``host[01-03]``; ``resolve_ids`` turns each argument
into an id, a number as it is and a name by listing its ``Pool`` once (onehost, onevm,
oneuser, onevnet, oneimage's arguments).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cli.common import CliError, Context, int_of, parse_xml

_RANGE = re.compile(r"^(?P<pre>.*)\[(?P<start>\d+)-(?P<end>\d+)\](?P<post>.*)$")
_BARE_RANGE = re.compile(r"^(?P<start>\d+)-(?P<end>\d+)$")


def expand_ranges(args: Iterable[str]) -> list[str]:
    """``1-3`` -> 1 2 3 and ``host[01-03]`` -> host01 host02 host03 (zero-padded as written)."""
    result: list[str] = []
    for arg in args:
        m = _BARE_RANGE.match(arg) or _RANGE.match(arg)
        if not m:
            result.append(arg)
            continue
        parts = m.groupdict()
        start, end = parts["start"], parts["end"]
        width = len(start) if len(start) == len(end) else 0
        for i in range(int(start), int(end) + 1):
            result.append(f"{parts.get('pre') or ''}{i:0{width}d}{parts.get('post') or ''}")
    return result


@dataclass(frozen=True)
class Pool:
    """How to list one kind of object to resolve names: ``method(*params)`` -> ``<tag>`` items."""

    kind: str
    method: str
    tag: str
    params: tuple[Any, ...] = ()


def find_ids(pool_xml: str, tag: str, name: str) -> list[int]:
    """Ids of the ``<tag>`` items of a pool document whose NAME is ``name``."""
    root = parse_xml(pool_xml)
    return [int_of(e, "ID") for e in root.iter(tag) if e.findtext("NAME") == name]


def resolve_id(ctx: Context, pool: Pool, name_or_id: str) -> int:
    """A numeric argument is the id; a name is looked up by listing the pool.

    Raises ``CliError('host "x" not found')`` or, for an ambiguous name, a ``CliError`` saying so.
    """
    return resolve_ids(ctx, pool, [name_or_id], expand=False)[0]


def resolve_ids(ctx: Context, pool: Pool, args: Iterable[str], expand: bool = True) -> list[int]:
    """``resolve_id`` for each argument after range expansion, listing the pool at most once."""
    names = expand_ranges(args) if expand else list(args)
    pool_xml = None
    ids: list[int] = []
    for name in names:
        if name.isdigit():
            ids.append(int(name))
            continue
        if pool_xml is None:
            pool_xml = ctx.call(pool.method, *pool.params)
        found = find_ids(pool_xml, pool.tag, name)
        if not found:
            raise CliError(f'{pool.kind} "{name}" not found')
        if len(found) > 1:
            raise CliError(f'there are multiple {pool.kind}s named "{name}"')
        ids.append(found[0])
    return ids
