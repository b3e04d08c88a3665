"""Every document carries what OpenNebula 6.10's XSDs require and what 1.4/2.0 clients read
(issue 12, findings 2 and 3, and "every *.info and *pool.info document ..."); the paths are in
tests/required_paths.py."""

from __future__ import annotations

from xml.etree import ElementTree

import pyone.bindings as bindings
import pytest

from oned import views, vnet_views
from oned import vnet as vn
from oned.records import History, Host, HostShare, Lease, User, Vm, Vnet
from oned.template import Template
from tests import required_paths as rp

PREFIX = 0x0200


def parse(xml: str):
    return bindings.parseString(xml.encode(), silence=True)


def check(xml: str, *lists: tuple[str, ...]) -> None:
    for paths in lists:
        assert rp.missing_in_text(xml, paths) == []


def monitored_host() -> Host:
    share = HostShare(max_cpu=200, max_mem=2048, free_mem=1024, used_mem=1024, running_vms=1)
    return Host(3, "h3", "im_kvm", "vmm_kvm", "tm_ssh", state=2, last_mon_time=99, share=share)


def deployed_vm() -> Vm:
    tmpl = Template(
        [("NAME", "web"), ("MEMORY", "64"), ("NIC", {"NETWORK": "n", "IP": "10.0.0.2"})]
    )
    vm = Vm(7, 1, "web", tmpl, state=3, lcm_state=3, last_poll=50, cpu=12, memory=640)
    vm.history = [History(7, 0, "h3", 3, "/v", "vmm_kvm", "tm_ssh", stime=40)]
    return vm


def ranged_net() -> Vnet:
    names = ("NAME", "TYPE", "BRIDGE", "NETWORK_ADDRESS", "NETWORK_SIZE")
    tmpl = Template(list(zip(names, ("n", "RANGED", "br0", "10.0.0.0", "8"), strict=True)))
    lease = Lease(0, vn.parse_ip("10.0.0.2"), 0x02000A000002, vid=7)
    return Vnet(0, 1, "n", vn.RANGED, "br0", False, tmpl, {lease.ip: lease})


def fixed_net() -> Vnet:
    tmpl = Template(
        [("NAME", "f"), ("TYPE", "FIXED"), ("BRIDGE", "br1"), ("LEASES", {"IP": "10.1.0.5"})]
    )
    ips = [vn.parse_ip("10.1.0.5"), vn.parse_ip("10.1.0.6")]
    leases = {ip: Lease(1, ip, 0x020000000000 | ip, vid=-1) for ip in ips}
    leases[ips[0]].vid = 7
    return Vnet(1, 0, "f", vn.FIXED, "br1", True, tmpl, leases)


@pytest.mark.parametrize("host", [Host(0, "new", "im_kvm", "vmm_kvm", "tm_nfs"), monitored_host()])
def test_host_documents_carry_the_6_10_and_the_1_4_elements(host):
    xml = views.host_xml(host, [7])
    check(xml, rp.HOST_610, rp.HOST_POOL_610, rp.HOST_14, rp.HOST_POOL_14)
    parsed = parse(xml)
    assert parsed.HOST_SHARE.DATASTORES is not None and parsed.MONITORING is not None


def test_a_monitored_host_shows_its_capacity_where_modern_clients_read_it():
    parsed = parse(views.host_xml(monitored_host()))
    assert (parsed.MONITORING.TIMESTAMP, parsed.MONITORING.ID) == (99, 3)
    assert parsed.MONITORING.CAPACITY.FREE_MEMORY == 1024


@pytest.mark.parametrize("vm", [Vm(1, 0, "one-1", Template()), deployed_vm()])
@pytest.mark.parametrize(
    ("render", "modern", "old"),
    [
        (views.vm_xml, rp.VM_610, rp.VM_14),
        (views.vm_short_xml, rp.VM_POOL_610, rp.VM_POOL_14),
    ],
    ids=["full", "summary"],
)
def test_vm_documents_carry_the_6_10_and_the_1_4_elements(vm, render, modern, old):
    """Finding 3 for the summary: USERNAME, NET_TX/NET_RX, the current HISTORY, MONITORING."""
    xml = render(vm, "helen")
    check(xml, modern, old)
    if vm.history:
        check(xml, rp.DEPLOYED)


def test_a_pool_summary_shows_who_where_and_how_busy():
    """Finding 3: what 1.4/2.0 `onevm list` (USER, HOSTNAME) and 4.x (CPU, MEM) print."""
    vm = ElementTree.fromstring(views.vm_short_xml(deployed_vm(), "helen"))
    assert [vm.findtext(path) for path in ("USERNAME", "HISTORY/HOSTNAME")] == ["helen", "h3"]
    assert [vm.findtext(f"MONITORING/{name}") for name in ("CPU", "MEMORY")] == ["12", "640"]
    assert [vm.findtext(name) for name in ("NET_TX", "NET_RX")] == ["0", "0"]


@pytest.mark.parametrize("net", [ranged_net(), fixed_net()], ids=["ranged", "fixed"])
def test_network_documents_carry_the_6_10_and_the_1_4_elements(net):
    """Finding 2: VN_MAD, PHYDEV, VLAN_ID, OUTDATED_VMS, UPDATED_VMS, ERROR_VMS and the rest."""
    full = vnet_views.vnet_xml(net, "helen", PREFIX)
    short = vnet_views.vnet_short_xml(net, "helen", PREFIX)
    check(full, rp.VNET_610, rp.VNET_14, rp.VNET_POOL_14)
    check(short, rp.VNET_POOL_610, rp.VNET_POOL_14)
    parsed = parse(full)
    assert (parsed.VN_MAD, parsed.PHYDEV, parsed.VLAN_ID) == ("dummy", "", "")
    assert parsed.UPDATED_VMS.ID == [7] and parsed.OUTDATED_VMS.ID == []


def test_a_network_template_chooses_its_driver_phydev_and_vlan():
    net = ranged_net()
    net.template.add("VN_MAD", "802.1Q")
    net.template.add("PHYDEV", "eth1")
    net.template.add("VLAN_ID", "42")
    parsed = parse(vnet_views.vnet_xml(net, "helen", PREFIX))
    assert (parsed.VN_MAD, parsed.PHYDEV, parsed.VLAN_ID) == ("802.1Q", "eth1", "42")


def test_user_documents_carry_the_6_10_and_the_1_4_elements():
    xml = views.user_xml(User(3, "helen", "pbkdf2_sha256$1$a$b"))
    check(xml, rp.USER_610, rp.USER_POOL_610, rp.USER_14)
    assert parse(xml).DEFAULT_USER_QUOTAS is not None


def test_a_path_under_a_repeated_step_is_required_in_each_occurrence():
    """The checker itself: HISTORY* may be absent, but each HISTORY needs its children."""
    paths = ("HISTORY*/SEQ",)
    assert rp.missing_in_text("<VM/>", paths) == []
    assert rp.missing_in_text("<VM><HISTORY><SEQ>0</SEQ></HISTORY><HISTORY/></VM>", paths) == [
        "HISTORY*/SEQ"
    ]
