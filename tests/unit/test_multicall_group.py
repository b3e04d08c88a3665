"""system.multicall and the group commit (oned.rpc.dispatch): a run of allocations (or deploys)
is submitted at once and shares one transaction, each answered after it, and the next other
call runs only once they are committed. Real pools, an SQLite store, the commit queue on a
virtual clock."""

from __future__ import annotations

import logging
import xmlrpc.client

import pytest
from twisted.internet import defer, task

from oned import auth
from oned.api.cloud import Cloud
from oned.api.sessions import Sessions
from oned.commits import CommitQueue
from oned.config import load_config
from oned.pools import Pools
from oned.records import User
from oned.rpc.dispatch import Dispatcher
from oned.store import Store

LOG = logging.getLogger("test")
SESSION = "oneadmin:x"
VM = "NAME = small\nCPU = 1\nMEMORY = 64\n"


@pytest.fixture
def rpc(tmp_path):
    clock = task.Clock()
    config = load_config("DB = [ BACKEND = sqlite ]\n")
    store = Store.open(config.db, str(tmp_path / "one.db"), LOG)
    pools = Pools()
    admin = User(0, "oneadmin", auth.hash_password("x", iterations=10))
    store.insert_user(admin)
    pools.put_user(admin)
    cloud = Cloud(pools, store, config, LOG, clock=clock.seconds)
    cloud.commits = CommitQueue(store, clock.callLater)
    dispatcher = Dispatcher(cloud, Sessions(pools, LOG), defer.maybeDeferred, LOG)
    yield dispatcher, cloud, clock
    store.close()


def multicall(dispatcher: Dispatcher, *calls: tuple[str, tuple]) -> defer.Deferred:
    structs = [{"methodName": name, "params": [SESSION, *params]} for name, params in calls]
    body = xmlrpc.client.dumps((structs,), "system.multicall").encode()
    reply = dispatcher.handle(body, "10.0.0.1")
    return reply if isinstance(reply, defer.Deferred) else defer.succeed(reply)


def values(d: defer.Deferred) -> list:
    found: list = []
    d.addBoth(found.append)
    (replies,), _ = xmlrpc.client.loads(b"".join(found[0]))
    return [reply[0] for reply in replies]


def test_a_run_of_allocations_shares_one_commit_and_a_listing_after_it_sees_them(rpc):
    dispatcher, cloud, clock = rpc
    allocate = ("one.vm.allocate", (VM,))
    answer = multicall(dispatcher, allocate, allocate, allocate, ("one.vmpool.info", (-2,)))
    assert not answer.called and cloud.store.list_vm_ids() == []
    clock.advance(0)
    replies = values(answer)
    assert [r[1] for r in replies[:3]] == [0, 1, 2] and cloud.commits.groups == 1
    assert replies[3][1].count("<VM>") == 3  # ran after the commit


def test_calls_of_another_method_wait_for_the_ones_before_them(rpc):
    """A deploy after an allocation runs once it is committed (and sees its VM); an allocation
    after the deploy goes in a group of its own; a refused one answers alone."""
    dispatcher, cloud, clock = rpc
    answer = multicall(
        dispatcher,
        ("one.vm.allocate", (VM,)),
        ("one.vm.deploy", (0, 7)),
        ("one.vm.allocate", ("MEMORY = nonsense",)),
        ("one.vm.allocate", (VM,)),
    )
    clock.advance(0)
    replies = values(answer)
    assert replies[0][:2] == [True, 0] and replies[3][:2] == [True, 1]
    assert replies[1][0] is False and "host [7]" in replies[1][1]  # VM 0 was found
    assert replies[2][0] is False and cloud.commits.groups == 2
