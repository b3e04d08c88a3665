"""The documents of a real oned carry what OpenNebula 6.10's XSDs require and what 1.4/2.0
clients read, and parse with pyone (issue 12, findings 2, 3 and 4); paths in
tests/required_paths.py."""

from __future__ import annotations

import xmlrpc.client
from xml.etree import ElementTree

import pyone
import pyone.bindings as bindings

from tests import required_paths as rp
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

SESSION = "oneadmin:onecloud"
NET = "NAME=lan\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_ADDRESS=10.9.0.0\nNETWORK_SIZE=8\n"


def raw(oned: OnedProcess, method: str, *args: object) -> ElementTree.Element:
    """The document as sent, and checked to parse with pyone's bindings."""
    reply = getattr(xmlrpc.client.ServerProxy(oned.endpoint), method)(SESSION, *args)
    assert reply[0], reply[1]
    assert bindings.parseString(reply[1].encode(), silence=True) is not None
    return ElementTree.fromstring(reply[1])


def lacks(root: ElementTree.Element, *lists: tuple[str, ...]) -> list[str]:
    return [path for paths in lists for path in rp.missing(root, paths)]


def test_every_document_of_a_running_cloud_carries_the_required_elements(oned, admin):
    """A user, a monitored host, a network and a VM with a lease running there."""
    uid = admin.user.allocate("helen", "pw", "core", [])
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    nid = admin.vn.allocate(NET, -1)
    vid = admin.vm.allocate('NAME=web\nMEMORY=64\nNIC=[NETWORK="lan"]')
    wait_for(lambda: admin.host.info(hid).STATE == 2)
    admin.vm.deploy(vid, hid)
    wait_for(lambda: (admin.vm.info(vid).STATE, admin.vm.info(vid).LCM_STATE) == (3, 3))

    assert lacks(raw(oned, "one.user.info", uid), rp.USER_610, rp.USER_14) == []
    user_pool = raw(oned, "one.userpool.info")
    assert rp.missing(user_pool, rp.USER_POOL_LEVEL_610) == []
    for user in user_pool:
        assert user.tag != "USER" or lacks(user, rp.USER_POOL_610, rp.USER_14) == []
    host_lists = (rp.HOST_610, rp.HOST_14)
    assert lacks(raw(oned, "one.host.info", hid), *host_lists) == []
    [host] = raw(oned, "one.hostpool.info")
    assert lacks(host, rp.HOST_POOL_610, rp.HOST_POOL_14) == []
    net_lists = (rp.VNET_610, rp.VNET_14, rp.VNET_POOL_14)
    assert lacks(raw(oned, "one.vn.info", nid), *net_lists) == []
    [net] = raw(oned, "one.vnpool.info", -2, -1, -1)
    assert lacks(net, rp.VNET_POOL_610, rp.VNET_POOL_14) == []
    vm_lists = (rp.VM_610, rp.VM_14, rp.DEPLOYED)
    assert lacks(raw(oned, "one.vm.info", vid), *vm_lists) == []
    [vm] = raw(oned, "one.vmpool.infoextended", -2, -1, -1, -1)
    assert lacks(vm, *vm_lists) == []
    [vm] = raw(oned, "one.vmpool.info", -2, -1, -1, -1)
    assert lacks(vm, rp.VM_POOL_610, rp.VM_POOL_14, rp.DEPLOYED) == []
    assert [vm.findtext(p) for p in ("USERNAME", "HISTORY/HOSTNAME")] == ["oneadmin", "host01"]
    assert admin.vn.info(nid).UPDATED_VMS.ID == [vid]


def test_modern_host_allocate_gives_the_default_tm_mad_of_oned_conf(tmp_path):
    """Finding 4: DEFAULT_TM_MAD, not the first TM_MAD (tm_ssh), and `onehost show` says so."""
    oned = OnedProcess(tmp_path / "one").set(DEFAULT_TM_MAD='"tm_dummy"').start()
    try:
        admin = pyone.OneServer(oned.endpoint, session=SESSION)
        hid = admin.host.allocate("host01", "dummy", "dummy", -1)
        assert raw(oned, "one.host.info", hid).findtext("TM_MAD") == "tm_dummy"
        shown = oned.run_cli("onehost", "show", "host01")
        assert shown.returncode == 0, shown.stderr
        assert "TM_MAD                : tm_dummy" in shown.stdout
        named = admin.host.allocate("host02", "im_dummy", "vmm_dummy", "tm_nfs")  # 1.4 form
        assert raw(oned, "one.host.info", named).findtext("TM_MAD") == "tm_nfs"
    finally:
        oned.stop()
