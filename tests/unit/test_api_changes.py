"""one.system.changes on the real pools and a task.Clock (oned/api/changes.py): the reply's
shape, the listings' visibility, resets, and a call held until a change its caller sees."""

from __future__ import annotations

import logging
import re
import types
import xml.etree.ElementTree as ET
from xml.sax.saxutils import unescape

import pytest
from twisted.internet import defer, task

from oned.api import changes
from oned.api.cloud import Caller, Cloud
from oned.config import load_config
from oned.errors import ActionNotAllowed, BadCall
from oned.pools import Pools
from oned.records import Host, Image, User, Vm, Vnet
from oned.rpc.marshal import Escaped
from oned.template import Template, parse

NET = parse('NETWORK_ADDRESS = "192.168.0.0"\nNETWORK_SIZE = "C"')
ADMIN, HELEN, DAN = Caller(0, "oneadmin"), Caller(1, "helen"), Caller(2, "dan")


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def cloud(clock):
    pools = Pools()
    for user in (User(0, "oneadmin", "x"), User(1, "helen", "x"), User(2, "dan", "x")):
        pools.put_user(user)
    lcm = types.SimpleNamespace(call_later=clock.callLater)
    return Cloud(pools, None, load_config(""), logging.getLogger("t"), lcm=lcm)


def document(reply: Escaped) -> ET.Element:
    return ET.fromstring(unescape(b"".join(reply.parts).decode()))


def ask(cloud: Cloud, caller: Caller, since: int, wait_ms: int = 0, epoch: str = ""):
    reply = changes.changes(cloud, caller, since, wait_ms, epoch)
    assert isinstance(reply, Escaped)
    return document(reply)


def vm(cloud: Cloud, vid: int, uid: int) -> Vm:
    new = Vm(vid, uid, f"vm{vid}", Template())
    cloud.pools.vms.put(new)
    return new


def test_since_zero_resets_with_the_seq_to_continue_from(cloud):
    doc = ask(cloud, HELEN, 0)
    assert doc.tag == "CHANGES" and doc.get("RESET") == "1" and len(doc) == 0
    assert doc.get("SEQ") == str(cloud.pools.changes.seq)
    assert re.fullmatch(r"[0-9a-f]{16}", doc.get("EPOCH"))


def test_a_new_vm_is_listed_once_as_vmpool_info_lists_it(cloud):
    seq = cloud.pools.changes.seq
    new = vm(cloud, 7, 1)
    cloud.pools.vms.changed(7)
    doc = ask(cloud, HELEN, seq)
    assert doc.get("RESET") == "0" and int(doc.get("SEQ")) == seq + 2
    assert [child.tag for child in doc] == ["VM_POOL"]
    (item,) = doc.find("VM_POOL")
    expected = ET.fromstring(unescape(cloud.pools.vms.xml_short(new).decode()))
    assert ET.tostring(item) == ET.tostring(expected)


def test_a_user_sees_their_own_vms_the_networks_and_images_they_may_use_and_every_host(cloud):
    seq = cloud.pools.changes.seq
    vm(cloud, 1, 1)
    vm(cloud, 2, 2)
    cloud.pools.put_host(Host(0, "h0", "im", "vmm", "tm"))
    cloud.pools.put_vnet(Vnet(0, 2, "private", 0, "br0", False, NET))
    cloud.pools.put_vnet(Vnet(1, 2, "public", 0, "br0", True, NET))
    cloud.pools.put_image(Image(0, 2, "mine", 0, False, False, 0, Template()))
    doc = ask(cloud, HELEN, seq)
    assert [child.tag for child in doc] == ["VM_POOL", "HOST_POOL", "VNET_POOL"]
    assert [v.find("ID").text for v in doc.find("VM_POOL")] == ["1"]
    assert [n.find("ID").text for n in doc.find("VNET_POOL")] == ["1"]
    admin = ask(cloud, ADMIN, seq)
    assert [child.tag for child in admin] == ["VM_POOL", "HOST_POOL", "VNET_POOL", "IMAGE_POOL"]
    assert len(admin.find("VM_POOL")) == 2


