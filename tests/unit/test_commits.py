"""The commit queue (oned.commits): units of one reactor turn share one transaction, each is
answered only after it, and a bad unit fails alone."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from twisted.internet import defer, task

from oned.commits import CommitQueue


class Refused(Exception):
    pass


class FakeStore:
    """Records each transaction as the list of what its writes wrote; a write that raises
    rolls its whole transaction back (nothing of it recorded), as the real store does."""

    def __init__(self) -> None:
        self.committed: list[list[str]] = []
        self.attempts = 0

    def run(self, writes: Sequence) -> None:
        self.attempts += 1
        wrote: list[str] = []
        for write in writes:
            write(wrote)
        self.committed.append(wrote)


def writing(what: str):
    def write(wrote: list[str]) -> None:
        if what == "bad":
            raise Refused("constraint failed")
        wrote.append(what)

    return write


@pytest.fixture
def clock() -> task.Clock:
    return task.Clock()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def test_units_of_one_turn_share_one_transaction_and_are_answered_after_it(clock, store):
    queue = CommitQueue(store, clock.callLater)
    answers = [queue.submit(writing(w), lambda w=w: f"{w} done") for w in ("a", "b", "c")]
    assert store.committed == [] and not any(d.called for d in answers)
    clock.advance(0)
    assert store.committed == [["a", "b", "c"]]
    assert [d.result for d in answers] == [
        "a done",
        "b done",
        "c done",
    ]
    assert queue.groups == 1 and len(queue) == 0


def test_then_runs_only_after_the_commit(clock, store):
    queue = CommitQueue(store, clock.callLater)
    seen: list[list[list[str]]] = []
    queue.submit(writing("a"), lambda: seen.append(list(store.committed)))
    clock.advance(0)
    assert seen == [[["a"]]]


def test_a_bad_unit_fails_alone_and_the_others_commit(clock, store):
    queue = CommitQueue(store, clock.callLater)
    undone: list[BaseException] = []
    good = queue.submit(writing("a"), lambda: "a done")
    bad = queue.submit(writing("bad"), lambda: "never", undone.append)
    other = queue.submit(writing("c"), lambda: "c done")
    clock.advance(0)
    assert store.committed == [["a"], ["c"]]  # the group rolled back, then one at a time
    assert good.result == "a done" and other.result == "c done"
    failure = []
    bad.addErrback(failure.append)
    assert failure[0].check(Refused) and [type(e) for e in undone] == [Refused]


def test_a_lone_bad_unit_is_tried_once(clock, store):
    queue = CommitQueue(store, clock.callLater)
    bad = queue.submit(writing("bad"), lambda: "never")
    clock.advance(0)
    assert store.attempts == 1 and store.committed == []
    assert isinstance(bad.result.value, Refused)
    bad.addErrback(lambda _: None)


def test_units_of_the_next_turn_go_in_the_next_transaction(clock, store):
    queue = CommitQueue(store, clock.callLater)
    queue.submit(writing("a"), lambda: None)
    clock.advance(0)
    queue.submit(writing("b"), lambda: None)
    queue.submit(writing("c"), lambda: None)
    clock.advance(0)
    assert store.committed == [["a"], ["b", "c"]]


def test_a_group_is_bounded(clock, store):
    queue = CommitQueue(store, clock.callLater, largest=2)
    for what in "abcde":
        queue.submit(writing(what), lambda: None)
    clock.advance(0)
    assert store.committed == [["a", "b"], ["c", "d"], ["e"]]


def test_a_cancelled_answer_still_commits_and_runs_then(clock, store):
    """A client that went away: memory must still follow the database."""
    queue = CommitQueue(store, clock.callLater)
    ran: list[str] = []
    answer = queue.submit(writing("a"), lambda: ran.append("then"))
    answer.addErrback(lambda failure: failure.trap(defer.CancelledError))
    answer.cancel()
    clock.advance(0)
    assert store.committed == [["a"]] and ran == ["then"]


def test_a_then_that_raises_fails_its_own_answer_only(clock, store):
    queue = CommitQueue(store, clock.callLater)

    def broken() -> None:
        raise RuntimeError("bug")

    first = queue.submit(writing("a"), broken)
    second = queue.submit(writing("b"), lambda: "b done")
    clock.advance(0)
    assert isinstance(first.result.value, RuntimeError) and second.result == "b done"
    first.addErrback(lambda _: None)


def test_flush_commits_at_once_what_waits(clock, store):
    """oned's shutdown flushes: nothing submitted is left behind."""
    queue = CommitQueue(store, clock.callLater)
    answer = queue.submit(writing("a"), lambda: "a done")
    queue.flush()
    assert store.committed == [["a"]] and answer.result == "a done"
    clock.advance(0)  # the scheduled flush finds nothing
    assert store.committed == [["a"]]


def test_a_prepared_unit_decides_its_write_at_the_flush_and_again_when_alone(clock, store):
    """prepare runs at the flush (and again for the unit alone after its group failed); one
    that raises fails its own unit only; None writes nothing but is answered after the commit."""
    queue = CommitQueue(store, clock.callLater)
    prepared: list[str] = []

    def prepare(what):
        def run():
            prepared.append(what)
            if what == "raises":
                raise Refused("the VM moved on")
            return None if what == "nothing" else writing(what)

        return run

    undone: list[BaseException] = []
    answers = [
        queue.submit_prepared(prepare(w), lambda w=w: w, undone.append)
        for w in ("a", "raises", "nothing", "bad")
    ]
    assert prepared == []
    clock.advance(0)
    assert prepared == ["a", "raises", "nothing", "bad", "a", "nothing", "bad"]
    assert store.committed == [["a"], []]
    assert answers[0].result == "a" and answers[2].result == "nothing"
    for failed in (answers[1], answers[3]):
        assert failed.result.check(Refused)
        failed.addErrback(lambda _: None)
    assert len(undone) == 2
