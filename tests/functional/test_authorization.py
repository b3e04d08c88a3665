"""Who may call what: every XML-RPC method x {the owner, another user, oneadmin, no session}
against a real oned (issue 10, "Rights").

``RULES`` is the one table: for each method, how to build its parameters from fresh objects of
the owner, and the answer each caller gets (success, or OpenNebula's exact error code). A method
added to ``oned.rpc.methods.METHODS`` without a row fails ``test_every_method_has_a_rule``, and
share/doc/authorization.md is rendered from the table (``test_the_doc_is_the_table``);
regenerate it with ``.venv/bin/python -m tests.functional.test_authorization``.
"""

from __future__ import annotations

import itertools
import sys
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from oned.rpc.methods import METHODS
from tests.functional.oned_process import ROOT, OnedProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.functional

OK, AUTH, AUTHZ, NO_SUCH, ACTION, API = 0, 0x100, 0x200, 0x400, 0x800, 0x1000
NAMES = {
    OK: "yes",
    AUTH: "0x100",
    AUTHZ: "0x200",
    NO_SUCH: "0x400",
    ACTION: "0x800",
    API: "0x1000",
}
ADMIN_SESSION, OTHER_SESSION = "oneadmin:onecloud", "dan:pw"
MISSING = 99_999  # an id no object has
MISSING_KEY = "AKOCAAAAAAAAAAAAAAAA"  # an access key id no key has
DOC = ROOT / "share" / "doc" / "authorization.md"
# The matrix's oned lets users name BRIDGE in a network template (the default
# VNET_RESTRICTED_ATTR keeps it for oneadmin, so by default users own no network): the rights
# on networks can then be shown for a network a user owns.
# Likewise IMAGE_RESTRICTED_ATTR = "" lets users name SOURCE, so that a user owns a READY
# image without the copy of a PATH (the SOURCE used is a URL, which SAFE_DIRS lets pass).
CONF = {
    "MAX_AUTH_FAILURES": 0,
    "VNET_RESTRICTED_ATTR": '"VN_MAD"',
    "IMAGE_RESTRICTED_ATTR": '""',
}


class World:
    """A running oned with two monitored dummy hosts, oneadmin and "dan" (the other user); each
    row of the table gets a fresh owner, each call fresh objects of that owner."""

    def __init__(self, oned: OnedProcess):
        self.oned = oned
        self._numbers = itertools.count()
        self.admin("one.user.allocate", "dan", "pw")
        self.host_a, self.host_b = self.scratch_host(), self.scratch_host()
        wait_for(lambda: self.host_state(self.host_a) == self.host_state(self.host_b) == 2)
        self.owner_name = ""
        self.owner_uid = -1

    def call(self, session: str, method: str, *params: object) -> tuple[bool, object, int]:
        proxy = xmlrpc.client.ServerProxy(self.oned.endpoint, transport=_Transport())
        with proxy:
            reply = getattr(proxy, method)(session, *params)
        return reply[0], reply[1], reply[2] if len(reply) > 2 else 0

    def admin(self, method: str, *params: object) -> Any:
        return self.must(ADMIN_SESSION, method, *params)

    def must(self, session: str, method: str, *params: object) -> Any:
        ok, value, code = self.call(session, method, *params)
        assert ok, f"{method}{params}: {value} ({code:#x})"
        return value

    def new_owner(self) -> None:
        self.owner_name = f"owner{self.number()}"
        self.owner_uid = int(self.admin("one.user.allocate", self.owner_name, "pw"))

    @property
    def owner_session(self) -> str:
        return f"{self.owner_name}:pw"

    def number(self) -> int:
        return next(self._numbers)

    def owner_ec2_key(self) -> str:
        """An EC2 key of the owner: the one it has, else a new one (at most 2 per user)."""
        keys = ET.fromstring(str(self.admin("one.user.ec2keyinfo", self.owner_uid)))
        found = keys.findtext("EC2_KEY/ACCESS_KEY_ID")
        return found or str(self.admin("one.user.ec2keycreate", self.owner_uid)[0])

    def owner_vm(self) -> int:
        """A PENDING VM of the owner."""
        return int(self.must(self.owner_session, "one.vm.allocate", "NAME = vm\nMEMORY = 8"))

    def running_vm(self) -> int:
        """A RUNNING VM of the owner, on host A (deployed by oneadmin)."""
        vid = self.owner_vm()
        self.admin("one.vm.deploy", vid, self.host_a)
        wait_for(lambda: self._vm_states(vid) == ("3", "3"))
        return vid

    def owner_net(self) -> int:
        """A private network of the owner."""
        template = f"NAME = net{self.number()}\nTYPE = FIXED\nBRIDGE = br0\nPUBLIC = NO\n"
        return int(self.must(self.owner_session, "one.vn.allocate", template + LEASE))

    def owner_image(self) -> int:
        """A private INIT image of the owner (no content: what one.vm.savedisk fills)."""
        return int(self.must(self.owner_session, "one.image.allocate", f"NAME = i{self.number()}"))

    def owner_ready_image(self) -> int:
        """A private READY image of the owner: a SOURCE in place, nothing to copy."""
        n = self.number()
        template = f'NAME = i{n}\nSOURCE = "http://127.0.0.1:9/i{n}.img"'
        return int(self.must(self.owner_session, "one.image.allocate", template))

    def owner_disk_vm(self) -> int:
        """A PENDING VM of the owner whose DISK 0 is one of the owner's images."""
        template = f"NAME = vm\nMEMORY = 8\nDISK = [ IMAGE_ID = {self.owner_ready_image()} ]"
        return int(self.must(self.owner_session, "one.vm.allocate", template))

    def scratch_host(self) -> int:
        name = f"host{self.number()}"
        return int(self.admin("one.host.allocate", name, "im_dummy", "vmm_dummy", "tm_dummy"))

    def host_state(self, hid: int) -> int:
        return int(ET.fromstring(str(self.admin("one.host.info", hid))).findtext("STATE", "-1"))

    def _vm_states(self, vid: int) -> tuple[str | None, str | None]:
        vm = ET.fromstring(str(self.admin("one.vm.info", vid)))
        return vm.findtext("STATE"), vm.findtext("LCM_STATE")


