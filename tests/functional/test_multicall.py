"""system.multicall on a real oned, through the standard library's own ``xmlrpc.client.MultiCall``:
each call carries its session, runs in order and gets its own reply; a bad call fails alone."""

from __future__ import annotations

import xmlrpc.client

import pytest

from oned.client import OneCallError, OneClient
from tests.functional.test_rpc_robustness import SESSION, call

TTYLINUX = 'NAME = "tty"\nCPU = 0.1\nMEMORY = 64'


@pytest.fixture
def proxy(oned):
    with xmlrpc.client.ServerProxy(oned.endpoint) as server:
        yield server


def test_calls_run_in_order_and_each_gets_its_reply(proxy):
    batch = xmlrpc.client.MultiCall(proxy)
    for n in range(3):
        batch.one.vm.allocate(SESSION, f'NAME = "vm{n}"\nMEMORY = 64\nCPU = 0.1')
    batch.one.vm.info(SESSION, 1)
    batch.one.vm.action(SESSION, "hold", 2)
    replies = list(batch())
    assert [r[:2] for r in replies[:3]] == [[True, 0], [True, 1], [True, 2]]
    assert replies[3][0] is True and "<NAME>vm1</NAME>" in replies[3][1]
    assert replies[4] == [True, 2, 0]
    assert "<STATE>2</STATE>" in call_info(proxy, 2)  # HOLD, committed before the reply


def call_info(proxy, vid: int) -> str:
    ok, document, _ = proxy.one.vm.info(SESSION, vid)
    assert ok
    return document


def test_a_failing_call_fails_alone(proxy):
    batch = xmlrpc.client.MultiCall(proxy)
    batch.one.vm.allocate(SESSION, TTYLINUX)
    batch.one.vm.info(SESSION, 99)  # no such VM
    batch.one.no.such(SESSION)  # no such method
    batch.one.vm.allocate("oneadmin:wrong", TTYLINUX)  # bad session
    batch.one.vm.allocate(SESSION, "NAME = ")  # bad template
    batch.one.vm.allocate(SESSION, TTYLINUX)
    replies = list(batch())
    assert replies[0] == [True, 0, 0]
    assert [r[0] for r in replies[1:5]] == [False] * 4
    assert [r[2] for r in replies[1:5]] == [0x400, 0x1000, 0x100, 0x1000]
    assert replies[5] == [True, 1, 0]


def test_a_session_not_yet_verified_holds_the_calls_after_it(oned, proxy):
    """The first call of a new user's session is verified in a thread; what follows waits."""
    assert call(oned, "one.user.allocate", SESSION, "helen", "mypass")[0]
    batch = xmlrpc.client.MultiCall(proxy)
    batch.one.vm.allocate("helen:mypass", TTYLINUX)
    batch.one.vm.allocate(SESSION, TTYLINUX)
    batch.one.vm.allocate("helen:mypass", TTYLINUX)
    assert [r[:2] for r in batch()] == [[True, 0], [True, 1], [True, 2]]


def test_a_multicall_without_its_array_is_a_fault(oned):
    with pytest.raises(xmlrpc.client.Fault, match="expects one array"):
        call(oned, "system.multicall")


@pytest.mark.parametrize(
    ("params", "names"),
    [
        (([1, 2],), "call 0 is not a struct"),
        (([{"params": []}],), "call 0 needs a methodName"),
        (([{"methodName": "one.vm.info", "params": 3}],), "call 0 needs a methodName"),
        (([{"methodName": "system.multicall", "params": [[]]}],), "do not nest"),
    ],
)
def test_malformed_multicalls_get_a_clear_error(oned, params, names):
    reply = call(oned, "system.multicall", *params)[0][0]  # refused per call
    assert reply[0] is False and names in reply[1] and reply[2] == 0x1000


def test_an_empty_multicall_answers_an_empty_array(oned):
    assert call(oned, "system.multicall", []) == []


def test_one_client_multicall_gives_each_value_or_its_error(oned):
    client = OneClient(oned.endpoint, SESSION)
    results = client.multicall(
        [("one.vm.allocate", (TTYLINUX,)), ("one.vm.info", (42,)), ("one.vm.allocate", (TTYLINUX,))]
    )
    client.close()
    assert results[0] == 0 and results[2] == 1
    assert isinstance(results[1], OneCallError) and results[1].code == 0x400


def test_at_most_a_thousand_calls_and_nothing_runs_when_over(oned, proxy):
    batch = xmlrpc.client.MultiCall(proxy)
    for _ in range(1001):
        batch.one.vm.allocate(SESSION, TTYLINUX)
    with pytest.raises(xmlrpc.client.Fault, match="1001 calls; at most 1000"):
        list(batch())
    assert call(oned, "one.vm.info", SESSION, 0)[0] is False  # none was allocated


def test_calls_after_the_replies_pass_64_mb_are_not_run(oned, proxy):
    """A reply is built whole: 1,000 pool listings must not make one of gigabytes."""
    big = "\n".join(f'NOTES{n} = "{"x" * 60_000}"' for n in range(2))  # ~ MAX_TEMPLATE_SIZE
    vid = proxy.one.vm.allocate(SESSION, f"{TTYLINUX}\n{big}")[1]
    proxy.one.vm.update(SESSION, vid, big, 0)  # and as much again in USER_TEMPLATE
    each = len(proxy.one.vm.info(SESSION, vid)[1].encode())
    expected = (64 << 20) // each + 1  # the call that passes 64 MB still runs
    batch = xmlrpc.client.MultiCall(proxy)
    for _ in range(expected + 10):
        batch.one.vm.info(SESSION, vid)
    batch.one.vm.allocate(SESSION, TTYLINUX)
    replies = list(batch())
    ran = [r for r in replies if r[0]]
    assert expected - 3 <= len(ran) <= expected + 3 and all(r[0] for r in replies[: len(ran)])
    assert "not run: the replies before it passed 64 MB" in replies[-1][1]
    assert call(oned, "one.vm.info", SESSION, vid + 1)[0] is False  # the last call did not run