def test_users_change_only_for_oneadmin(cloud):
    seq = cloud.pools.changes.seq
    cloud.pools.put_user(User(3, "eve", "x"))
    assert ask(cloud, ADMIN, seq).find("USER_POOL") is not None
    assert len(ask(cloud, HELEN, seq)) == 0


def test_removed_objects_are_listed_by_id_to_who_saw_them(cloud):
    vm(cloud, 4, 1)
    cloud.pools.put_host(Host(3, "h3", "im", "vmm", "tm"))
    seq = cloud.pools.changes.seq
    cloud.pools.vms.remove(4)
    cloud.pools.remove_host(3)
    removed = ask(cloud, HELEN, seq).find("REMOVED")
    assert [(e.tag, e.text) for e in removed] == [("VM", "4"), ("HOST", "3")]
    dans = ask(cloud, DAN, seq).find("REMOVED")
    assert [(e.tag, e.text) for e in dans] == [("HOST", "3")]


def test_an_old_or_foreign_seq_resets(cloud):
    log = cloud.pools.changes
    seq = log.seq
    assert ask(cloud, HELEN, seq + 1).get("RESET") == "1"  # ahead: another epoch
    assert ask(cloud, HELEN, seq, epoch="0123456789abcdef").get("RESET") == "1"
    assert ask(cloud, HELEN, seq, epoch=log.epoch).get("RESET") == "0"
    for oid in range(log.limit + 1):
        log.mark(0, oid)
    assert ask(cloud, HELEN, seq).get("RESET") == "1"  # out of the ring


def test_bad_arguments_are_refused(cloud):
    with pytest.raises(BadCall, match="since -1 is negative"):
        changes.changes(cloud, HELEN, -1, 0)
    with pytest.raises(BadCall, match="epoch of 65 characters"):
        changes.changes(cloud, HELEN, 1, 0, "x" * 65)


def test_a_call_with_nothing_to_see_waits_for_a_change_it_sees(cloud, clock):
    seq = cloud.pools.changes.seq
    held = changes.changes(cloud, HELEN, seq, 10_000)
    assert isinstance(held, defer.Deferred) and not held.called
    vm(cloud, 9, 2)  # dan's: helen keeps waiting
    clock.advance(0)
    assert not held.called
    vm(cloud, 10, 1)
    clock.advance(0)
    doc = document(held.result)
    assert [e.find("ID").text for e in doc.find("VM_POOL")] == ["10"]
    assert cloud.pools.waiters is not None and len(cloud.pools.waiters) == 0


def test_wait_ms_is_clamped_and_an_expired_wait_answers_no_objects(cloud, clock):
    seq = cloud.pools.changes.seq
    assert len(ask(cloud, HELEN, seq, wait_ms=-5)) == 0  # clamped to 0: at once
    held = changes.changes(cloud, HELEN, seq, 10**9)
    clock.advance(29.9)
    assert not held.called
    clock.advance(0.1)
    doc = document(held.result)
    assert len(doc) == 0 and doc.get("RESET") == "0"


def test_waiting_calls_are_bounded_and_a_cancelled_one_is_forgotten(cloud):
    seq = cloud.pools.changes.seq
    held = [changes.changes(cloud, HELEN, seq, 1000) for _ in range(changes.ch.MAX_WAITERS)]
    with pytest.raises(ActionNotAllowed, match="1000 calls are already waiting"):
        changes.changes(cloud, HELEN, seq, 1000)
    held[0].addErrback(lambda failure: failure.trap(defer.CancelledError))
    held[0].cancel()
    assert len(cloud.pools.waiters) == changes.ch.MAX_WAITERS - 1
    cloud.pools.waiters.close()
    assert all(d.called for d in held)
