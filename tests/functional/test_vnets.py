"""Virtual networks against a real oned: the seed's onevnet commands, NIC leases through pyone,
parallel allocation, ownership, bad input, restarts, and the ebtables hook on a real bridge."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyone
import pytest

from tests.functional.conftest import as_user
from tests.functional.oned_process import ROOT, OnedProcess

CN = 1  # the seed's $CN, the number of the workshop's cluster
REAL_NET = f"""NAME = "One-TD"
TYPE = RANGED
BRIDGE = xenbr0
NETWORK_SIZE      = 125
NETWORK_ADDRESS = 192.168.{CN}.128
"""
FAKE_NET = "".join(
    ['NAME = "One-TD-Invisible"\nTYPE = FIXED\nBRIDGE = xenbr0\n']
    + [f"LEASES = [IP=192.168.{CN + 100}.{n}]\n" for n in (5, 10, 15, 20, 25)]
)
TWO_NICS = (
    'NAME = two-nics\nMEMORY = 64\nNIC = [NETWORK="One-TD"]\nNIC = [NETWORK="One-TD-Invisible"]\n'
)


def small_net(name: str, size: int, extra: str = "") -> str:
    head = f"NAME={name}\nTYPE=RANGED\nBRIDGE=br0\n"
    return f"{head}NETWORK_ADDRESS=10.9.0.0\nNETWORK_SIZE={size}\n{extra}"


def nics(admin, vid: int) -> list[dict]:
    found = admin.vm.info(vid).TEMPLATE["NIC"]
    return found if isinstance(found, list) else [found]


def ok(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_seed_networks_and_a_vm_with_two_nics_through_the_cli(oned, tmp_path):
    """onevnet -v create real.net / fake.net; onevm create; onevnet list and show."""
    for name, text in (("real.net", REAL_NET), ("fake.net", FAKE_NET), ("vm.one", TWO_NICS)):
        (tmp_path / name).write_text(text)
    assert ok(oned.run_cli("onevnet", "-v", "create", str(tmp_path / "real.net"))) == ["ID: 0"]
    assert ok(oned.run_cli("onevnet", "-v", "create", str(tmp_path / "fake.net"))) == ["ID: 1"]
    ok(oned.run_cli("onevm", "create", str(tmp_path / "vm.one")))
    listing = ok(oned.run_cli("onevnet", "list"))
    assert [line.split() for line in listing] == [
        ["ID", "USER", "NAME", "TYPE", "BRIDGE", "P", "#LEASES"],
        ["0", "oneadmin", "One-TD", "Ranged", "xenbr0", "Y", "1"],
        ["1", "oneadmin", "One-TD-Invisibl", "Fixed", "xenbr0", "Y", "1"],
    ]
    show = ok(oned.run_cli("onevnet", "show", "One-TD"))
    assert "LEASE=[ IP=192.168.1.129, MAC=02:00:c0:a8:01:81, USED=1, VID=0 ]" in show
    vm = "\n".join(ok(oned.run_cli("onevm", "show", "0")))
    assert "IP=192.168.101.5" in vm and "MAC=02:00:c0:a8:65:05" in vm and "BRIDGE=xenbr0" in vm
    assert ok(oned.run_cli("onevnet", "-v", "unpublish", "1")) == ["Virtual Network unpublished"]
    assert ok(oned.run_cli("onevnet", "list", "--list", "id,public"))[2].split() == ["1", "N"]


def test_nics_get_the_first_free_lease_or_exactly_the_ip_asked_for(admin):
    """The seed's VM with two NICs, then NIC = [NETWORK = "One-TD", IP = 192.168.1.140]."""
    admin.vn.allocate(REAL_NET)
    admin.vn.allocate(FAKE_NET, -1)
    first = nics(admin, admin.vm.allocate(TWO_NICS))
    assert [(n["NETWORK"], n["NETWORK_ID"], n["IP"], n["BRIDGE"]) for n in first] == [
        ("One-TD", "0", "192.168.1.129", "xenbr0"),
        ("One-TD-Invisible", "1", "192.168.101.5", "xenbr0"),
    ]
    asked = admin.vm.allocate(f'MEMORY = 64\nNIC = [ NETWORK = "One-TD", IP = 192.168.{CN}.140 ]')
    assert nics(admin, asked)[0]["MAC"] == "02:00:c0:a8:01:8c"
    with pytest.raises(pyone.OneException, match=r"192\.168\.1\.140 .* is used by VM 1"):
        admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD", IP = 192.168.1.140 ]')
    with pytest.raises(pyone.OneException, match=r"not in .*192.168.1.129 - 192.168.1.253"):
        admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD", IP = 192.168.1.254 ]')
    with pytest.raises(pyone.OneNoExistsException, match='no virtual network "nowhere"'):
        admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "nowhere" ]')
    assert [vm.ID for vm in admin.vmpool.info(-2, -1, -1, -1).VM] == [0, 1]
    leases = admin.vn.info(0).AR_POOL.AR[0].LEASES.LEASE
    assert [(lease.IP, lease.VM) for lease in leases] == [
        ("192.168.1.129", 0),
        ("192.168.1.140", 1),
    ]


