"""poll_writes: the figures POLL answers changed, written for many VMs in one transaction.

A POLL answer that changes nothing (same USEDMEMORY, USEDCPU, NETRX, NETTX and template
values) writes nothing. One that changes something marks its VM; the marked VMs of a reactor
turn are written together as one unit of the group commit (``oned.commits.CommitQueue``, the
one allocations use, so both may share a transaction): one UPDATE of the poll columns
(MEMORY, CPU, NET_TX, NET_RX, LAST_POLL) for all of them, and the template of those whose
answer set template values. The values written are the pool's at the commit, never an older
copy, and only those columns: a transition committed meanwhile (its own row, state and all)
is never overwritten. A VM gone from the pool (DONE) is skipped.

Crash recovery: the database may be one reactor turn behind memory for the figures, and its
LAST_POLL is that of the last answer that changed something (or at most ``REFRESH`` polling
intervals old, see ``oned.vmm``); nothing depends on it at a start, where every RUNNING VM is
polled again within the first interval. A failed write (the database is away) leaves its VMs
marked: they go with the next answer's write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from oned.records import Vm
from oned.store import rows
from oned.store.schema import vm_pool

_FIGURES = ("memory", "cpu", "net_tx", "net_rx", "last_poll")
_BY_OID = vm_pool.c.oid == sa.bindparam("b_oid")
_UPDATE = vm_pool.update().where(_BY_OID).values({c: sa.bindparam(c) for c in _FIGURES})
_UPDATE_TEMPLATE = vm_pool.update().where(_BY_OID).values(template=sa.bindparam("b_template"))


class PollWrites:
    """VMs whose POLL figures changed, written once per reactor turn.

    ``commits`` is the CommitQueue (None: each ``mark`` writes at once, in its own
    transaction, through ``store.run``); ``vms(vid)`` is the pool's VM now."""

    def __init__(
        self, store: Any, commits: Any, vms: Callable[[int], Vm | None], log: logging.Logger
    ):
        self._store, self._commits, self._vms, self._log = store, commits, vms, log
        self._marked: dict[int, bool] = {}  # vid -> its template changed too
        self._submitted = False
        self.writes = 0  # transactions that held poll figures (tests, the benchmark)
        self.rows = 0

    def __len__(self) -> int:
        return len(self._marked)

    def mark(self, vid: int, template: bool = False) -> None:
        """``vid``'s poll figures (and its template, if ``template``) are to be written."""
        self._marked[vid] = template or self._marked.get(vid, False)
        if self._commits is None:
            try:
                self._store.run([self._write])
            except Exception as exc:  # StoreError: the database is away
                self._failed(exc)
                return
            self._written()
        elif not self._submitted:
            self._submitted = True
            self._commits.submit(self._write, self._written, self._failed)

    def _write(self, conn: Any) -> None:
        figures, templates = [], []
        for vid, template in self._marked.items():
            vm = self._vms(vid)
            if vm is None:
                continue
            figures.append({"b_oid": vid, **{c: getattr(vm, c) for c in _FIGURES}})
            if template:
                templates.append({"b_oid": vid, "b_template": rows.template_text(vm.template)})
        if figures:
            conn.execute(_UPDATE, figures)
        if templates:
            conn.execute(_UPDATE_TEMPLATE, templates)

    def _written(self) -> None:
        self.writes += 1
        self.rows += len(self._marked)
        self._marked.clear()
        self._submitted = False

    def _failed(self, exc: BaseException) -> None:
        self._submitted = False
        self._log.error(f"Poll figures of {len(self._marked)} VMs not saved ({exc}); kept")
