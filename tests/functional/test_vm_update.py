"""one.vm.update on a real oned through pyone: USER_TEMPLATE merged, replaced, refused, kept."""

from __future__ import annotations

import pyone
import pytest

from tests.functional.conftest import as_user

pytestmark = pytest.mark.functional

TTYLINUX = 'NAME = ttylinux\nCPU = 0.1\nMEMORY = 64\nDISK = [ SOURCE = "/srv/tty.img" ]'
MESSAGE = "Sat Nov 28 10:00:00 2026 : No host with enough capacity to deploy the VM"


def user_template(one: pyone.OneServer, vid: int) -> dict:
    return dict(one.vm.info(vid).USER_TEMPLATE or {})


def test_a_merge_sets_sched_message_and_info_shows_it_in_user_template(admin):
    """The scheduler's call: update(vid, 'SCHED_MESSAGE="x"', 1); the answer is the vid."""
    vid = admin.vm.allocate(TTYLINUX)
    assert admin.vm.update(vid, 'SCHED_MESSAGE="x"', 1) == vid
    vm = admin.vm.info(vid)
    assert vm.USER_TEMPLATE["SCHED_MESSAGE"] == "x"
    assert "SCHED_MESSAGE" not in vm.TEMPLATE and vm.TEMPLATE["MEMORY"] == "64"


def test_merge_replaces_same_named_attributes_and_replace_drops_the_others(admin):
    """merge 1 keeps what is not named; merge 0 (and the two-argument form) replaces all."""
    vid = admin.vm.allocate(TTYLINUX)
    admin.vm.update(vid, 'SCHED_MESSAGE = "old"\nNOTE = "kept"', 1)
    admin.vm.update(vid, 'SCHED_MESSAGE = "new"', 1)
    assert user_template(admin, vid) == {"SCHED_MESSAGE": "new", "NOTE": "kept"}
    admin.vm.update(vid, "<TEMPLATE><LABELS><TEAM>web</TEAM></LABELS></TEMPLATE>", 0)
    assert user_template(admin, vid) == {"LABELS": {"TEAM": "web"}}
    admin.vm.update(vid, 'ONLY = "this"')
    assert user_template(admin, vid) == {"ONLY": "this"}
    admin.vm.update(vid, "", 0)
    assert user_template(admin, vid) == {}


def test_the_listing_shows_the_sched_message_of_each_vm(admin):
    """one.vmpool.info's summary carries USER_TEMPLATE, so `onevm list` users can see why."""
    waiting = admin.vm.allocate(TTYLINUX)
    quiet = admin.vm.allocate(TTYLINUX)
    admin.vm.update(waiting, f'SCHED_MESSAGE = "{MESSAGE}"', 1)
    listed = {vm.ID: dict(vm.USER_TEMPLATE or {}) for vm in admin.vmpool.info(-2, -1, -1, -1).VM}
    assert listed == {waiting: {"SCHED_MESSAGE": MESSAGE}, quiet: {}}


def test_onevm_show_prints_the_sched_message_and_the_user_template(oned, admin):
    """The CLI against oned: the message among the fields, then the USER TEMPLATE section."""
    vid = admin.vm.allocate(TTYLINUX)
    admin.vm.update(vid, f'SCHED_MESSAGE = "{MESSAGE}"', 1)
    result = oned.run_cli("onevm", "show", str(vid))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"SCHED_MESSAGE  : {MESSAGE}" in lines
    assert lines[-2:] == ["USER TEMPLATE".ljust(80), f"SCHED_MESSAGE={MESSAGE}"]


def test_another_user_may_not_update_a_vm_but_its_owner_may(oned, admin):
    """Owner or oneadmin only: helen is refused (0x200) on oneadmin's VM, not on her own."""
    admin.user.allocate("helen", "mypass", "core", [])
    helen = as_user(oned, "helen:mypass")
    theirs = admin.vm.allocate(TTYLINUX)
    with pytest.raises(pyone.OneAuthorizationException):
        helen.vm.update(theirs, 'SCHED_MESSAGE="x"', 1)
    assert user_template(admin, theirs) == {}
    mine = helen.vm.allocate("NAME = mine\nMEMORY = 64")  # no DISK: /srv is not a SAFE_DIR
    assert helen.vm.update(mine, 'NOTE="mine"', 1) == mine
    assert user_template(helen, mine) == {"NOTE": "mine"}
    assert admin.vm.update(mine, 'NOTE="admin"', 1) == mine


def test_a_missing_vm_a_done_vm_and_bad_calls_are_refused(admin):
    """0x400 for no such VM, 0x800 for a DONE one, 0x2000 for a template that does not parse
    (as OpenNebula), 0x1000 for a bad merge flag."""
    with pytest.raises(pyone.OneNoExistsException):
        admin.vm.update(99, 'SCHED_MESSAGE="x"', 1)
    vid = admin.vm.allocate(TTYLINUX)
    with pytest.raises(pyone.OneInternalException, match="Error parsing VM template: syntax"):
        admin.vm.update(vid, "SCHED_MESSAGE = [", 1)
    with pytest.raises(pyone.OneApiException, match="merge must be 0"):
        admin.vm.update(vid, 'A="b"', 2)
    admin.vm.action("finalize", vid)
    assert admin.vm.info(vid).STATE == 6
    with pytest.raises(pyone.OneActionException, match="DONE"):
        admin.vm.update(vid, 'SCHED_MESSAGE="x"', 1)
    assert user_template(admin, vid) == {}


def test_the_user_template_survives_a_restart_of_oned(oned, admin):
    """Acknowledged means written: after a restart the USER_TEMPLATE is still there."""
    vid = admin.vm.allocate(TTYLINUX)
    admin.vm.update(vid, 'SCHED_MESSAGE = "x"\nLABELS = [ TEAM = "web" ]', 1)
    oned.stop()
    oned.start()
    again = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert user_template(again, vid) == {"SCHED_MESSAGE": "x", "LABELS": {"TEAM": "web"}}


def test_deploy_clears_the_sched_message_and_keeps_the_rest(admin):
    """Once placed, the VM no longer waits: SCHED_MESSAGE goes, other attributes stay."""
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    vid = admin.vm.allocate(TTYLINUX)
    admin.vm.update(vid, 'SCHED_MESSAGE = "waiting"\nNOTE = "kept"', 1)
    admin.vm.deploy(vid, hid)
    vm = admin.vm.info(vid)
    assert vm.STATE == 3
    assert dict(vm.USER_TEMPLATE) == {"NOTE": "kept"}