def test_fifty_vms_allocated_in_parallel_never_share_a_lease(admin, oned):
    """50 pyone clients in threads on a network of 50: 50 different IPs, then a clean refusal."""
    admin.vn.allocate(small_net("fifty", 50))

    def allocate(n: int) -> int:
        client = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        return client.vm.allocate(f'NAME = "vm-{n}"\nMEMORY = 64\nNIC = [ NETWORK = "fifty" ]')

    with ThreadPoolExecutor(max_workers=50) as pool:
        vids = list(pool.map(allocate, range(50)))
    ips = {nics(admin, vid)[0]["IP"] for vid in vids}
    assert len(set(vids)) == 50 and len(ips) == 50
    with pytest.raises(pyone.OneException, match=r'"fifty" has no free lease \(50 of 50 in use\)'):
        admin.vm.allocate('NAME = "one-too-many"\nMEMORY = 64\nNIC = [ NETWORK = "fifty" ]')
    assert len(admin.vmpool.info(-2, -1, -1, -1).VM) == 50
    assert admin.vn.info(0).USED_LEASES == 50
    assert admin.vm.allocate("MEMORY = 64") == 50  # no id was burnt by the refusal


@pytest.fixture
def users_bridge(tmp_path):
    """An oned whose VNET_RESTRICTED_ATTR leaves BRIDGE to users (by default it is oneadmin's,
    so only oneadmin could create a network at all)."""
    process = OnedProcess(tmp_path / "one").set(VNET_RESTRICTED_ATTR='"VN_MAD"').start()
    yield process
    process.stop()


def test_a_user_network_is_private_until_published(users_bridge):
    """helen's network: hidden from and unusable by dan until she publishes it; oneadmin's is
    public; someone else's private network cannot hold helen's NIC."""
    oned = users_bridge
    admin = as_user(oned, "oneadmin:onecloud")
    for name in ("helen", "dan"):
        admin.user.allocate(name, "pw", "core", [])
    helen, dan = as_user(oned, "helen:pw"), as_user(oned, "dan:pw")
    admin.vn.allocate(small_net("admins", 4))
    admin.vn.allocate(small_net("admins-private", 4, "PUBLIC = NO").replace("10.9.", "10.8."))
    mine = helen.vn.allocate(small_net("hers", 4).replace("10.9.", "10.7."))
    assert helen.vn.info(mine).PERMISSIONS.OTHER_U == 0
    assert [n.NAME for n in dan.vnpool.info(-2, -1, -1).VNET] == ["admins"]
    with pytest.raises(pyone.OneAuthorizationException):
        dan.vn.info(mine)
    with pytest.raises(pyone.OneAuthorizationException, match=r'not authorized to use .*"hers"'):
        dan.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "hers" ]')
    with pytest.raises(pyone.OneAuthorizationException):
        helen.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "admins-private" ]')
    with pytest.raises(pyone.OneAuthorizationException):
        dan.vn.publish(mine, True)
    helen.vn.publish(mine, True)
    dan.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "hers" ]')
    assert [n.NAME for n in dan.vnpool.info(-2, -1, -1).VNET] == ["admins", "hers"]
    assert [n.NAME for n in admin.vnpool.info(-2, -1, -1).VNET] == [
        "admins",
        "admins-private",
        "hers",
    ]
    assert [n.NAME for n in helen.vnpool.info(-3, -1, -1).VNET] == ["hers"]


@pytest.mark.parametrize(
    ("template", "attribute"),
    [
        ("NAME=r\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_SIZE=C", "NETWORK_ADDRESS"),
        ("NAME=f\nTYPE=FIXED\nBRIDGE=br0", "LEASES"),
        ("NAME=f\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.256]", 'LEASES IP = "10.0.0.256"'),
        ("NAME=f\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=1.2.3.4]\nLEASES=[IP=1.2.3.4]", "twice"),
    ],
)
def test_a_bad_network_template_is_refused_naming_the_attribute(admin, template, attribute):
    """0x1000 with the attribute in the message; nothing stored, no id used."""
    with pytest.raises(pyone.OneApiException, match=attribute):
        admin.vn.allocate(template)
    assert admin.vnpool.info(-2, -1, -1).VNET == []
    assert admin.vn.allocate(small_net("good", 2)) == 0