LEASE = 'LEASES = [ IP = "10.0.0.1" ]\n'


class _Transport(xmlrpc.client.Transport):
    """Every call has a deadline."""

    def make_connection(self, host: Any) -> Any:
        connection = super().make_connection(host)
        connection.timeout = 30
        return connection


Build = Callable[[World], tuple]


@dataclass(frozen=True)
class Rule:
    """``params`` builds the parameters (after the session) from fresh objects of the owner;
    ``owner``, ``other`` and ``admin`` are the answers (OK or an error code); ``missing``, when
    the method names an object, builds parameters naming one that does not exist (oneadmin
    then gets 0x400). ``note`` is the documentation's word on the rule."""

    params: Build
    owner: int
    other: int
    admin: int
    missing: Build | None
    note: str
    nobody: int = AUTH


def anyone(params: Build, note: str, missing: Build | None = None) -> Rule:
    return Rule(params, OK, OK, OK, missing, note)


def owner_or_admin(params: Build, missing: Build, note: str) -> Rule:
    return Rule(params, OK, AUTHZ, OK, missing, note)


def admin_only(params: Build, note: str, missing: Build | None = None) -> Rule:
    return Rule(params, AUTHZ, AUTHZ, OK, missing, note)


ALL_VMS = (-2, -1, -1, -1)

