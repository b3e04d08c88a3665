"""Virtual networks without a daemon: templates, the MAC scheme, the lease book, NIC leases,
the VNET documents as pyone reads them and the onevnet rendering (reference §8, §5, §12)."""

from __future__ import annotations

import pyone.bindings as bindings
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli import onevnet
from oned import vnet as vn
from oned import vnet_views
from oned.records import Lease
from oned.template import parse

PREFIX = 0x0201  # MAC_PREFIX = "02:01", as in the seed's slide
REAL_NET = """NAME = "One-TD"
TYPE = RANGED
BRIDGE = xenbr0
NETWORK_SIZE      = 125
NETWORK_ADDRESS = 192.168.1.128
"""
FAKE_NET = """NAME = "One-TD-Invisible"
TYPE = FIXED
BRIDGE = xenbr0
LEASES = [IP=192.168.101.5]
LEASES = [IP=192.168.101.10]
LEASES = [IP=192.168.101.15]
LEASES = [IP=192.168.101.20]
LEASES = [IP=192.168.101.25]
"""


def build(text: str, uid: int = 0, oid: int = 0, default_size: int = 254):
    return vn.build(parse(text), oid=oid, uid=uid, mac_prefix=PREFIX, default_size=default_size)


def ip(text: str) -> int:
    return vn.parse_ip(text)


def book_of(net) -> vn.LeaseBook:
    return vn.LeaseBook(
        vn.addresses(net), (lease.ip for lease in net.leases.values() if lease.used)
    )


# --- addresses and templates ----------------------------------------------------------------


def test_the_mac_of_a_lease_is_the_prefix_then_the_four_bytes_of_the_ip():
    """The seed's slide: 10.0.1.2 with MAC_PREFIX 02:01 is 02:01:0A:00:01:02 (printed lower)."""
    mac = vn.lease_mac(vn.parse_mac_prefix("02:01"), ip("10.0.1.2"))
    assert vn.mac_text(mac) == "02:01:0a:00:01:02"
    assert vn.parse_mac("02:01:0A:00:01:02") == mac


def test_the_seed_real_net_is_a_ranged_network_of_125_addresses_after_its_base():
    """NETWORK_ADDRESS .128 with 125 hosts: a /25, leases .129 to .253."""
    net = build(REAL_NET)
    span = vn.addresses(net)
    assert (net.name, net.type, net.bridge, net.public) == ("One-TD", vn.RANGED, "xenbr0", True)
    assert (vn.ip_text(span[0]), vn.ip_text(span[-1]), len(span)) == (
        "192.168.1.129",
        "192.168.1.253",
        125,
    )
    assert net.leases == {}


@pytest.mark.parametrize(
    ("size", "first", "count"),
    [
        ("C", "10.1.2.1", 254),
        ("b", "10.1.0.1", 65534),
        ("c", "10.1.2.1", 254),
        ("1", "10.1.2.5", 1),
    ],
)
def test_network_size_is_a_class_letter_or_a_number_of_hosts(size, first, count):
    """C is 254 hosts and B 65534 (either case); the base is the address under the mask."""
    net = build(f"NAME=n\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_ADDRESS=10.1.2.5\nNETWORK_SIZE={size}")
    span = vn.addresses(net)
    assert (vn.ip_text(span[0]), len(span)) == (first, count)


def test_a_ranged_network_without_size_gets_oned_default_written_in():
    """As OpenNebula 2.0: NETWORK_SIZE missing or 0 becomes oned.conf's NETWORK_SIZE."""
    net = build("NAME=n\nTYPE=ranged\nBRIDGE=br0\nNETWORK_ADDRESS=10.0.0.0", default_size=30)
    assert net.template.get("NETWORK_SIZE") == "30" and len(vn.addresses(net)) == 30


