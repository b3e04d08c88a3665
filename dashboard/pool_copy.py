"""A user's copy of the VM and host pools, kept current by oned's change feed.

Pure. With 10,000 VMs oned takes about a second to list its pool and the dashboard as long to
read it, so the dashboard reads it once per feed (at its start and at each reset) and then
applies the feed's events: /api/vms, /api/hosts and /api/overview answer from here while the
user's feed runs, and a page reload costs oned nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Json = dict[str, Any]
KINDS = ("vm", "host")


class PoolCopy:
    """The VMs and hosts one user sees, by id; `ready` once loaded."""

    def __init__(self) -> None:
        self.items: dict[str, dict[int, Json]] = {kind: {} for kind in KINDS}
        self.ready = False

    def load(self, vms: Iterable[Json], hosts: Iterable[Json]) -> None:
        """Replace everything with a fresh listing."""
        self.items = {"vm": {v["id"]: v for v in vms}, "host": {h["id"]: h for h in hosts}}
        self.ready = True

    def apply(self, events: Iterable[tuple[str, Json]]) -> None:
        """The feed's events, in order: an object as it is now, or a removal."""
        for name, data in events:
            if name in self.items:
                self.items[name][data["id"]] = data
            elif name == "removed" and data.get("kind") in self.items:
                self.items[data["kind"]].pop(data["id"], None)

    def listing(self, kind: str) -> list[Json]:
        """The objects of `kind` in id order, as oned lists them."""
        found = self.items[kind]
        return [found[i] for i in sorted(found)]

    def forget(self) -> None:
        self.items = {kind: {} for kind in KINDS}
        self.ready = False
