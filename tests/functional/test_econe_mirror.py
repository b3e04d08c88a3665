"""econe's per-user mirror of the instances, kept by oned's change feed (econe.vm_rows),
against a real oned: a state change is in the next DescribeInstances, a terminated instance
is listed until `terminated_expiration` and then gone, a user (oneadmin too, whose feed shows
every VM) sees only their own, an oned restart (a new feed epoch) is read again, and the
mirrors let go past their limit are read again."""

from __future__ import annotations

import botocore.exceptions
import pyone
import pytest
import urllib3

from econe import instances, vm_rows
from econe.config import Settings
from econe.context import Context, Services
from econe.credentials import Credentials
from econe.errors import Ec2Error
from econe.one import Oned
from tests.functional import test_econe_cloud as econe_cloud
from tests.functional.oned_process import OnedProcess
from tests.functional.test_econe_cloud import ROOT, dummy_cloud
from tests.functional.test_econe_server import EconeProcess
from tests.waiting import wait_for

USERS = {"alice": "alicepw", "bob": "bobpw", "oneadmin": "onecloud"}
EXPIRATION = 8  # s a terminated instance stays listed
TEMPLATE = 'NAME = "eco-vm"\nMEMORY = 64\nCPU = 0.1\nECONE = [ INSTANCE_TYPE = "m1.small" ]\n'


class Cloud(econe_cloud.Cloud):
    def ec2(self, user: str, secret: str | None = None):
        return super().ec2(user, secret or USERS[user])

    def one(self, user: str) -> pyone.OneServer:
        return pyone.OneServer(self.oned.endpoint, session=f"{user}:{USERS[user]}")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("econe-mirror")
    oned, sched = dummy_cloud(tmp, {u: p for u, p in USERS.items() if u != "oneadmin"})
    urllib3.disable_warnings()
    econe = EconeProcess(
        tmp / "one",
        one_xmlrpc=oned.endpoint,
        templates_dir=str(ROOT / "templates" / "ec2query"),
        terminated_expiration=EXPIRATION,
    )
    keys = econe.location / "etc" / "econe_keys"
    keys.write_text("".join(f"{u} {p}\n" for u, p in USERS.items()))
    econe.start()
    yield Cloud(oned, econe, tmp / "unused.img")
    econe.stop()
    sched.terminate()
    sched.wait(15)
    oned.stop()


def listed(ec2, **filters) -> dict[str, str]:
    """Instance id -> state name of everything DescribeInstances lists."""
    answer = ec2.describe_instances(**filters)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in answer for i in r["Instances"]}


def instance(vid: int) -> str:
    return f"i-{vid:08x}"


def test_a_state_change_is_in_the_next_describe_and_a_terminated_one_expires(cloud):
    alice = cloud.ec2("alice")
    listed(alice)  # the mirror is loaded
    vid = cloud.one("alice").vm.allocate(TEMPLATE)
    assert listed(alice).get(instance(vid)) == "pending"
    wait_for(lambda: listed(alice)[instance(vid)] == "running", timeout=60)
    alice.terminate_instances(InstanceIds=[instance(vid)])
    assert listed(alice)[instance(vid)] in ("shutting-down", "terminated")  # never "running"
    wait_for(lambda: listed(alice)[instance(vid)] == "terminated", timeout=60)
    vm = cloud.one("alice").vm.info(vid)
    assert vm.STATE == 6  # DONE: out of oned's memory, read from its store
    wait_for(lambda: instance(vid) not in listed(alice), timeout=EXPIRATION + 30)
    with pytest.raises(botocore.exceptions.ClientError, match=r"InvalidInstanceID\.NotFound"):
        alice.describe_instances(InstanceIds=[instance(vid)])


def test_each_user_and_oneadmin_see_only_their_own(cloud):
    admin, alice, bob = cloud.ec2("oneadmin"), cloud.ec2("alice"), cloud.ec2("bob")
    for ec2 in (admin, alice, bob):
        listed(ec2)  # every mirror loaded before the VMs exist: they come by the feed
    made = {u: cloud.one(u).vm.allocate(TEMPLATE) for u in USERS}
    cloud.one("bob").vm.action("finalize", made["bob"])  # a removal everyone's feed may show
    for user, ec2 in (("oneadmin", admin), ("alice", alice), ("bob", bob)):
        seen = listed(ec2)
        assert instance(made[user]) in seen
        assert not {instance(v) for u, v in made.items() if u != user} & set(seen)
        expected = {vm.ID for vm in cloud.one(user).vmpool.info(-3, -1, -1, -2).VM}
        assert {int(i[2:], 16) for i in seen} <= expected
    assert listed(bob)[instance(made["bob"])] == "terminated"


@pytest.fixture
def oned(tmp_path):
    process = OnedProcess(tmp_path / "one").start()
    admin = pyone.OneServer(process.endpoint, session="oneadmin:onecloud")
    for user in ("alice", "bob"):
        admin.user.allocate(user, USERS[user])
    yield process
    process.stop()


def context(oned: OnedProcess, user: str) -> Context:
    uid = pyone.OneServer(oned.endpoint, session=f"{user}:{USERS[user]}").user.info(-1).ID
    creds = Credentials(USERS[user], uid, user, f"{user}:{USERS[user]}")
    return Context(user, Settings(), "req", creds, Services(oned=Oned(oned.endpoint)))


def allocate(oned: OnedProcess, user: str) -> int:
    return pyone.OneServer(oned.endpoint, session=f"{user}:{USERS[user]}").vm.allocate(TEMPLATE)


def rows(ctx: Context) -> list[int]:
    return [r["vid"] for r in instances.listed(ctx, [])]


def test_an_oned_restart_is_read_again(oned, monkeypatch):
    monkeypatch.setattr(instances, "MIRRORS", vm_rows.Mirrors(instances._row))
    ctx = context(oned, "alice")
    first = allocate(oned, "alice")
    assert rows(ctx) == [first]
    mirror = instances.MIRRORS.of(ctx.uid())
    epoch = mirror.epoch
    oned.stop()
    oned.start()
    second = allocate(oned, "alice")

    def answered() -> list[int] | None:
        try:
            return rows(ctx)
        except Ec2Error:  # Unavailable until the kept connection is made again
            return None

    assert wait_for(answered) == [first, second]
    assert mirror.epoch != epoch and mirror.loads == 2


def test_mirrors_past_the_limit_are_let_go_and_read_again(oned, monkeypatch):
    mirrors = vm_rows.Mirrors(instances._row, users=1)
    monkeypatch.setattr(instances, "MIRRORS", mirrors)
    alice, bob = context(oned, "alice"), context(oned, "bob")
    mine = allocate(oned, "alice")
    assert rows(alice) == [mine] and rows(bob) == []
    assert len(mirrors) == 1  # alice's was let go
    theirs = allocate(oned, "bob")
    assert rows(bob) == [theirs] and mirrors.of(bob.uid()).loads == 1
    assert rows(alice) == [mine] and mirrors.of(alice.uid()).loads == 1  # a new mirror
