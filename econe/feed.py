"""oned's change feed (`one.system.changes`) read: the `<CHANGES>` document as plain values.

Pure. The contract is share/doc/dashboard.md, "oned: the change feed": the objects that
changed after the caller's `since`, each as it is now in its pool listing's summary form
(`<VM_POOL><VM>…`), then `<REMOVED>` with the ids that left oned's memory (a VM that reached
DONE); `RESET="1"` when the caller must read its pools again.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

POOLS = {"VM_POOL": "VM", "HOST_POOL": "HOST", "VNET_POOL": "VNET", "IMAGE_POOL": "IMAGE"}
POOLS["USER_POOL"] = "USER"
METHOD = "one.system.changes"


@dataclass
class Changes:
    """One reply: where the feed is (`epoch`, `seq`), whether to read everything again, the
    objects listed per kind ("VM": the `<VM>` elements) and the ids removed per kind."""

    epoch: str
    seq: int
    reset: bool
    listed: dict[str, list[ET.Element]] = field(default_factory=dict)
    removed: dict[str, list[int]] = field(default_factory=dict)


def read(root: ET.Element) -> Changes:
    """The `<CHANGES>` element as `Changes`; unknown pools and malformed ids are skipped."""
    seq = root.get("SEQ", "0")
    reset = root.get("RESET") == "1"
    found = Changes(root.get("EPOCH", ""), int(seq) if seq.isdigit() else 0, reset)
    for pool in root:
        kind = POOLS.get(pool.tag)
        if kind is not None:
            found.listed[kind] = pool.findall(kind)
        elif pool.tag == "REMOVED":
            for element in pool:
                if (element.text or "").strip().isdigit():
                    found.removed.setdefault(element.tag, []).append(int(element.text or 0))
    return found


def arguments(since: int, epoch: str, wait_ms: int = 0) -> tuple[int | str, ...]:
    """The call's parameters after the session: `epoch` only once the caller has one."""
    return (since, wait_ms, epoch) if epoch else (since, wait_ms)
