"""Leases on hold (modern one.vn.hold / one.vn.release) against a real oned: shown USED with
VID -1, kept from VMs, kept over a restart, released only when on hold; onevnet hold/release."""

from __future__ import annotations

import signal
import subprocess
import xml.etree.ElementTree as ET
import xmlrpc.client

import pyone
import pytest

from tests.functional.conftest import as_user
from tests.functional.oned_process import OnedProcess

RANGED = "NAME = pub\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.5.0.0\nNETWORK_SIZE = 3\n"
FIXED = "NAME = fix\nTYPE = FIXED\nBRIDGE = br0\n" + "".join(
    f"LEASES = [ IP = 10.6.0.{n} ]\n" for n in (1, 2)
)


def lease(ip: str) -> str:
    return f'LEASES = [ IP = "{ip}" ]'


def vm_ip(admin: pyone.OneServer, vid: int) -> str:
    return admin.vm.info(vid).TEMPLATE["NIC"]["IP"]


def ok(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def raw_leases(oned: OnedProcess, nid: int) -> list[tuple[str, str, str]]:
    """The LEASES of one.vn.info as the XML says them (pyone does not bind the 1.4 ones)."""
    with xmlrpc.client.ServerProxy(oned.endpoint) as proxy:
        answer = proxy.one.vn.info("oneadmin:onecloud", nid)
    assert answer[0], answer
    root = ET.fromstring(answer[1])
    return [
        (e.findtext("IP", ""), e.findtext("USED", ""), e.findtext("VID", ""))
        for e in root.iterfind("LEASES/LEASE")
    ]


def test_a_held_lease_is_used_by_vm_minus_one_and_no_vm_gets_it(admin, oned):
    """Hold 10.5.0.1 of a 3-address network: shown USED=1 VID=-1; the next VM gets 10.5.0.2;
    a VM asking for 10.5.0.1 is refused naming the hold; USED_LEASES counts it."""
    nid = admin.vn.allocate(RANGED)
    assert admin.vn.hold(nid, lease("10.5.0.1")) == nid
    assert raw_leases(oned, nid) == [("10.5.0.1", "1", "-1")]
    vid = admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "pub" ]')
    assert vm_ip(admin, vid) == "10.5.0.2"
    with pytest.raises(pyone.OneException, match=r"10\.5\.0\.1 .* is used by a hold"):
        admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "pub", IP = 10.5.0.1 ]')
    assert admin.vn.info(nid).USED_LEASES == 2
    ar_leases = admin.vn.info(nid).AR_POOL.AR[0].LEASES.LEASE
    assert [(x.IP, x.VM) for x in ar_leases] == [("10.5.0.1", -1), ("10.5.0.2", vid)]


def test_hold_refuses_a_used_lease_naming_its_holder_and_release_only_a_hold(admin):
    """A VM's lease cannot be held (0x800 naming the VM) nor released; a lease held twice is
    refused; a free one cannot be released; an address outside the network is a bad call."""
    nid = admin.vn.allocate(RANGED)
    vid = admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "pub" ]')
    with pytest.raises(pyone.OneActionException, match=rf"10\.5\.0\.1 .* used by VM {vid}"):
        admin.vn.hold(nid, lease("10.5.0.1"))
    with pytest.raises(pyone.OneActionException, match=rf"not on hold: it is used by VM {vid}"):
        admin.vn.release(nid, lease("10.5.0.1"))
    with pytest.raises(pyone.OneActionException, match="not on hold: it is free"):
        admin.vn.release(nid, lease("10.5.0.2"))
    admin.vn.hold(nid, lease("10.5.0.2"))
    with pytest.raises(pyone.OneActionException, match=r"used by a hold"):
        admin.vn.hold(nid, lease("10.5.0.2"))
    with pytest.raises(pyone.OneApiException, match=r"10\.5\.0\.9 is not in virtual network"):
        admin.vn.hold(nid, lease("10.5.0.9"))
    for bad in ("LEASES = [ IP = nonsense ]", "IP = 10.5.0.3", "LEASES = [ MAC = x ]"):
        with pytest.raises(pyone.OneApiException):
            admin.vn.hold(nid, bad)
    with pytest.raises(pyone.OneNoExistsException):
        admin.vn.hold(99, lease("10.5.0.3"))
    assert admin.vn.release(nid, lease("10.5.0.2")) == nid
    assert admin.vn.info(nid).USED_LEASES == 1


