"""Modern clients against a real oned (issue 12): the methods they call first, the modern
action rules, and ids that are not reused across a restart. Driven with pyone from PyPI."""

from __future__ import annotations

import xmlrpc.client

import pyone
import pytest

from tests.functional.conftest import as_user
from tests.waiting import wait_for

pytestmark = pytest.mark.functional

VM = "NAME = ttylinux\nCPU = 0.1\nMEMORY = 64\n"


def test_held_vm_is_deployed_by_hand_and_pending_ones_are_terminated(admin):
    """Findings 1 and 6: `onevm create --hold` then deploy, and terminate of PENDING/HOLD."""
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: admin.host.info(hid).STATE == 2)
    held = admin.vm.allocate(VM, True)
    assert admin.vm.info(held).STATE == 2
    admin.vm.deploy(held, hid)
    wait_for(lambda: (admin.vm.info(held).STATE, admin.vm.info(held).LCM_STATE) == (3, 3))
    pending, on_hold = admin.vm.allocate(VM), admin.vm.allocate(VM, True)
    admin.vm.action("terminate", pending)
    admin.vm.action("terminate-hard", on_hold)
    assert admin.vm.info(pending).STATE == admin.vm.info(on_hold).STATE == 6  # DONE


def test_an_unknown_action_is_opennebulas_action_error(admin):
    """Finding 6: 0x800 (OneActionException) as OpenNebula, not 0x1000."""
    vid = admin.vm.allocate(VM)
    with pytest.raises(pyone.OneActionException, match="Unknown action"):
        admin.vm.action("explode", vid)


def test_a_duplicate_host_name_is_opennebulas_internal_error(admin):
    """Finding 6: OpenNebula answers a name taken with INTERNAL (0x2000), not 0x4000."""
    admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    with pytest.raises(pyone.OneInternalException, match="already taken"):
        admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")


def test_groups_clusters_datastores_and_templates_are_a_fresh_opennebulas(admin, oned):
    """Finding 7: these methods answered "unknown method"; pyone's bindings now read them."""
    admin.user.allocate("helen", "pw", "core", [])
    groups = admin.grouppool.info()
    assert [(g.ID, g.NAME, g.USERS.ID) for g in groups.GROUP] == [
        (0, "oneadmin", [0]),
        (1, "users", [1]),
    ]
    assert admin.group.info(1).NAME == "users"
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    cluster = admin.clusterpool.info().CLUSTER[0]
    assert (cluster.ID, cluster.NAME, cluster.HOSTS.ID, cluster.DATASTORES.ID) == (
        0,
        "default",
        [hid],
        [0, 1, 2],
    )
    assert admin.cluster.info(0).NAME == "default"
    datastores = admin.datastorepool.info().DATASTORE
    assert [(d.ID, d.NAME, d.TYPE) for d in datastores] == [
        (0, "system", 1),
        (1, "default", 0),
        (2, "files", 2),
    ]
    assert admin.datastore.info(2).NAME == "files"
    assert admin.templatepool.info(-2, -1, -1).VMTEMPLATE == []
    with pytest.raises(pyone.OneNoExistsException):
        admin.template.info(0)
    with pytest.raises(pyone.OneNoExistsException):
        admin.group.info(7)


def test_system_config_is_oned_conf_without_the_database_password(admin, oned):
    """Finding 7: one.system.config, oneadmin only, no secret."""
    conf = admin.system.config()
    assert conf.PORT == int(oned.endpoint.rsplit(":", 1)[1].split("/")[0])
    with xmlrpc.client.ServerProxy(oned.endpoint) as proxy:
        raw = proxy.one.system.config("oneadmin:onecloud")
    assert raw[0] and "<PASSWD>" not in raw[1] and "<DB><BACKEND>" in raw[1]
    admin.user.allocate("helen", "pw", "core", [])
    with pytest.raises(pyone.OneAuthorizationException):
        as_user(oned, "helen:pw").system.config()


def test_rename_infoset_and_monitoring_work_on_real_vms(admin, oned):
    """Finding 7: one.vm.rename (owner or admin), one.vmpool.infoset, one.vm.monitoring."""
    admin.user.allocate("helen", "pw", "core", [])
    helen = as_user(oned, "helen:pw")
    mine, theirs = helen.vm.allocate(VM), admin.vm.allocate(VM)
    helen.vm.rename(mine, "web-1")
    assert admin.vm.info(mine).NAME == "web-1" and admin.vm.info(mine).TEMPLATE["NAME"] == "web-1"
    with pytest.raises(pyone.OneAuthorizationException):
        helen.vm.rename(theirs, "stolen")
    with pytest.raises(pyone.OneApiException):
        admin.vm.rename(mine, "")
    assert [vm.ID for vm in admin.vmpool.infoset(f"{theirs},{mine}", False).VM] == [mine, theirs]
    assert [vm.ID for vm in helen.vmpool.infoset(f"{mine},{theirs}", True).VM] == [mine]
    assert admin.vm.monitoring(mine).MONITORING == []
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: admin.host.info(hid).STATE == 2)
    admin.vm.deploy(mine, hid)
    wait_for(lambda: admin.vm.monitoring(mine).MONITORING != [], timeout=60)
    record = admin.vm.monitoring(mine).MONITORING[0]
    assert record.ID == mine and record.TIMESTAMP > 0


def test_ids_are_not_reused_after_a_restart(admin, oned):
    """Finding 5: the deleted highest user, host and network ids came back after a restart."""
    uid = admin.user.allocate("helen", "pw", "core", [])
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    nid = admin.vn.allocate("NAME = net\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]")
    admin.user.delete(uid)
    admin.host.delete(hid)
    admin.vn.delete(nid)
    oned.stop()
    oned.start()
    again = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert again.user.allocate("ian", "pw", "core", []) == uid + 1
    assert again.host.allocate("host02", "im_dummy", "vmm_dummy", "tm_dummy") == hid + 1
    net = again.vn.allocate("NAME = n2\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.2 ]")
    assert net == nid + 1
