"""vmm_ec2's view of this cloud's instances in its region: one DescribeInstances (all pages) per
polling cycle, whatever the number of VMs.

oned sends one POLL per VM. The first POLL that finds the view older than ``max_age`` waits
``window`` seconds, so the POLLs of one cycle arriving meanwhile join it, then lists every
instance tagged with this cloud in one call; the others wait for that answer, and POLLs within
``max_age`` are answered from it. Deploys and terminations note what EC2 answered them, so the
view is never behind the driver's own actions (and the per-type limits count them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Instance = dict[str, Any]
LAG = 60.0  # seconds an instance an action noted is kept when a listing does not show it


class Inventory:
    def __init__(
        self,
        fetch: Callable[[], list[Instance]],
        window: float = 0.2,
        max_age: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._fetch, self.window, self.max_age = fetch, window, max_age
        self._clock, self._sleep = clock, sleep
        self._cond = threading.Condition()
        self._instances: dict[str, Instance] = {}
        self._taken = float("-inf")  # when the last listing was asked for
        self._fetching = False
        self._generation = 0
        self._error: BaseException | None = None
        self.fetches = 0
        self._noted: dict[str, float] = {}  # instance id -> when an action noted it

    def current(self) -> dict[str, Instance]:
        """Every instance of this cloud by id, listed at most ``max_age`` seconds ago."""
        with self._cond:
            while self._clock() - self._taken > self.max_age:
                if not self._fetching:
                    self._fetching = True
                    break
                self._wait_next(self._generation)
                if self._error is not None:
                    raise self._error
            else:
                return dict(self._instances)
        return self._refresh()

    def _wait_next(self, generation: int) -> None:
        """Wait (holding the condition) until the listing under way has ended."""
        while self._generation == generation:
            self._cond.wait()

    def _refresh(self) -> dict[str, Instance]:
        """Lead one listing: wait for the cycle's other POLLs, list, wake every waiter."""
        self._sleep(self.window)
        started = self._clock()
        try:
            listed = self._fetch()
        except BaseException as err:
            with self._cond:
                self._fetching, self._error = False, err
                self._generation += 1
                self._cond.notify_all()
            raise
        with self._cond:
            self.fetches += 1
            fresh = {i["InstanceId"]: i for i in listed}
            for iid, when in list(self._noted.items()):  # a listing may lag behind the action
                if when < started - LAG:
                    del self._noted[iid]
                elif iid not in fresh and iid in self._instances:
                    fresh[iid] = self._instances[iid]
            self._instances = fresh
            self._taken, self._fetching, self._error = started, False, None
            self._generation += 1
            self._cond.notify_all()
            return dict(self._instances)

    def lookup(self, instance_id: str) -> Instance | None:
        return self.current().get(instance_id)

    def note(self, instance: Instance) -> None:
        """What EC2 answered an action about one instance (state changes merge into it)."""
        with self._cond:
            known = self._instances.get(instance["InstanceId"], {})
            self._noted[instance["InstanceId"]] = self._clock()
            self._instances[instance["InstanceId"]] = {**known, **instance}

    def tagged(self, key: str, value: str) -> list[Instance]:
        """The known instances whose tag ``key`` is ``value``."""
        return [i for i in self.current().values() if tag(i, key) == value]


def tag(instance: Instance, key: str) -> str | None:
    return next((t.get("Value") for t in instance.get("Tags", ()) if t.get("Key") == key), None)