def test_the_seed_fake_net_is_a_fixed_network_with_a_free_lease_per_ip():
    """Every lease is stored free (vid -1) with the MAC derived from its IP."""
    net = build(FAKE_NET)
    assert net.type == vn.FIXED
    assert [vn.ip_text(a) for a in vn.addresses(net)] == [
        f"192.168.101.{n}" for n in (5, 10, 15, 20, 25)
    ]
    lease = net.leases[ip("192.168.101.10")]
    assert (lease.vid, lease.used, vn.mac_text(lease.mac)) == (-1, False, "02:01:c0:a8:65:0a")


def test_a_fixed_network_template_gets_each_mac_written_in_and_defines_its_leases():
    """The template alone rebuilds the leases, whatever MAC_PREFIX is at the next start."""
    net = build(FAKE_NET)
    assert net.template.get_all("LEASES")[1] == {"IP": "192.168.101.10", "MAC": "02:01:c0:a8:65:0a"}
    assert vn.fixed_leases(net) == net.leases


def test_a_fixed_lease_keeps_the_mac_its_template_gives():
    """LEASES = [IP, MAC]: the MAC is the given one, whatever the prefix."""
    net = build("NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.1, MAC=AA:00:00:00:00:01]")
    assert vn.mac_text(net.leases[ip("10.0.0.1")].mac) == "aa:00:00:00:00:01"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("NAME=n\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_SIZE=C", "NETWORK_ADDRESS is missing"),
        ("NAME=n\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_ADDRESS=10.0.0", 'NETWORK_ADDRESS = "10.0.0"'),
        (
            "NAME=n\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_ADDRESS=10.0.0.0\nNETWORK_SIZE=D",
            "NETWORK_SIZE",
        ),
        ("NAME=n\nTYPE=FIXED\nBRIDGE=br0", "LEASES is missing"),
        ("NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.300]", 'LEASES IP = "10.0.0.300"'),
        ("NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=fe80::1]", 'LEASES IP = "fe80::1"'),
        ("NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[MAC=02:00:00:00:00:01]", "LEASES must be"),
        ("NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.1, MAC=zz]", 'LEASES MAC = "zz"'),
        (
            "NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.1]\nLEASES=[IP=10.0.0.1]",
            'LEASES IP = "10.0.0.1" is listed twice',
        ),
        (
            "NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.1, MAC=02:00:00:00:00:01]\n"
            "LEASES=[IP=10.0.0.2, MAC=02:00:00:00:00:01]",
            'LEASES MAC = "02:00:00:00:00:01" is listed twice',
        ),
        ("NAME=n\nTYPE=VLAN\nBRIDGE=br0", 'TYPE = "VLAN": must be RANGED or FIXED'),
        ("NAME=n\nBRIDGE=br0", "TYPE"),
        ("NAME=n\nTYPE=FIXED\nLEASES=[IP=10.0.0.1]", "BRIDGE is missing"),
        ("TYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.1]", "NAME is missing"),
        ("NAME=n\nTYPE=FIXED\nBRIDGE=br0\nLEASES=[IP=10.0.0.1]\nPUBLIC=maybe", "PUBLIC"),
    ],
)
def test_a_bad_template_is_refused_naming_the_attribute(text, named):
    """Every problem is reported with the attribute that causes it."""
    with pytest.raises(vn.VnetError) as error:
        build(text)
    assert named in str(error.value)


def test_a_template_with_several_problems_reports_them_all():
    """A FIXED network without BRIDGE and without LEASES: two problems, one message."""
    with pytest.raises(vn.VnetError) as error:
        build("NAME=n\nTYPE=FIXED")
    assert len(error.value.problems) == 2


@pytest.mark.parametrize(
    ("uid", "public", "expected"),
    [(0, "", True), (3, "", False), (3, "PUBLIC=YES\n", True), (0, "PUBLIC=no\n", False)],
)
def test_oneadmin_networks_are_public_and_users_private_unless_said(uid, public, expected):
    """The seed: oneadmin's networks are public; PUBLIC leaves the template."""
    net = build(REAL_NET + public, uid=uid)
    assert net.public is expected and "PUBLIC" not in net.template


