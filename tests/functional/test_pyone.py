"""pyone from PyPI drives a real oned: users, hosts and VMs allocated, listed, shown, deleted."""

from __future__ import annotations

import pyone
import pytest

from tests.functional.conftest import as_user

TTYLINUX = """NAME   = ttylinux
CPU    = 0.1
MEMORY = 64
DISK   = [ source = "/srv/cloud/images/ttylinux/ttylinux.img", target = "hda", readonly = "no" ]
NIC    = [ NETWORK = "One-TD" ]
FEATURES = [ acpi="no" ]
"""
REAL_NET = """NAME = "One-TD"
TYPE = RANGED
BRIDGE = xenbr0
NETWORK_SIZE      = 125
NETWORK_ADDRESS = 192.168.1.128
"""


def test_pyone_allocates_lists_shows_and_deletes_users(admin):
    """The whole user cycle through pyone's generated bindings."""
    uid = admin.user.allocate("helen", "mypass", "core", [])
    assert uid == 1
    names = [u.NAME for u in admin.userpool.info().USER]
    assert names == ["oneadmin", "helen"]
    user = admin.user.info(uid)
    assert (user.ID, user.NAME, user.ENABLED) == (1, "helen", 1)
    assert "mypass" not in user.PASSWORD
    assert admin.user.delete(uid) == uid
    with pytest.raises(pyone.OneNoExistsException):
        admin.user.info(uid)


def test_pyone_allocates_lists_shows_and_deletes_hosts(admin):
    """Modern 4-argument host.allocate with a cluster id, status, and delete."""
    hid = admin.host.allocate("host01", "kvm", "kvm", -1)
    host = admin.host.info(hid)
    assert (host.ID, host.NAME, host.STATE, host.IM_MAD, host.VM_MAD) == (
        0,
        "host01",
        0,
        "im_kvm",
        "vmm_kvm",
    )
    assert host.HOST_SHARE.MAX_CPU == 0
    admin.host.status(hid, 1)
    assert admin.host.info(hid).STATE == 4
    admin.host.status(hid, 0)
    assert admin.host.info(hid).STATE == 0
    assert [h.NAME for h in admin.hostpool.info().HOST] == ["host01"]
    admin.host.delete(hid)
    assert admin.hostpool.info().HOST == []


def test_pyone_allocates_shows_and_lists_vms(admin):
    """A VM enters PENDING with its template, NAME and VMID kept; pool filters work."""
    admin.vn.allocate(REAL_NET)
    vid = admin.vm.allocate(TTYLINUX)
    vm = admin.vm.info(vid)
    assert (vm.ID, vm.NAME, vm.STATE, vm.LCM_STATE, vm.UNAME) == (0, "ttylinux", 1, 0, "oneadmin")
    assert vm.TEMPLATE["DISK"]["TARGET"] == "hda"
    assert vm.TEMPLATE["VMID"] == "0"
    assert vm.TEMPLATE["NIC"]["IP"] == "192.168.1.129"
    second = admin.vm.allocate({"MEMORY": "128", "CPU": "1"})
    assert admin.vm.info(second).NAME == "one-1"
    held = admin.vm.allocate("MEMORY=32", True)
    assert admin.vm.info(held).STATE == 2
    assert [v.ID for v in admin.vmpool.info(-2, -1, -1, -1).VM] == [0, 1, 2]
    assert [v.ID for v in admin.vmpool.info(-2, -1, -1, 2).VM] == [2]
    assert [v.ID for v in admin.vmpool.info(-2, 1, 2, -1).VM] == [1, 2]
    assert [v.ID for v in admin.vmpool.info(-2, 1, -2, -1).VM] == [1, 2]
    assert [v.ID for v in admin.vmpool.infoextended(-2, -1, -1, -1).VM] == [0, 1, 2]


def test_a_template_with_a_syntax_error_names_line_and_column_and_stores_nothing(admin):
    """The parser's position reaches the client; the next VM still gets id 0."""
    with pytest.raises(pyone.OneInternalException, match=r"line 2, column"):  # 0x2000, as ONE
        admin.vm.allocate('NAME = "ok"\nDISK = [ source = ]\n')
    with pytest.raises(pyone.OneApiException, match=r"MEMORY"):
        admin.vm.allocate("MEMORY = lots")
    assert admin.vmpool.info(-2, -1, -1, -1).VM == []
    assert admin.vm.allocate("MEMORY = 64") == 0