RULES: dict[str, Rule] = {
    "one.system.version": anyone(lambda w: (), "any authenticated user"),
    "one.system.changes": anyone(
        lambda w: (0, 0), "issue 17: the changes of the objects the caller's listings hold"
    ),
    "one.user.allocate": admin_only(
        lambda w: (f"user{w.number()}", "pw"), "only oneadmin manages users"
    ),
    "one.user.delete": admin_only(
        lambda w: (w.owner_uid,),
        "oneadmin only; uid 0 is never deleted (0x800)",
        lambda w: (MISSING,),
    ),
    "one.user.info": owner_or_admin(
        lambda w: (w.owner_uid,), lambda w: (MISSING,), "a user reads their own account (-1: self)"
    ),
    "one.user.passwd": owner_or_admin(
        lambda w: (w.owner_uid, "pw"),
        lambda w: (MISSING, "pw"),
        "a user changes their own password (OpenNebula 3.x+); oneadmin anyone's",
    ),
    "one.userpool.info": admin_only(lambda w: (), "only oneadmin lists users"),
    # issue 15: EC2 credentials
    "one.user.ec2keycreate": owner_or_admin(
        lambda w: (w.owner_uid,),
        lambda w: (MISSING,),
        "a user's own EC2 key (-1: self), the secret in this answer only; at most 2 (0x800)",
    ),
    "one.user.ec2keyinfo": owner_or_admin(
        lambda w: (w.owner_uid,), lambda w: (MISSING,), "access key ids and times, no secret"
    ),
    "one.user.ec2keydelete": owner_or_admin(
        lambda w: (w.owner_ec2_key(),),
        lambda w: (MISSING_KEY,),
        "the tokens issued through the key end with it",
    ),
    "one.user.ec2keysecret": admin_only(
        lambda w: (w.owner_ec2_key(),),
        "econe-server's account: the secret, and a token valid EC2_TOKEN_LIFETIME s as the "
        "key's user in `name:token` sessions",
        lambda w: (MISSING_KEY,),
    ),
    "one.host.allocate": admin_only(
        lambda w: (f"new{w.number()}", "im_dummy", "vmm_dummy", "tm_dummy"),
        "hosts belong to oneadmin",
    ),
    "one.host.info": anyone(
        lambda w: (w.host_a,),
        "every user reads hosts (1.4: the scheduler's view)",
        lambda w: (MISSING,),
    ),
    "one.host.delete": admin_only(
        lambda w: (w.scratch_host(),), "refused (0x800) while VMs run on it", lambda w: (MISSING,)
    ),
    "one.host.enable": admin_only(
        lambda w: (w.scratch_host(), False),
        "a DISABLED host takes no VM",
        lambda w: (MISSING, True),
    ),
    "one.host.status": admin_only(
        lambda w: (w.scratch_host(), 1),
        "modern form of one.host.enable (OFFLINE disables)",
        lambda w: (MISSING, 0),
    ),
    "one.host.update": admin_only(
        lambda w: (w.scratch_host(), "RESERVED_CPU = -100", 1),
        "modern: the host's own attributes (RESERVED_CPU, RESERVED_MEM: mm_sched's reservations)",
        lambda w: (MISSING, "A = 1", 1),
    ),
    "one.hostpool.info": anyone(lambda w: (), "every user lists hosts"),
    "one.vm.allocate": anyone(
        lambda w: ("MEMORY = 8",),
        "the VM belongs to the caller; restricted attributes are oneadmin's",
    ),
    "one.vm.info": owner_or_admin(
        lambda w: (w.owner_vm(),), lambda w: (MISSING,), "users see their own VMs only"
    ),
    "one.vm.deploy": admin_only(
        lambda w: (w.owner_vm(), w.host_a),
        "choosing a host is oneadmin's (mm_sched runs as oneadmin); for everyone the host must "
        "be enabled and the VM no larger than the host (0x800); with enforce it must fit in "
        "the free capacity",
        lambda w: (MISSING, w.host_a),
    ),
    "one.vm.action": owner_or_admin(
        lambda w: ("hold", w.owner_vm()),
        lambda w: ("hold", MISSING),
        "every action of one.vm.action (shutdown, hold, stop, delete...) on one's own VMs",
    ),
    "one.vm.update": owner_or_admin(
        lambda w: (w.owner_vm(), 'NOTE = "x"'),
        lambda w: (MISSING, 'NOTE = "x"'),
        "USER_TEMPLATE of one's own VMs; restricted attributes are oneadmin's",
    ),
    "one.vm.recover": admin_only(
        lambda w: (w.owner_vm(), 3),
        "forcing a transient state's outcome (0 failure, 1 success, 2 retry) or deleting "
        "(3, any state) is oneadmin's, as in modern OpenNebula",
        lambda w: (MISSING, 3),
    ),
    "one.vm.migrate": admin_only(
        lambda w: (w.running_vm(), w.host_b, False),
        "cold and live: oneadmin's, with the host checks of one.vm.deploy",
        lambda w: (MISSING, w.host_b, True),
    ),
    "one.vmpool.info": anyone(
        lambda w: ALL_VMS, "a user's listing holds only their own VMs, whatever the filter"
    ),
    "one.vmpool.infoextended": anyone(lambda w: ALL_VMS, "as one.vmpool.info"),
    "one.vn.allocate": anyone(
        lambda w: (f"NAME = n{w.number()}\nTYPE = FIXED\nBRIDGE = br0\n{LEASE}",),
        "the network belongs to the caller. By default BRIDGE is a VNET_RESTRICTED_ATTR, so "
        "only oneadmin creates networks (0x200 for users); this table's oned lets users name it",
    ),
    "one.vn.info": owner_or_admin(
        lambda w: (w.owner_net(),),
        lambda w: (MISSING,),
        "private networks: owner and oneadmin; PUBLIC ones: every user",
    ),
    "one.vn.delete": owner_or_admin(
        lambda w: (w.owner_net(),), lambda w: (MISSING,), "refused (0x800) while leases are in use"
    ),
    "one.vn.publish": owner_or_admin(
        lambda w: (w.owner_net(), True), lambda w: (MISSING, True), "PUBLIC makes it usable by all"
    ),
    "one.vn.hold": owner_or_admin(
        lambda w: (w.owner_net(), LEASE),
        lambda w: (MISSING, LEASE),
        "modern: keeps a lease from VMs (USED, VID -1); a lease in use is refused (0x800)",
    ),
    "one.vn.release": owner_or_admin(
        lambda w: (w.must(w.owner_session, "one.vn.hold", w.owner_net(), LEASE), LEASE),
        lambda w: (MISSING, LEASE),
        "modern: only a lease on hold, never a VM's (0x800)",
    ),
    "one.vnpool.info": anyone(
        lambda w: (-2,), "a user's listing holds their own and the PUBLIC networks"
    ),
    # issue 13: the image repository
    "one.image.allocate": anyone(
        lambda w: (f"NAME = i{w.number()}",),
        "the image belongs to the caller; SOURCE is oneadmin's by default (IMAGE_RESTRICTED_ATTR;"
        " this table's oned lets users name it); a user's PATH and SOURCE must be in SAFE_DIRS",
    ),
    "one.image.info": owner_or_admin(
        lambda w: (w.owner_image(),),
        lambda w: (MISSING,),
        "private images: owner and oneadmin; PUBLIC ones: every user",
    ),
    "one.image.delete": owner_or_admin(
        lambda w: (w.owner_image(),),
        lambda w: (MISSING,),
        "refused (0x800) while VMs use the image or will save a disk into it",
    ),
    "one.image.update": owner_or_admin(
        lambda w: (w.owner_image(), "A = 1"),
        lambda w: (MISSING, "A = 1"),
        "the template only (2.0: one attribute; modern: replace or merge); restricted "
        "attributes are oneadmin's",
    ),
    "one.image.rmattr": owner_or_admin(
        lambda w: (w.owner_image(), "A"), lambda w: (MISSING, "A"), "2.0: as one.image.update"
    ),
    "one.image.enable": owner_or_admin(
        lambda w: (w.owner_ready_image(), False),
        lambda w: (MISSING, True),
        "READY <-> DISABLED only (0x800 otherwise, USED included)",
    ),
    "one.image.publish": owner_or_admin(
        lambda w: (w.owner_image(), True),
        lambda w: (MISSING, True),
        "2.0: PUBLIC makes it seen and usable by all",
    ),
    "one.image.chmod": owner_or_admin(
        lambda w: (w.owner_image(), -1, -1, -1, 1, -1, -1, 1, -1, -1),
        lambda w: (MISSING, -1, -1, -1, 1, -1, -1, 1, -1, -1),
        "modern form of one.image.publish: GROUP_U or OTHER_U 1 makes it PUBLIC",
    ),
    "one.image.persistent": owner_or_admin(
        lambda w: (w.owner_image(), True),
        lambda w: (MISSING, True),
        "refused (0x800) while VMs use it, or while it is LOCKED or in ERROR",
    ),
    "one.imagepool.info": anyone(
        lambda w: (-2,), "a user's listing holds their own and the PUBLIC images"
    ),
    "one.vm.savedisk": owner_or_admin(
        lambda w: (w.owner_disk_vm(), 0, w.owner_image()),
        lambda w: (MISSING, 0, w.owner_image()),
        "2.0: one's own VM's disk into one's own INIT image, at the VM's shutdown",
    ),
    "one.vm.disksaveas": owner_or_admin(
        lambda w: (w.owner_disk_vm(), 0, f"saved{w.number()}", "", -1),
        lambda w: (MISSING, 0, f"saved{w.number()}", "", -1),
        "modern: one's own VM's disk into a new image of the caller's, at the VM's shutdown",
    ),
    # issue 12: modern methods; groups, clusters, datastores and templates as a fresh OpenNebula
    "one.system.config": admin_only(lambda w: (), "oned.conf without the DB password"),
    "one.vm.rename": owner_or_admin(
        lambda w: (w.owner_vm(), "renamed"),
        lambda w: (MISSING, "x"),
        "the name rules of one.vm.allocate; not a DONE VM (0x800)",
    ),
    "one.vm.monitoring": owner_or_admin(
        lambda w: (w.owner_vm(),), lambda w: (MISSING,), "the last POLL of one's own VMs"
    ),
    "one.vmpool.infoset": anyone(
        lambda w: (str(w.owner_vm()), False), "only the VMs the caller may see are listed"
    ),
    # issue 18: `onedb purge-done` (a dry run here: the matrix removes nothing)
    "one.vmpool.purgedone": admin_only(
        lambda w: (1, True), "removes DONE VMs that ended before a time, with their history"
    ),
    "one.grouppool.info": anyone(lambda w: (), "groups oneadmin (0) and users (1)"),
    "one.group.info": anyone(lambda w: (1,), "as one.grouppool.info", lambda w: (MISSING,)),
    "one.clusterpool.info": anyone(lambda w: (), "cluster default (0): every host and network"),
    "one.cluster.info": anyone(lambda w: (0,), "as one.clusterpool.info", lambda w: (MISSING,)),
    "one.datastorepool.info": anyone(lambda w: (), "datastores system, default and files"),
    "one.datastore.info": anyone(lambda w: (1,), "as one.datastorepool.info", lambda w: (MISSING,)),
    "one.templatepool.info": anyone(lambda w: (-2, -1, -1), "empty: no VM templates yet"),
    "one.template.info": Rule(
        lambda w: (0,), NO_SUCH, NO_SUCH, NO_SUCH, None, "no VM templates yet: 0x400"
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    oned = OnedProcess(tmp_path_factory.mktemp("authz") / "one").set(**CONF).start()
    try:
        yield World(oned)
    finally:
        oned.stop()


def test_every_method_has_a_rule():
    """A method added to METHODS without a row of RULES (who may call it) fails here."""
    assert sorted(RULES) == sorted(METHODS)


def test_the_doc_is_the_table():
    """share/doc/authorization.md is rendered from RULES (regenerate: run this module)."""
    assert DOC.read_text() == render_doc(), (
        "regenerate: python -m tests.functional.test_authorization"
    )


@pytest.mark.parametrize("method", sorted(RULES))
def test_each_caller_gets_the_answer_of_the_table(world, method):
    """No session, the other user, the owner, then oneadmin (last: it may delete the owner),
    each on fresh objects; then oneadmin naming an object that does not exist gets 0x400."""
    rule = RULES[method]
    world.new_owner()
    callers = [
        ("no session", f"{world.owner_name}:wrong", rule.nobody),
        ("other user", OTHER_SESSION, rule.other),
        ("owner", world.owner_session, rule.owner),
        ("oneadmin", ADMIN_SESSION, rule.admin),
    ]
    if rule.missing is not None:
        callers.append(("missing (oneadmin)", ADMIN_SESSION, NO_SUCH))
    answers = {}
    for who, session, _ in callers:
        build = rule.missing if who.startswith("missing") and rule.missing else rule.params
        ok, value, code = world.call(session, method, *build(world))
        answers[who] = (OK if ok else code, value)
    got = {who: code for who, (code, _) in answers.items()}
    assert got == {who: want for who, _, want in callers}, answers


def test_another_users_listings_hold_none_of_the_owners_objects(world):
    """The pools answer every user, but only with what they may see."""
    world.new_owner()
    vid, nid, iid = world.owner_vm(), world.owner_net(), world.owner_image()
    for method, params, tag, oid in [
        ("one.vmpool.info", ALL_VMS, "VM", vid),
        ("one.vmpool.infoextended", ALL_VMS, "VM", vid),
        ("one.vnpool.info", (-2,), "VNET", nid),
        ("one.imagepool.info", (-2,), "IMAGE", iid),
    ]:
        ids = {
            session: [
                e.findtext("ID")
                for e in ET.fromstring(str(world.must(session, method, *params))).iter(tag)
            ]
            for session in (OTHER_SESSION, world.owner_session, ADMIN_SESSION)
        }
        assert str(oid) not in ids[OTHER_SESSION], (method, ids)
        assert str(oid) in ids[world.owner_session] and str(oid) in ids[ADMIN_SESSION]


def test_a_regular_users_deploy_and_migrate_are_refused_in_opennebulas_words(world):
    """Issue 10 finding 3: the owner deployed and migrated her VM to any host; now 0x200 as
    modern OpenNebula answers, and the VM stays where it was."""
    world.new_owner()
    vid = world.owner_vm()
    ok, message, code = world.call(world.owner_session, "one.vm.deploy", vid, world.host_a)
    assert (ok, code) == (False, AUTHZ)
    uid = world.owner_uid
    assert message == f"[one.vm.deploy] User [{uid}] not authorized to perform ADMIN on VM [{vid}]."
    vid = world.running_vm()
    for live in (False, True):
        ok, message, code = world.call(
            world.owner_session, "one.vm.migrate", vid, world.host_b, live
        )
        assert (ok, code) == (False, AUTHZ)
        assert message.startswith(f"[one.vm.migrate] User [{world.owner_uid}] not authorized")
    record = ET.fromstring(str(world.admin("one.vm.info", vid))).findall("HISTORY_RECORDS/HISTORY")
    assert [h.findtext("HID") for h in record] == [str(world.host_a)]


DOC_HEAD = """# Who may do what

This file is generated from the table `RULES` in `tests/functional/test_authorization.py`,
which calls every XML-RPC method as each kind of caller against a real oned and checks the
answers below; a test fails when the two differ. Do not edit it by hand: change the table and
run `.venv/bin/python -m tests.functional.test_authorization`.

The model is modern OpenNebula's: oneadmin (uid 0) may do everything; a user acts on their own
VMs, networks and images and reads hosts; networks and images are private unless PUBLIC; hosts
and users are oneadmin's; choosing a host (`one.vm.deploy`, `one.vm.migrate`, cold or live) is an
administrator action. The scheduler, `mm_sched`, deploys every user's VMs because it runs
with oneadmin's credentials (`$ONE_AUTH` of the `one start` that launches it).

Callers:

- **owner**: a regular user on objects they own (for `one.user.*`, their own account);
- **other user**: another regular user on the same objects;
- **oneadmin**: uid 0;
- **no session**: a session that does not authenticate (wrong password, unknown user);
- **missing**: oneadmin naming an object that does not exist.

The oned that checks this table runs oned.conf.example with two changes: `VNET_RESTRICTED_ATTR
= "VN_MAD"`, so that users may name BRIDGE and own networks (see `one.vn.allocate`), and
`IMAGE_RESTRICTED_ATTR = ""`, so that users may name an image's SOURCE and own READY images
without a copy (see `one.image.allocate`).

Answers: "yes" is success; otherwise OpenNebula's error code: 0x100 authentication,
0x200 authorization, 0x400 no such object, 0x800 action not allowed in this state,
0x1000 bad call. A refused call changes nothing.

"""

DOC_TAIL = """
## Host checks at deploy and migrate (everyone, oneadmin included)

- A DISABLED host takes no VM: 0x800 naming the host (OpenNebula >= 5 refuses an OFFLINE host;
  onecloud maps OFFLINE to DISABLED).
- A VM whose CPU or MEMORY is larger than the host's monitored total (TOTALCPU, TOTALMEMORY)
  is refused: 0x800 "VM [id] does not fit in host [id] (name): ...".
- With `enforce` (mm_sched always sets it), the VM must also fit in the host's free allocated
  capacity (total minus what its VMs hold).
- A host not monitored yet (both totals 0) has an unknown capacity: refused with `enforce`,
  accepted without it (oneadmin's explicit choice).
- Nothing is reserved before the move is committed: a refused deploy leaves the VM PENDING and
  the host's CPU_USAGE, MEM_USAGE and RUNNING_VMS as they were.
"""


def render_doc() -> str:
    lines = [
        "| method | owner | other user | oneadmin | no session | missing | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(RULES):
        r = RULES[name]
        missing = NAMES[NO_SUCH] if r.missing else "-"
        codes = (NAMES[c] for c in (r.owner, r.other, r.admin, r.nobody))
        lines.append(f"| `{name}` | {' | '.join(codes)} | {missing} | {r.note} |")
    return DOC_HEAD + "\n".join(lines) + "\n" + DOC_TAIL


if __name__ == "__main__":
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render_doc())
    sys.exit(0)
