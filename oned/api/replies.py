"""Wrap cached XML fragments into the documents an info call returns."""

from __future__ import annotations

from collections.abc import Iterable

from oned.rpc.marshal import Escaped


def document(fragment: bytes) -> Escaped:
    return Escaped((fragment,))


def pool(root: str, fragments: Iterable[bytes]) -> Escaped:
    """``<ROOT>...</ROOT>`` (escaped), or ``<ROOT/>`` when empty; pyone reads both."""
    parts = list(fragments)
    if not parts:
        return Escaped((f"&lt;{root}/&gt;".encode(),))
    return Escaped((f"&lt;{root}&gt;".encode(), *parts, f"&lt;/{root}&gt;".encode()))