def test_a_private_network_is_usable_only_by_its_owner_and_oneadmin():
    """2.0's NET USE: owner, oneadmin, or anyone once it is public."""
    net = build(REAL_NET, uid=3)
    assert [vn.may_use(net, uid) for uid in (0, 3, 4)] == [True, True, False]
    net.public = True
    assert vn.may_use(net, 4)


# --- the lease book ---------------------------------------------------------------------------


def test_the_book_hands_out_addresses_round_robin_from_its_cursor():
    """Taking moves the cursor; a given-back address comes round again only after the others."""
    book = vn.LeaseBook(range(10, 14))
    first = book.pick()
    book.take(first)
    second = book.pick()
    book.take(second)
    book.give_back(first)
    assert (first, second, book.pick(), book.used) == (10, 11, 12, 1)


def test_a_full_book_picks_nothing_and_skips_what_other_nics_chose():
    """None when every address is used or chosen by another NIC of the same VM."""
    book = vn.LeaseBook(range(1, 4), used=[1, 3])
    assert book.pick() == 2 and book.pick(skip={2}) is None
    book.take(2)
    assert book.pick() is None and book.used == 3


def test_taking_an_address_twice_or_outside_the_network_is_refused():
    """The book guards its invariant: an address is used once at most."""
    book = vn.LeaseBook([ip("10.0.0.5"), ip("10.0.0.9")])
    book.take(ip("10.0.0.9"))
    for address in (ip("10.0.0.9"), ip("10.0.0.6")):
        with pytest.raises(ValueError):
            book.take(address)
    assert book.slot(ip("10.0.0.6")) is None and book.is_free(ip("10.0.0.5"))


def test_the_last_free_address_of_65000_is_found():
    """All but one address in use: the free one is still found wherever the cursor is."""
    book = vn.LeaseBook(range(1, 65001), used=(a for a in range(1, 65001) if a != 17))
    assert book.pick() == 17 and book.used == 64999


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 15)), max_size=60))
def test_the_book_agrees_with_a_plain_set_of_used_addresses(steps):
    """Any sequence of takes and give-backs: pick returns a free address, or None when full."""
    book, used = vn.LeaseBook(range(100, 116)), set()
    for taking, offset in steps:
        address = 100 + offset
        if taking and address not in used:
            book.take(address)
            used.add(address)
        elif not taking:
            book.give_back(address)
            used.discard(address)
        picked = book.pick()
        assert (picked is None) == (len(used) == 16) and picked not in used
        assert book.used == len(used)


# --- NIC leases ----------------------------------------------------------------------------------


def test_a_nic_asking_only_for_the_network_gets_the_first_free_lease():
    """With the MAC of the scheme; the lease is for no VM until the caller sets one."""
    net = build(REAL_NET)
    lease = vn.choose_lease(net, book_of(net), {"NETWORK": "One-TD"}, PREFIX)
    assert (vn.ip_text(lease.ip), vn.mac_text(lease.mac), lease.vid) == (
        "192.168.1.129",
        "02:01:c0:a8:01:81",
        -1,
    )


def test_a_nic_asking_for_an_ip_gets_exactly_that_ip():
    """The seed's NIC = [ NETWORK = "One-TD", IP = 192.168.1.140 ]."""
    net = build(REAL_NET)
    lease = vn.choose_lease(net, book_of(net), {"IP": "192.168.1.140"}, PREFIX)
    assert vn.ip_text(lease.ip) == "192.168.1.140"


def test_an_ip_in_use_is_refused_naming_the_vm_that_holds_it():
    """Clear error rather than another address."""
    net = build(REAL_NET)
    net.leases[ip("192.168.1.140")] = Lease(0, ip("192.168.1.140"), 0, vid=7)
    with pytest.raises(vn.LeaseRefused, match=r"192\.168\.1\.140 .* is used by VM 7"):
        vn.choose_lease(net, book_of(net), {"IP": "192.168.1.140"}, PREFIX)


