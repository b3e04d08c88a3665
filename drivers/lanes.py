"""The threads that run a driver's actions: a lane of its own per host (``Lanes``).

A host that hangs holds only its own lane's threads; its queued actions wait in its lane,
never in front of another host's. Used by ``drivers.serve.serve``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class Workers:
    """Up to ``limit`` daemon threads taking jobs from one queue, started only when a job would
    otherwise wait (a driver starts in milliseconds; FINALIZE never waits for a hung action).
    A thread idle for ``idle_exit`` seconds ends, so a lane per host keeps no threads for long."""

    def __init__(self, limit: int, idle_exit: float | None = None) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._limit, self._started, self._idle, self._pending = max(1, limit), 0, 0, 0
        self._idle_exit = idle_exit

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            grow = self._pending > self._idle and self._started < self._limit
            self._started += grow
        self._jobs.put(job)
        if grow:
            threading.Thread(target=self._work, name=f"action-{self._started}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._next()
            if job is None:
                return
            job()

    def _next(self) -> Callable[[], None] | None:
        """The next job, or None when this thread should end (stopped, or idle too long)."""
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_exit)
            except queue.Empty:
                with self._lock:  # stay while every idle thread has a job waiting for it
                    if self._pending >= self._idle:
                        continue
                    self._idle -= 1
                    self._started -= 1
                    return None
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            return job

    def stop(self) -> None:
        """Let every worker end once it is done with what it runs (hung ones never are)."""
        with self._lock:
            count, self._limit = self._started, 0
        for _ in range(count):
            self._jobs.put(None)


Lane = Callable[[Any], "str | None"]  # a request -> its host, None for none
LANE_IDLE_EXIT = 60.0  # seconds a host's idle worker thread lives


class Lanes:
    """A ``Workers`` per host (the lane ``lane(request)`` names), each with up to ``limit``
    threads of its own, and one shared by requests of no host. A host that hangs holds only its
    own lane's threads: its queued actions wait in its lane, never in front of another host's."""

    def __init__(self, limit: int, lane: Lane | None) -> None:
        self._limit, self._lane = limit, lane
        self._shared = Workers(limit)
        self._by_host: dict[str, Workers] = {}
        self._lock = threading.Lock()

    def submit(self, request: Any, job: Callable[[], None]) -> None:
        self._workers(request).submit(job)

    def _workers(self, request: Any) -> Workers:
        try:
            host = self._lane(request) if self._lane else None
        except Exception:  # a request whose host cannot be told: the shared lane answers it
            host = None
        if not host:
            return self._shared
        with self._lock:
            workers = self._by_host.get(host)
            if workers is None:
                workers = self._by_host[host] = Workers(self._limit, LANE_IDLE_EXIT)
            return workers

    def stop(self) -> None:
        with self._lock:
            lanes = [self._shared, *self._by_host.values()]
        for workers in lanes:
            workers.stop()