def test_deleting_a_network_in_use_is_refused_naming_the_vms(admin):
    """Refused while VMs hold leases; a network nobody uses goes, with its name."""
    admin.vn.allocate(REAL_NET)
    admin.vn.allocate(FAKE_NET)
    for _ in range(2):
        admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD" ]')
    with pytest.raises(pyone.OneActionException, match=r'"One-TD" \[0\].* VMs 0, 1'):
        admin.vn.delete(0)
    assert admin.vn.delete(1) == 1
    with pytest.raises(pyone.OneNoExistsException):
        admin.vn.info(1)
    assert admin.vn.allocate(FAKE_NET) == 2


def test_networks_and_leases_survive_kill_9(admin, oned):
    """After SIGKILL and a restart the leases are held: the next NIC gets the next address."""
    admin.vn.allocate(FAKE_NET)
    admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD-Invisible" ]')
    admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD-Invisible", IP = 192.168.101.15 ]')
    oned.stop(signal.SIGKILL)
    oned.start()
    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    vid = admin.vm.allocate('MEMORY = 64\nNIC = [ NETWORK = "One-TD-Invisible" ]')
    assert nics(admin, vid)[0]["IP"] == "192.168.101.10"
    assert admin.vn.info(0).USED_LEASES == 3


def test_pyone_reads_the_network_documents(admin):
    """VNET and VNET_POOL through pyone's bindings: integers, template, address range."""
    nid = admin.vn.allocate(REAL_NET)
    net = admin.vn.info(nid)
    assert (net.ID, net.UID, net.UNAME, net.NAME, net.USED_LEASES) == (
        0,
        0,
        "oneadmin",
        "One-TD",
        0,
    )
    assert net.TEMPLATE["NETWORK_SIZE"] == "125"
    assert (net.AR_POOL.AR[0].SIZE, net.AR_POOL.AR[0].IP) == (125, "192.168.1.129")
    assert admin.vnpool.info(-2).VNET[0].NAME == "One-TD"
    assert admin.vn.publish(nid, False) == nid and admin.vn.info(nid).PERMISSIONS.OTHER_U == 0


# --- the ebtables hook -------------------------------------------------------------------------

HOOK = ROOT / "share" / "hooks" / "ebtables-isolation"
_REAL_PARTS = ("ip", "ebtables", "virsh")


@pytest.fixture
def netns():
    """A network namespace with the tap of libvirt's test domain (testnet0), removed after."""
    missing = [tool for tool in _REAL_PARTS if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root and {', '.join(_REAL_PARTS)} (missing: {missing or 'root'})")
    name = f"onecloud-ebt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run_in(name, "ip", "link", "add", "testnet0", "type", "veth", "peer", "name", "peer0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_in(namespace: str, *argv: str) -> str:
    env = {**os.environ, "LIBVIRT_URI": "test:///default"}
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, *argv], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def forward_rules(namespace: str) -> list[str]:
    listing = run_in(namespace, "ebtables", "-L", "FORWARD").splitlines()
    return [" ".join(sorted(line.split())) for line in listing if "-j" in line]


def test_the_ebtables_hook_isolates_the_nics_of_a_domain_and_flushes_them(netns):
    """Real ebtables, real virsh (libvirt's test driver domain "test", MAC aa:bb:cc:dd:ee:ff):
    two rules for its tap; flush drops them once the tap is gone."""
    run_in(netns, str(HOOK), "start", "test")
    expected = [
        "! -j -o -s DROP aa:bb:cc:dd:ee:00/ff:ff:ff:ff:ff:00 testnet0",
        "! -i -j -s DROP aa:bb:cc:dd:ee:ff testnet0",
    ]
    assert sorted(forward_rules(netns)) == sorted(expected)
    run_in(netns, str(HOOK), "flush")
    assert len(forward_rules(netns)) == 2  # the tap is still there
    run_in(netns, "ip", "link", "del", "testnet0")
    run_in(netns, str(HOOK), "flush")
    assert forward_rules(netns) == []


def test_the_ebtables_hook_explains_its_usage(tmp_path: Path):
    """A wrong call prints the usage and exits 2, changing nothing."""
    done = subprocess.run([str(HOOK), "stop"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("usage: ebtables-isolation")
