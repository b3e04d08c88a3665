"""vmm_ec2's inventory (drivers/ec2_inventory.py): the POLLs of a cycle share one listing."""

from __future__ import annotations

import threading

import pytest

from drivers.ec2_inventory import Inventory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def instance(iid: str, state: str = "running") -> dict:
    return {
        "InstanceId": iid,
        "State": {"Name": state},
        "Tags": [{"Key": "one:vmid", "Value": iid}],
    }


def test_concurrent_lookups_share_one_listing_and_later_ones_use_it_until_it_is_old():
    clock, calls = Clock(), []
    release = threading.Event()

    def fetch() -> list[dict]:
        calls.append(1)
        return [instance(f"i-{n}") for n in range(20)]

    inventory = Inventory(fetch, window=0, max_age=5, clock=clock, sleep=lambda _: release.wait(5))
    found: list[dict | None] = []
    threads = [
        threading.Thread(target=lambda n=n: found.append(inventory.lookup(f"i-{n}")))
        for n in range(20)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1 and len(found) == 20 and all(found)
    clock.now += 4
    assert inventory.lookup("i-3") is not None and len(calls) == 1
    clock.now += 2
    inventory.lookup("i-3")
    assert len(calls) == 2


def test_a_failed_listing_fails_its_waiters_and_the_next_lookup_tries_again():
    outcomes: list[object] = [RuntimeError("AuthFailure"), [instance("i-1")]]

    def fetch() -> list[dict]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    inventory = Inventory(fetch, window=0, clock=Clock(), sleep=lambda _: None)
    with pytest.raises(RuntimeError, match="AuthFailure"):
        inventory.lookup("i-1")
    assert inventory.lookup("i-1") is not None


def test_what_an_action_noted_survives_a_listing_that_lags_behind_it():
    clock = Clock()
    listings = [[], []]
    inventory = Inventory(
        lambda: listings.pop(0), window=0, max_age=1, clock=clock, sleep=lambda _: None
    )
    assert inventory.current() == {}
    inventory.note(instance("i-new", "pending"))
    clock.now += 2
    assert inventory.lookup("i-new")["State"]["Name"] == "pending"
    assert [i["InstanceId"] for i in inventory.tagged("one:vmid", "i-new")] == ["i-new"]