@pytest.mark.parametrize(
    ("text", "nic", "message"),
    [
        (REAL_NET, {"IP": "192.168.1.254"}, r"not in .* \(192.168.1.129 - 192.168.1.253\)"),
        (FAKE_NET, {"IP": "192.168.101.6"}, r"not in .* \(not one of its LEASES\)"),
        (REAL_NET, {"MAC": "02:05:c0:a8:01:81"}, "MAC 02:05:c0:a8:01:81 is not in"),
        (REAL_NET, {"IP": "192.168.1.140", "MAC": "02:01:00:00:00:01"}, "does not go with"),
    ],
)
def test_an_address_outside_the_network_is_refused(text, nic, message):
    """Out of range, not a FIXED lease, a MAC of another prefix, a MAC of another IP."""
    net = build(text)
    with pytest.raises(vn.LeaseRefused, match=message):
        vn.choose_lease(net, book_of(net), nic, PREFIX)


def test_a_nic_asking_for_a_mac_gets_the_lease_of_that_mac():
    """A FIXED lease found by its MAC; a RANGED one by the IP inside the MAC."""
    fixed = build(FAKE_NET)
    lease = vn.choose_lease(fixed, book_of(fixed), {"MAC": "02:01:C0:A8:65:14"}, PREFIX)
    assert vn.ip_text(lease.ip) == "192.168.101.20"
    ranged = build(REAL_NET)
    lease = vn.choose_lease(ranged, book_of(ranged), {"MAC": "02:01:c0:a8:01:90"}, PREFIX)
    assert vn.ip_text(lease.ip) == "192.168.1.144"


@pytest.mark.parametrize(("nic", "attr"), [({"IP": "192.168.1"}, "IP"), ({"MAC": "x"}, "MAC")])
def test_a_nic_address_that_is_not_one_names_the_attribute(nic, attr):
    """ValueError, which the API answers as a bad call."""
    net = build(REAL_NET)
    with pytest.raises(ValueError, match=f"^{attr} = "):
        vn.choose_lease(net, book_of(net), nic, PREFIX)


def test_a_full_network_refuses_the_next_nic():
    """Every FIXED lease in use: no lease, with the count in the message."""
    net = build(FAKE_NET)
    book = vn.LeaseBook(vn.addresses(net), list(net.leases))
    with pytest.raises(vn.LeaseRefused, match=r"no free lease \(5 of 5 in use\)"):
        vn.choose_lease(net, book, {}, PREFIX)


def test_the_nic_is_filled_with_the_network_and_its_lease_keeping_other_keys():
    """NETWORK, NETWORK_ID, IP, MAC, BRIDGE first; MODEL kept; 1.4's VNID dropped."""
    net = build(REAL_NET, oid=4)
    lease = Lease(4, ip("192.168.1.129"), vn.lease_mac(PREFIX, ip("192.168.1.129")), 0)
    nic = vn.nic_attributes({"NETWORK": "One-TD", "MODEL": "virtio", "VNID": "9"}, net, lease)
    assert nic == {
        "NETWORK": "One-TD",
        "NETWORK_ID": "4",
        "IP": "192.168.1.129",
        "MAC": "02:01:c0:a8:01:81",
        "BRIDGE": "xenbr0",
        "MODEL": "virtio",
    }


# --- documents and the CLI -----------------------------------------------------------------------


def _with_leases(text: str, *held: tuple[str, int]):
    net = build(text)
    for address, vid in held:
        net.leases[ip(address)] = Lease(net.id, ip(address), vn.lease_mac(PREFIX, ip(address)), vid)
    return net


