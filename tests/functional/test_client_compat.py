"""Clients of every release drive one real oned through a whole session (issue 12).

Two dialects, each the way its users work: the legacy one (onecloud's CLI, the 1.4/2.0 call
forms sent as OpenNebula 1.4's Ruby OCA sends them: ``one.host.allocate(name, im, vmm, tm)``,
``one.vmpool.info(flag)``, ``one.vn.allocate(template)``, the actions ``finalize``/``shutdown``)
and the modern one (pyone from PyPI, as OpenNebula 6's CLI calls: ``host.allocate(name, im, vmm,
cluster)``, ``vm.allocate(template, hold)``, ``vm.deploy`` of a held VM, ``terminate-hard`` of a
pending one, ``vnpool.info(filter, start, end)``). Hosts run the dummy drivers. In the middle oned
restarts, and no id of a deleted object is given again.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

import pyone
import pytest

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

SESSION = "oneadmin:onecloud"
MONITORED, RUNNING, PENDING, HOLD, ACTIVE, DONE = 2, 3, 1, 2, 3, 6
VM_TEMPLATE = 'NAME = "{name}"\nCPU = 0.1\nMEMORY = 64\nNIC = [ NETWORK = "{net}" ]\n'
NET_TEMPLATE = (
    'NAME = "{name}"\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_SIZE = C\n'
    "NETWORK_ADDRESS = 192.168.{third}.0\n"
)


@pytest.fixture
def cloud(tmp_path):
    """oned whose modern host.allocate gives hosts tm_dummy (DEFAULT_TM_MAD), polling fast."""
    oned = OnedProcess(tmp_path / "one").set(
        DEFAULT_TM_MAD='"tm_dummy"', HOST_MONITORING_INTERVAL=2, VM_POLLING_INTERVAL=2
    )
    oned.start()
    try:
        yield oned
    finally:
        oned.stop()


class Legacy:
    """OpenNebula 1.4's OCA: positional XML-RPC calls, the session first, [ok, value] back."""

    def __init__(self, oned: OnedProcess):
        self.proxy = xmlrpc.client.ServerProxy(oned.endpoint)

    def __call__(self, method: str, *params):
        reply = getattr(self.proxy, method)(SESSION, *params)
        assert reply[0], f"{method}{params}: {reply[1]}"
        return reply[1]

    def xml(self, method: str, *params) -> ET.Element:
        return ET.fromstring(self(method, *params))


def cli(oned: OnedProcess, *argv: str) -> list[str]:
    result = oned.run_cli(*argv)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout.splitlines()


def rows(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines[1:]]


