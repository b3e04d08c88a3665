"""oned.collector: full collections spaced out so that they take at most 1 % of oned's time,
young collections untouched, CPython's threshold given back after the pause. The fake
collector stands in for `gc` only where the real one cannot be driven (its timing); the last
test runs the real one."""

from __future__ import annotations

import gc

from oned.collector import HELD, FullCollections


class FakeGc:
    def __init__(self) -> None:
        self.callbacks: list = []
        self.threshold = (700, 10, 10)

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, *values: int) -> None:
        self.threshold = tuple(values)

    def collect(self, generation: int, took: float, clock: list[float]) -> None:
        for callback in self.callbacks:
            callback("start", {"generation": generation})
        clock[0] += took
        for callback in self.callbacks:
            callback("stop", {"generation": generation, "collected": 0, "uncollectable": 0})


def spaced(least: float = 60.0) -> tuple[FullCollections, FakeGc, list[float]]:
    clock = [1000.0]
    fake = FakeGc()
    full = FullCollections(share=0.01, least=least, clock=lambda: clock[0], collector=fake)
    full.install()
    return full, fake, clock


def test_a_full_collection_holds_the_next_one_off_for_the_least_pause():
    full, fake, clock = spaced()
    fake.collect(2, 0.2, clock)
    assert fake.threshold == (700, 10, HELD)
    assert full.holding and full.collections == 1
    clock[0] += 59
    full.tick()
    assert fake.threshold == (700, 10, HELD)
    clock[0] += 1
    full.tick()
    assert fake.threshold == (700, 10, 10)
    assert not full.holding


def test_a_long_collection_holds_a_hundred_times_its_duration():
    full, fake, clock = spaced()
    fake.collect(2, 1.5, clock)  # 100,000 VMs
    clock[0] += 149
    full.tick()
    assert full.holding
    clock[0] += 1
    full.tick()
    assert fake.threshold[2] == 10
    assert full.seconds == 1.5


def test_young_collections_change_nothing():
    full, fake, clock = spaced()
    fake.collect(0, 0.001, clock)
    fake.collect(1, 0.003, clock)
    assert fake.threshold == (700, 10, 10)
    assert not full.holding and full.collections == 0


def test_an_operators_thresholds_are_kept():
    full, fake, clock = spaced()
    fake.threshold = (5000, 20, 30)
    full = FullCollections(least=60, clock=lambda: clock[0], collector=fake)
    full.install()
    fake.collect(2, 0.1, clock)
    assert fake.threshold == (5000, 20, HELD)
    clock[0] += 60
    full.tick()
    assert fake.threshold == (5000, 20, 30)


def test_uninstall_gives_the_threshold_back_at_once():
    full, fake, clock = spaced()
    fake.collect(2, 0.1, clock)
    full.uninstall()
    assert fake.threshold == (700, 10, 10)
    assert fake.callbacks == []


def test_with_the_real_collector():
    before = gc.get_threshold()
    full = FullCollections(least=3600)
    full.install()
    try:
        gc.collect()
        assert gc.get_threshold()[2] == HELD
        assert full.collections == 1 and full.holding
        gc.collect(0)
        assert full.collections == 1
    finally:
        full.uninstall()
    assert gc.get_threshold() == before