def test_a_vnet_document_parses_with_pyone_with_integers_and_the_1_4_leases():
    """Integer fields as integers; AR_POOL with the range; 1.4's LEASES kept in the node."""
    net = _with_leases(REAL_NET, ("192.168.1.140", 3))
    xml = vnet_views.vnet_xml(net, "oneadmin", PREFIX)
    parsed = bindings.parseString(xml.encode(), silence=True)
    assert (parsed.ID, parsed.UID, parsed.GID, parsed.USED_LEASES) == (0, 0, 0, 1)
    ar = parsed.AR_POOL.AR[0]
    assert (ar.IP, ar.SIZE, ar.MAC, ar.IP_END) == (
        "192.168.1.129",
        125,
        "02:01:c0:a8:01:81",
        "192.168.1.253",
    )
    assert [(lease.IP, lease.VM) for lease in ar.LEASES.LEASE] == [("192.168.1.140", 3)]
    assert parsed.TEMPLATE["NETWORK_ADDRESS"] == "192.168.1.128"
    assert "<TYPE>0</TYPE><BRIDGE>xenbr0</BRIDGE><PUBLIC>1</PUBLIC>" in xml
    assert "<LEASES><LEASE><IP>192.168.1.140</IP><MAC>02:01:c0:a8:01:8c</MAC>" in xml
    assert "<USED>1</USED><VID>3</VID></LEASE></LEASES>" in xml


def test_a_fixed_network_lists_every_lease_and_one_address_range_per_lease():
    """1.4 lists free FIXED leases with VID -1; each lease is an AR of size 1."""
    net = _with_leases(FAKE_NET, ("192.168.101.15", 2))
    xml = vnet_views.vnet_xml(net, "oneadmin", PREFIX)
    parsed = bindings.parseString(xml.encode(), silence=True)
    assert [ar.SIZE for ar in parsed.AR_POOL.AR] == [1] * 5
    assert xml.count("<VID>-1</VID>") == 4 and "<TOTAL_LEASES>1</TOTAL_LEASES>" in xml


def test_the_pool_document_leaves_the_leases_out():
    """VNET_POOL elements carry the counts, not the leases (1.4's pool and pyone's type)."""
    net = _with_leases(REAL_NET, ("192.168.1.140", 3))
    xml = f"<VNET_POOL>{vnet_views.vnet_short_xml(net, 'oneadmin', PREFIX)}</VNET_POOL>"
    parsed = bindings.parseString(xml.encode(), silence=True)
    assert parsed.VNET[0].NAME == "One-TD" and "<LEASE>" not in xml


def test_onevnet_list_prints_the_2_0_columns():
    """ID USER NAME TYPE BRIDGE PUBLIC(one character) #LEASES."""
    pool = "".join(
        vnet_views.vnet_short_xml(net, "oneadmin", PREFIX)
        for net in (_with_leases(REAL_NET, ("192.168.1.140", 3)), build(FAKE_NET, uid=2, oid=1))
    )
    lines = onevnet.list_lines(f"<VNET_POOL>{pool}</VNET_POOL>")
    assert lines == [
        "  ID USER     NAME              TYPE BRIDGE P #LEASES",
        "   0 oneadmin One-TD          Ranged xenbr0 Y       1",
        "   1 oneadmin One-TD-Invisibl  Fixed xenbr0 N       0",
    ]


def test_onevnet_show_lists_each_lease_with_the_vm_holding_it():
    """ID, UID, PUBLIC, the template flat, then LEASES INFORMATION."""
    lines = onevnet.show_lines(
        vnet_views.vnet_xml(_with_leases(REAL_NET, ("192.168.1.140", 3)), "a", 1)
    )
    assert lines[0].rstrip() == "VIRTUAL NETWORK 0 INFORMATION"
    assert [line.rstrip() for line in lines[1:4]] == [
        "ID        : 0",
        "UID       : 0",
        "PUBLIC    : Y",
    ]
    assert "NETWORK_ADDRESS=192.168.1.128" in lines
    assert lines[-2:] == [
        f"{'LEASES INFORMATION':<80}",
        "LEASE=[ IP=192.168.1.140, MAC=02:01:c0:a8:01:8c, USED=1, VID=3 ]",
    ]
