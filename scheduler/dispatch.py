"""Sending a round's decisions to oned: deployments and the reasons VMs wait.

Calls go out concurrently over a few kept-alive connections (one ``OneClient`` per worker
thread), ``BATCH`` at a time in one ``system.multicall`` each: never one deployment per round
trip. An oned that does not know ``system.multicall`` gets the calls one by one instead, from
then on. Every call ends as an ``Outcome``; nothing here raises for a refused or failed call.

The calls (reference §4.2, §4.4):

* ``one.vm.deploy(vid, hid, true)``: the modern form with ``enforce``, so that oned checks the
  host's capacity once more and a stale view cannot over-commit a host. When oned answers 0x1000
  (it knows only the 1.4 form) and ``one.vm.deploy(vid, hid)`` then works, that form is used
  from then on. oned's check counts the host's RESERVED_CPU/RESERVED_MEM as placement does.
* ``one.vm.update(vid, 'SCHED_MESSAGE="..."', 1)``: merge the reason into the VM's
  USER_TEMPLATE, where ``onevm show`` shows it (OpenNebula >= 4 does the same). oned removes it
  when the VM is deployed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from oned.client import OneCallError, OneClient, OneClientError
from oned.template import Template
from scheduler.placement import Placement

BAD_CALL = 0x1000
MERGE = 1
BATCH = 20  # calls per system.multicall: oned runs them in one go, ~20 ms of its time


@dataclass(frozen=True)
class Outcome:
    """What became of one call: ``error`` is None on success, else oned's message or why the
    call could not be made; ``unsupported`` says oned does not know the method (0x1000)."""

    vm: int
    host: int = -1
    error: str | None = None
    unsupported: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def sched_message(reason: str) -> str:
    """The template text that sets USER_TEMPLATE/SCHED_MESSAGE to ``reason``."""
    return Template([("SCHED_MESSAGE", reason)]).to_text()


class Dispatcher:
    """Runs deploy and update calls on ``workers`` threads, each with its own connection.

    ``connect`` makes a new ``OneClient``; a connection that fails is closed and reopened by
    the client on its next call.
    """

    def __init__(self, connect: Callable[[], OneClient], workers: int = 8):
        self._connect = connect
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="dispatch")
        self._local = threading.local()
        self._clients: list[OneClient] = []
        self._lock = threading.Lock()
        self.enforce = True  # send the modern deploy form with enforce=true
        self.multicall = True  # oned takes system.multicall

    def deploy(self, placements: Sequence[Placement]) -> list[Outcome]:
        """Deploy every placement, concurrently; one outcome per placement, in order."""
        return self._batched(list(placements), self._deploy_batch, self._deploy)

    def explain(self, reasons: Mapping[int, str]) -> list[Outcome]:
        """Set SCHED_MESSAGE of every VM in ``reasons``, concurrently."""
        return self._batched(list(reasons.items()), self._update_batch, self._update)

    def _batched(
        self,
        items: list[Any],
        batch: Callable[[list[Any]], list[Outcome] | None],
        one: Callable[[Any], Outcome],
    ) -> list[Outcome]:
        """``batch`` on chunks of BATCH items, concurrently; a chunk it could not send as a
        multicall (None) goes out call by call."""

        def run(chunk: list[Any]) -> list[Outcome]:
            if self.multicall:
                outcomes = batch(chunk)
                if outcomes is not None:
                    return outcomes
            return [one(item) for item in chunk]

        chunks = [items[at : at + BATCH] for at in range(0, len(items), BATCH)]
        return [o for outcomes in self._pool.map(run, chunks) for o in outcomes]

    def close(self) -> None:
        """Wait for calls in flight, then close every connection."""
        self._pool.shutdown(wait=True)
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def _client(self) -> OneClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._connect()
            with self._lock:
                self._clients.append(client)
        return client

    def _deploy(self, placement: Placement) -> Outcome:
        vid, hid = placement.vm, placement.host
        client = self._client()
        try:
            if not self.enforce:
                client.call("one.vm.deploy", vid, hid)
                return Outcome(vid, hid)
            try:
                client.call("one.vm.deploy", vid, hid, True)
            except OneCallError as e:
                if e.code != BAD_CALL:
                    raise
                client.call("one.vm.deploy", vid, hid)
                self.enforce = False  # NOTE: a 1.4-style oned; it answered the short form
            return Outcome(vid, hid)
        except OneClientError as e:
            return _failed(vid, hid, e)

    def _deploy_batch(self, chunk: list[Placement]) -> list[Outcome] | None:
        """The chunk's deployments in one multicall; a call refused for its form (a 1.4-style
        oned) is made again on its own, by ``_deploy``'s fallback."""

        def extra(p: Placement) -> tuple[bool, ...]:
            return (True,) if self.enforce else ()

        calls = [("one.vm.deploy", (p.vm, p.host, *extra(p))) for p in chunk]
        results = self._multicall(calls)
        if results is None:
            return None
        outcomes = []
        for placement, result in zip(chunk, results, strict=True):
            if isinstance(result, OneCallError) and result.code == BAD_CALL and extra(placement):
                outcomes.append(self._deploy(placement))
            else:
                outcomes.append(_outcome(placement.vm, placement.host, result))
        return outcomes

    def _update_batch(self, chunk: list[tuple[int, str]]) -> list[Outcome] | None:
        calls = [("one.vm.update", (vid, sched_message(reason), MERGE)) for vid, reason in chunk]
        results = self._multicall(calls)
        if results is None:
            return None
        return [_outcome(vid, -1, result) for (vid, _), result in zip(chunk, results, strict=True)]

    def _multicall(self, calls: list[tuple[str, tuple]]) -> list[Any] | None:
        """Each call's value or error; None when oned refuses multicalls (then never again)."""
        try:
            return self._client().multicall(calls)
        except OneCallError:
            self.multicall = False  # NOTE: an oned without system.multicall; xmlrpc-c has it
            return None
        except OneClientError as e:
            return [e] * len(calls)

    def _update(self, item: tuple[int, str]) -> Outcome:
        vid, reason = item
        try:
            self._client().call("one.vm.update", vid, sched_message(reason), MERGE)
            return Outcome(vid)
        except OneClientError as e:
            return _failed(vid, -1, e)


def _outcome(vid: int, hid: int, result: Any) -> Outcome:
    return _failed(vid, hid, result) if isinstance(result, OneClientError) else Outcome(vid, hid)


def _failed(vid: int, hid: int, error: OneClientError) -> Outcome:
    unsupported = isinstance(error, OneCallError) and error.code == BAD_CALL
    return Outcome(vid, hid, error.message, unsupported)


def failures(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]


__all__ = ["Dispatcher", "Outcome", "failures", "sched_message"]
