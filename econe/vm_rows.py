"""Each user's VM rows, kept current by oned's change feed: a DescribeInstances of 10,000
unchanged instances is one small call to oned and a join of kept `<item>`s.

Pure and blocking. A `Mirror` holds one user's rows (what `row_of` made of each of their VMs,
DONE ones too) by VM id, in id order, and where it stands in the feed (`one.system.changes`:
its EPOCH and SEQ; econe.feed). Each reader asks the feed, without waiting, what changed since
and applies it: a VM listed is read again (only the user's own: oneadmin's feed lists every
VM); a VM removed (it reached DONE and left oned's memory) is read from oned's store with
`one.vmpool.infoset`, which lists it DONE as `one.vmpool.info` with state -2 does. A reset
(the first call, oned restarted, the mirror too far behind) reads the whole listing again.
One lock per mirror: a user's readers take turns, other users' run on. `Mirrors` keeps the
mirrors last used, `LIMIT` rows and `USERS` mirrors at most (the one in use whatever its size).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from econe.feed import Changes

Row = dict[str, Any]
LIMIT = 50_000  # rows kept in all (the listings of a few large users)
USERS = 1_000  # mirrors kept
MAX_SET = 10_000  # ids one one.vmpool.infoset call reads (oned's MAX_INFOSET)


class Oned(Protocol):
    """What a mirror asks oned, as its user."""

    def changes(self, since: int, epoch: str) -> Changes: ...

    def listing(self) -> Iterable[ET.Element]:
        """Every VM of the user, DONE ones too, in id order (`one.vmpool.info` -3, state -2)."""
        ...

    def vms(self, ids: list[int]) -> Iterable[ET.Element]:
        """Those of `ids` oned has, DONE ones too (`one.vmpool.infoset`)."""
        ...


class Mirror:
    """The rows of user `uid`'s VMs and the feed position they are current at."""

    def __init__(self, uid: int, row_of: Callable[[ET.Element], Row]) -> None:
        self.uid = str(uid)
        self.row_of = row_of  # a `<VM>` element's row; it has the VM's id as "vid"
        self.lock = threading.Lock()
        self.epoch = ""
        self.seq = 0
        self.rows: dict[int, Row] = {}
        self.loads = 0  # whole listings read (tests and benchmarks look)

    def sync(self, oned: Oned) -> list[Row]:
        """The user's rows in id order, brought up to the feed's answer."""
        with self.lock:
            changes = oned.changes(self.seq, self.epoch)
            if changes.reset or changes.epoch != self.epoch:
                self._load(oned)  # after taking SEQ: a change meanwhile comes again
            else:
                self._apply(oned, changes)
            self.epoch, self.seq = changes.epoch, changes.seq
            return list(self.rows.values())

    def _load(self, oned: Oned) -> None:
        self.loads += 1
        self.rows = {}
        self._put(oned.listing())

    def _apply(self, oned: Oned, changes: Changes) -> None:
        """The VMs listed as they are now, then those removed read from oned's store (those
        it does not have any more are dropped). Applying twice is harmless: a failed call
        leaves SEQ where it was and the next reader applies it all again."""
        self._put(changes.listed.get("VM", ()))
        removed = changes.removed.get("VM", [])
        if len(removed) > MAX_SET:
            self._load(oned)
        elif removed:
            found = self._put(oned.vms(removed))
            for vid in removed:
                if vid not in found:
                    self.rows.pop(vid, None)

    def _put(self, vms: Iterable[ET.Element]) -> set[int]:
        """Keep the rows of the user's VMs among `vms` (in id order, as oned lists them);
        the ids kept."""
        rows, kept, ordered = self.rows, set(), True
        for vm in vms:
            if vm.findtext("UID") == self.uid:
                row = self.row_of(vm)
                vid = row["vid"]
                if vid not in rows and rows and vid < next(reversed(rows)):
                    ordered = False
                rows[vid] = row
                kept.add(vid)
        if not ordered:
            self.rows = dict(sorted(rows.items()))
        return kept


class Mirrors:
    """The mirrors of the users last served, by uid (least recently used let go first)."""

    def __init__(
        self, row_of: Callable[[ET.Element], Row], limit: int = LIMIT, users: int = USERS
    ) -> None:
        self.row_of = row_of
        self.limit = limit
        self.users = users
        self._guard = threading.Lock()
        self._kept: OrderedDict[int, Mirror] = OrderedDict()

    def of(self, uid: int) -> Mirror:
        """User `uid`'s mirror (a new one, empty, the first time or after it was let go)."""
        with self._guard:
            mirror = self._kept.pop(uid, None) or Mirror(uid, self.row_of)
            self._kept[uid] = mirror
            total = sum(len(m.rows) for m in self._kept.values())
            while len(self._kept) > 1 and (total > self.limit or len(self._kept) > self.users):
                _, old = self._kept.popitem(last=False)
                total -= len(old.rows)
            return mirror

    def __len__(self) -> int:
        return len(self._kept)