def test_regular_users_see_and_act_on_their_own_objects_only(admin, oned):
    """helen sees her VMs only, may not read oneadmin's, and may not manage users or hosts."""
    admin.user.allocate("helen", "mypass", "core", [])
    admin.vm.allocate("NAME = admins\nMEMORY = 64")
    helen = as_user(oned, "helen:mypass")
    mine = helen.vm.allocate("NAME = hers\nMEMORY = 64")
    assert [v.NAME for v in helen.vmpool.info(-2, -1, -1, -1).VM] == ["hers"]
    assert helen.vmpool.info(0, -1, -1, -1).VM == []
    assert [v.NAME for v in admin.vmpool.info(-2, -1, -1, -1).VM] == ["admins", "hers"]
    assert helen.vm.info(mine).UNAME == "helen"
    with pytest.raises(pyone.OneAuthorizationException):
        helen.vm.info(0)
    with pytest.raises(pyone.OneAuthorizationException):
        helen.userpool.info()
    with pytest.raises(pyone.OneAuthorizationException):
        helen.user.allocate("eve", "x", "core", [])
    with pytest.raises(pyone.OneAuthorizationException):
        helen.host.allocate("h", "kvm", "kvm", -1)
    assert helen.user.info(-1).NAME == "helen"


def test_wrong_password_unknown_user_and_malformed_session_get_0x100(admin, oned):
    """Three kinds of bad session, one answer; the log says which."""
    admin.user.allocate("helen", "mypass", "core", [])
    for session in ("helen:wrong", "nobody:x", "no-colon-here"):
        with pytest.raises(pyone.OneAuthenticationException) as exc:
            as_user(oned, session).vmpool.info(-2, -1, -1, -1)
        assert "wrong" not in str(exc.value) and "no such" not in str(exc.value)
    log = oned.log
    assert 'Authentication failed for "helen": wrong password' in log
    assert 'Authentication failed for "nobody": no such user' in log
    assert "Authentication failed: malformed session string" in log


def test_sessions_with_the_sha1_of_the_password_are_accepted(admin, oned):
    """OpenNebula 1.4/2.0 clients send user:sha1hex(password)."""
    sha1 = "8944aada99d6d0121494dd0ac8129db653bc1f4a"  # sha1("onecloud")
    assert as_user(oned, f"oneadmin:{sha1}").user.info(0).NAME == "oneadmin"


def test_a_changed_password_takes_effect_at_once(admin, oned):
    """The session cache does not outlive a password change or a deletion."""
    uid = admin.user.allocate("helen", "mypass", "core", [])
    helen = as_user(oned, "helen:mypass")
    helen.vmpool.info(-1, -1, -1, -1)
    helen.user.passwd(uid, "newpass")
    with pytest.raises(pyone.OneAuthenticationException):
        helen.vmpool.info(-1, -1, -1, -1)
    as_user(oned, "helen:newpass").vmpool.info(-1, -1, -1, -1)
    admin.user.delete(uid)
    with pytest.raises(pyone.OneAuthenticationException):
        as_user(oned, "helen:newpass").vmpool.info(-1, -1, -1, -1)


def test_oneadmin_cannot_be_deleted_and_names_are_unique(admin):
    """uid 0 stays; a second helen or host01 is refused and the first is intact."""
    with pytest.raises(pyone.OneActionException):
        admin.user.delete(0)
    admin.user.allocate("helen", "mypass", "core", [])
    with pytest.raises(pyone.OneException, match="already taken"):
        admin.user.allocate("helen", "other", "core", [])
    admin.host.allocate("host01", "im_kvm", "vmm_kvm", -1)
    with pytest.raises(pyone.OneException, match="already taken"):
        admin.host.allocate("host01", "im_kvm", "vmm_kvm", -1)
    assert [u.NAME for u in admin.userpool.info().USER] == ["oneadmin", "helen"]
    assert len(admin.hostpool.info().HOST) == 1


def test_unknown_drivers_are_refused_naming_the_attribute(admin):
    """A typo in a driver name gets a clear error listing what oned.conf defines."""
    with pytest.raises(pyone.OneApiException, match=r'IM_MAD "im_kmv" is not defined'):
        admin.host.allocate("host01", "im_kmv", "vmm_kvm", -1)
    assert admin.hostpool.info().HOST == []


def test_vmpool_info_summarises_and_infoextended_gives_everything(admin):
    """As OpenNebula >= 5.8: the pool lists a summary, infoextended the full VM."""
    admin.vm.allocate('MEMORY = 64\nCONTEXT = [ FILES = "/srv/ctx" ]')
    short = admin.vmpool.info(-2, -1, -1, -1).VM[0]
    full = admin.vmpool.infoextended(-2, -1, -1, -1).VM[0]
    assert short.TEMPLATE["MEMORY"] == full.TEMPLATE["MEMORY"] == "64"
    assert "CONTEXT" not in short.TEMPLATE
    assert full.TEMPLATE["CONTEXT"]["FILES"] == "/srv/ctx"