def template_file(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def vm_state(one: Legacy, vid: int) -> tuple[int, int]:
    vm = one.xml("one.vm.info", vid)
    return int(vm.findtext("STATE", "-1")), int(vm.findtext("LCM_STATE", "-1"))


# ---------------------------------------------------------------------------- legacy dialect


def test_a_legacy_session_with_onecloud_cli_and_1_4_calls(cloud, tmp_path):
    """oneuser/onehost/onevnet/onevm as 1.4's users type them, checked with 1.4's calls."""
    one = Legacy(cloud)
    cli(cloud, "oneuser", "create", "helen", "mypass")
    assert [r[1] for r in rows(cli(cloud, "oneuser", "list"))] == ["oneadmin", "helen"]
    cli(cloud, "onehost", "create", "host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: int(one.xml("one.host.info", 0).findtext("STATE", "-1")) == MONITORED)
    net = template_file(tmp_path, "net.one", NET_TEMPLATE.format(name="legacy-net", third=50))
    cli(cloud, "onevnet", "create", net)
    assert [r[1:3] for r in rows(cli(cloud, "onevnet", "list"))] == [["oneadmin", "legacy-net"]]
    assert any("legacy-net" in line for line in cli(cloud, "onevnet", "show", "legacy-net"))

    vm = template_file(tmp_path, "vm.one", VM_TEMPLATE.format(name="placed", net="legacy-net"))
    cli(cloud, "onevm", "create", vm)
    cli(cloud, "onevm", "deploy", "placed", "host01")
    wait_for(lambda: vm_state(one, 0) == (ACTIVE, RUNNING))
    summary = one.xml("one.vmpool.info", -2).find("VM")  # 1.4: one.vmpool.info(session, flag)
    assert summary is not None
    assert summary.findtext("USERNAME") == "oneadmin"
    assert summary.findtext("HISTORY/HOSTNAME") == "host01"
    listed = rows(cli(cloud, "onevm", "list"))
    assert [(r[1:4], r[6]) for r in listed] == [(["oneadmin", "placed", "runn"], "host01")]

    cli(cloud, "onevm", "create", vm)  # stays PENDING: no scheduler runs
    cli(cloud, "onevm", "delete", "1")  # 1.4's finalize
    assert vm_state(one, 1)[0] == DONE
    cli(cloud, "onevm", "shutdown", "placed")
    wait_for(lambda: vm_state(one, 0)[0] == DONE)
    cli(cloud, "onevnet", "delete", "legacy-net")
    cli(cloud, "onehost", "delete", "host01")
    cli(cloud, "oneuser", "delete", "helen")
    assert one.xml("one.vnpool.info", -2).find("VNET") is None
    assert one.xml("one.hostpool.info").find("HOST") is None


def test_onevm_create_hold_then_deploy_places_the_vm_by_hand(cloud, tmp_path):
    """OpenNebula 6's usual way to place a VM by hand, with onecloud's CLI: create held
    (``--hold`` when the CLI has it, else ``onevm hold``), then deploy (finding 1)."""
    one = Legacy(cloud)
    cli(cloud, "onehost", "create", "host01", "im_dummy", "vmm_dummy", "tm_dummy")
    wait_for(lambda: int(one.xml("one.host.info", 0).findtext("STATE", "-1")) == MONITORED)
    net = template_file(tmp_path, "net.one", NET_TEMPLATE.format(name="held-net", third=51))
    cli(cloud, "onevnet", "create", net)
    vm = template_file(tmp_path, "vm.one", VM_TEMPLATE.format(name="held", net="held-net"))
    cli(cloud, "onevm", "create", vm)
    cli(cloud, "onevm", "hold", "held")
    assert vm_state(one, 0)[0] == HOLD
    cli(cloud, "onevm", "deploy", "held", "host01")
    wait_for(lambda: vm_state(one, 0) == (ACTIVE, RUNNING))


def test_onevm_create_dash_dash_hold_as_opennebula_6_types_it(cloud, tmp_path):
    """``onevm create --hold FILE``, OpenNebula 6's option, gives a VM in HOLD."""
    one = Legacy(cloud)
    vm = template_file(tmp_path, "vm.one", 'NAME = "held"\nMEMORY = 64\n')
    result = cloud.run_cli("onevm", "create", "--hold", vm)
    assert result.returncode == 0, result.stderr
    assert vm_state(one, 0)[0] == HOLD


# ---------------------------------------------------------------------------- modern dialect


def test_a_modern_session_with_pyone(cloud):
    """pyone as OpenNebula 6's tools call: hold then deploy, terminate of pending and held VMs,
    networks shown and listed with the elements modern clients read."""
    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    uid = admin.user.allocate("helen", "mypass", "core", [])
    hid = admin.host.allocate("host01", "im_dummy", "vmm_dummy", -1)
    wait_for(lambda: admin.host.info(hid).STATE == MONITORED)
    assert Legacy(cloud).xml("one.host.info", hid).findtext("TM_MAD") == "tm_dummy"
    nid = admin.vn.allocate(NET_TEMPLATE.format(name="modern-net", third=52), -1)
    network = admin.vn.info(nid)
    assert network.NAME == "modern-net" and network.VN_MAD
    assert network.UPDATED_VMS is not None and network.ERROR_VMS is not None
    assert [n.NAME for n in admin.vnpool.info(-2, -1, -1).VNET] == ["modern-net"]

    template = VM_TEMPLATE.format(name="placed", net="modern-net")
    vid = admin.vm.allocate(template, True)
    assert admin.vm.info(vid).STATE == HOLD
    admin.vm.deploy(vid, hid, False, -1)
    wait_for(lambda: (admin.vm.info(vid).STATE, admin.vm.info(vid).LCM_STATE) == (3, RUNNING))

    pending = admin.vm.allocate(template)
    admin.vm.action("terminate-hard", pending)
    held = admin.vm.allocate(template, True)
    admin.vm.action("terminate", held)
    assert [admin.vm.info(v).STATE for v in (pending, held)] == [DONE, DONE]

    admin.vm.action("terminate-hard", vid)
    wait_for(lambda: admin.vm.info(vid).STATE == DONE)
    assert admin.vn.delete(nid) == nid
    admin.host.delete(hid)
    admin.user.delete(uid)
    assert admin.vmpool.info(-2, -1, -1, -1).VM == []  # -1: every state but DONE


# ---------------------------------------------------------------------------- restart


def test_no_id_is_reused_after_a_restart_in_either_dialect(cloud, tmp_path):
    """Finding 5: after `one stop; one start` a deleted user's, host's, network's or VM's id
    went to the next one created; OpenNebula never reuses an id."""
    one = Legacy(cloud)
    cli(cloud, "oneuser", "create", "helen", "mypass")
    cli(cloud, "onehost", "create", "host01", "im_dummy", "vmm_dummy", "tm_dummy")
    net = template_file(tmp_path, "net.one", NET_TEMPLATE.format(name="first-net", third=53))
    cli(cloud, "onevnet", "create", net)
    vm = template_file(tmp_path, "vm.one", 'NAME = "first"\nMEMORY = 64\n')
    cli(cloud, "onevm", "create", vm)
    first = {"user": 1, "host": 0, "vnet": 0, "vm": 0}
    cli(cloud, "onevm", "delete", "0")
    cli(cloud, "onevnet", "delete", "first-net")
    cli(cloud, "onehost", "delete", "host01")
    cli(cloud, "oneuser", "delete", "helen")

    cloud.stop()
    cloud.start()

    admin = pyone.OneServer(cloud.endpoint, session=SESSION)
    again = {
        "user": admin.user.allocate("dan", "pass", "core", []),
        "host": one("one.host.allocate", "host02", "im_dummy", "vmm_dummy", "tm_dummy"),
        "vnet": admin.vn.allocate(NET_TEMPLATE.format(name="second-net", third=54), -1),
        "vm": one("one.vm.allocate", 'NAME = "second"\nMEMORY = 64\n'),
    }
    assert again == {kind: oid + 1 for kind, oid in first.items()}
