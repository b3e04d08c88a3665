"""The pools' compact cache of full XML fragments (oned/xmlcache.py): the recently used kept as
they are within a byte budget, the rest compressed, every read giving back the exact bytes."""

from __future__ import annotations

import random

import pytest

from oned import xmlcache
from oned.xmlcache import XmlCache


def fragment(oid: int, size: int = 3000) -> bytes:
    """A VM-like escaped document of about ``size`` bytes, different for each ``oid``."""
    head = b"&lt;VM&gt;&lt;ID&gt;%d&lt;/ID&gt;&lt;NAME&gt;vm-%d&lt;/NAME&gt;" % (oid, oid)
    body = b"&lt;DISK&gt;&lt;TARGET&gt;hd%d&lt;/TARGET&gt;&lt;/DISK&gt;" % (oid % 7)
    return (head + body * (size // len(body)))[:size] + b"&lt;/VM&gt;"


def test_a_fragment_put_is_got_back_and_an_unknown_one_is_none():
    cache = XmlCache()
    cache.put(1, fragment(1))
    assert cache.get(1) == fragment(1)
    assert cache.get(2) is None
    assert 1 in cache and 2 not in cache and len(cache) == 1


def test_within_the_budget_nothing_is_compressed():
    cache = XmlCache(budget=10 * 3100)
    for oid in range(10):
        cache.put(oid, fragment(oid))
    sizes = cache.sizes()
    assert sizes["hot"] == 10 and sizes["cold"] == 0 and sizes["cold_bytes"] == 0
    assert sizes["hot_bytes"] == sum(len(fragment(oid)) for oid in range(10))


def test_over_the_budget_the_least_recently_used_go_cold_compressed_and_read_back_exact():
    cache = XmlCache(budget=3 * 3100)
    for oid in range(100):
        cache.put(oid, fragment(oid))
    sizes = cache.sizes()
    assert sizes["hot"] == 3 and sizes["cold"] == 97
    assert sizes["cold_bytes"] < 97 * len(fragment(0)) / 10  # compressed against the first
    for oid in range(100):
        assert cache.get(oid) == fragment(oid)
    assert len(cache) == 100


def test_a_read_makes_a_fragment_the_most_recently_used():
    cache = XmlCache(budget=2 * 3100)
    cache.put(1, fragment(1))
    cache.put(2, fragment(2))
    cache.get(1)
    cache.put(3, fragment(3))  # pushes out 2, the least recently used
    assert cache.sizes()["hot"] == 2
    assert set(cache._hot) == {1, 3}


def test_a_cold_fragment_read_keeps_its_compressed_copy_so_a_scan_deflates_nothing(
    monkeypatch: pytest.MonkeyPatch,
):
    cache = XmlCache(budget=3100)
    for oid in range(20):
        cache.put(oid, fragment(oid))
    for oid in range(20):  # the one that was hot is deflated once, when it first leaves
        cache.get(oid)
    before = cache.sizes()
    deflated: list[bytes] = []
    monkeypatch.setattr(XmlCache, "_deflate", lambda _, data: deflated.append(data) or b"")
    for _ in range(2):
        assert [cache.get(oid) for oid in range(20)] == [fragment(oid) for oid in range(20)]
    assert deflated == []
    assert cache.sizes()["cold_bytes"] == before["cold_bytes"]


def test_forget_drops_both_copies_and_put_replaces_the_old_fragment():
    cache = XmlCache(budget=3100)
    cache.put(1, fragment(1))
    cache.put(2, fragment(2))  # 1 goes cold
    cache.get(1)  # 1 hot again, its cold copy kept
    cache.forget(1)
    assert cache.get(1) is None and 1 not in cache
    cache.put(2, b"new")
    cache.put(3, fragment(3))  # 2 goes cold: its new form, not the old cold copy
    assert cache.get(2) == b"new"
    cache.forget(42)  # nothing there: nothing happens
    assert cache.sizes()["hot_bytes"] == sum(len(v) for v in cache._hot.values())


def test_fragments_compressed_before_the_dictionary_was_chosen_still_read_back():
    cache = XmlCache(budget=0)
    small = [b"&lt;USER&gt;%d&lt;/USER&gt;" % n for n in range(5)]
    for oid, data in enumerate(small):
        cache.put(oid, data)
    assert cache.sizes()["dict_bytes"] == 0
    cache.put(10, fragment(10))
    cache.put(11, fragment(11))
    assert cache.sizes()["dict_bytes"] == len(fragment(10)) >= xmlcache.DICT_MIN
    assert [cache.get(oid) for oid in range(5)] == small
    assert cache.get(10) == fragment(10)


def test_a_zero_budget_keeps_only_the_newest_uncompressed():
    cache = XmlCache(budget=0)
    for oid in range(5):
        cache.put(oid, fragment(oid))
        assert cache.sizes()["hot"] == 1 and cache.get(oid) == fragment(oid)
    assert cache.sizes()["cold"] == 4


def test_without_a_budget_every_fragment_stays_uncompressed():
    cache = XmlCache(budget=None)
    for oid in range(100):
        cache.put(oid, fragment(oid))
    assert cache.sizes()["hot"] == 100 and cache.sizes()["cold"] == 0
    assert [cache.get(oid) for oid in range(100)] == [fragment(oid) for oid in range(100)]


def test_clear_empties_both_tiers():
    cache = XmlCache(budget=3100)
    for oid in range(5):
        cache.put(oid, fragment(oid))
    cache.clear()
    assert len(cache) == 0 and cache.get(0) is None
    assert cache.sizes()["hot_bytes"] == cache.sizes()["cold_bytes"] == 0


def test_a_negative_budget_is_refused_naming_it():
    with pytest.raises(ValueError, match="budget must be 0 or more bytes, not -1"):
        XmlCache(budget=-1)


def test_random_operations_agree_with_a_plain_dict():
    rng = random.Random(18)
    cache = XmlCache(budget=5 * 3000)
    model: dict[int, bytes] = {}
    for step in range(3000):
        oid = rng.randrange(40)
        action = rng.random()
        if action < 0.4:
            data = fragment(oid * 1000 + step, rng.randrange(1, 4000))
            cache.put(oid, data)
            model[oid] = data
        elif action < 0.5:
            cache.forget(oid)
            model.pop(oid, None)
        else:
            assert cache.get(oid) == model.get(oid)
        sizes = cache.sizes()
        assert sizes["hot_bytes"] <= 5 * 3000 or sizes["hot"] == 1
        assert sizes["hot_bytes"] == sum(len(v) for v in cache._hot.values())
        assert sizes["cold_bytes"] == sum(len(v) for v in cache._cold.values())
    assert len(cache) == len(model)