def test_a_held_lease_of_a_fixed_network_is_freed_by_release(admin, oned):
    """FIXED: every lease is listed; the held one USED with VID -1, then free (VID -1, USED 0)."""
    nid = admin.vn.allocate(FIXED)
    admin.vn.hold(nid, lease("10.6.0.1"))
    assert raw_leases(oned, nid) == [("10.6.0.1", "1", "-1"), ("10.6.0.2", "0", "-1")]
    assert vm_ip(admin, admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "fix" ]')) == "10.6.0.2"
    with pytest.raises(pyone.OneException, match="no free lease"):
        admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "fix" ]')
    admin.vn.release(nid, lease("10.6.0.1"))
    assert raw_leases(oned, nid)[0] == ("10.6.0.1", "0", "-1")
    assert vm_ip(admin, admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "fix" ]')) == "10.6.0.1"


def test_a_hold_survives_kill_9_and_its_release_survives_a_restart(admin, oned):
    """The hold is a row of the leases table: after SIGKILL it is still held, after release
    and a clean restart it is free."""
    nid = admin.vn.allocate(RANGED)
    admin.vn.hold(nid, lease("10.5.0.1"))
    oned.stop(signal.SIGKILL)
    oned.start()
    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert raw_leases(oned, nid) == [("10.5.0.1", "1", "-1")]
    assert vm_ip(admin, admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "pub" ]')) == "10.5.0.2"
    admin.vn.release(nid, lease("10.5.0.1"))
    oned.stop()
    oned.start()
    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    assert raw_leases(oned, nid) == [("10.5.0.2", "1", "0")]


def test_a_network_with_a_hold_is_not_deleted(admin):
    """Refused naming the held IP; deleted once it is released."""
    nid = admin.vn.allocate(RANGED)
    admin.vn.hold(nid, lease("10.5.0.3"))
    with pytest.raises(pyone.OneActionException, match=r"leases on hold \(10\.5\.0\.3\)"):
        admin.vn.delete(nid)
    admin.vn.release(nid, lease("10.5.0.3"))
    assert admin.vn.delete(nid) == nid


@pytest.fixture
def users_bridge(tmp_path):
    """Users may name BRIDGE, so they own networks."""
    process = OnedProcess(tmp_path / "one").set(VNET_RESTRICTED_ATTR='"VN_MAD"').start()
    yield process
    process.stop()


def test_only_the_owner_or_oneadmin_holds_and_releases(users_bridge):
    """helen's network: dan may neither hold nor release its leases, even when it is public."""
    admin = as_user(users_bridge, "oneadmin:onecloud")
    for name in ("helen", "dan"):
        admin.user.allocate(name, "pw", "core", [])
    helen, dan = as_user(users_bridge, "helen:pw"), as_user(users_bridge, "dan:pw")
    nid = helen.vn.allocate(RANGED + "PUBLIC = YES\n")
    with pytest.raises(pyone.OneAuthorizationException):
        dan.vn.hold(nid, lease("10.5.0.1"))
    helen.vn.hold(nid, lease("10.5.0.1"))
    with pytest.raises(pyone.OneAuthorizationException):
        dan.vn.release(nid, lease("10.5.0.1"))
    admin.vn.release(nid, lease("10.5.0.1"))
    assert raw_leases(users_bridge, nid) == []


def test_onevnet_hold_and_release(oned, tmp_path):
    """onevnet -v hold pub 10.5.0.1 10.5.0.2 / show / release; a bad IP changes nothing."""
    (tmp_path / "pub.net").write_text(RANGED)
    ok(oned.run_cli("onevnet", "create", str(tmp_path / "pub.net")))
    held = ok(oned.run_cli("onevnet", "-v", "hold", "pub", "10.5.0.1", "10.5.0.2"))
    assert held == ["Lease 10.5.0.1 on hold", "Lease 10.5.0.2 on hold"]
    show = ok(oned.run_cli("onevnet", "show", "pub"))
    assert "LEASE=[ IP=10.5.0.1, MAC=02:00:0a:05:00:01, USED=1, VID=-1 ]" in show
    bad = oned.run_cli("onevnet", "release", "pub", "10.5.0.1", "10.5.0.x")
    assert bad.returncode != 0 and '"10.5.0.x" is not an IPv4 address' in bad.stderr
    released = ok(oned.run_cli("onevnet", "-v", "release", "0", "10.5.0.1"))
    assert released == ["Lease 10.5.0.1 released"]
    refused = oned.run_cli("onevnet", "release", "pub", "10.5.0.1")
    assert refused.returncode == 255 and "not on hold: it is free" in refused.stderr
    assert "hold" in ok(oned.run_cli("onevnet", "hold", "--help"))[0]
