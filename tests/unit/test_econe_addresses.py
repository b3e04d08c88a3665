"""The pure parts of elastic addresses: the public network read from oned's documents (a
stand-in answering literal XML), the reconcile of the book with oned's holds, elastic_ip."""

from __future__ import annotations

import json
import logging

import pytest

from econe.address_book import AddressBook, public_network, reconcile
from econe.addresses import elastic_ip
from econe.errors import Ec2Error

POOL = (
    "<VNET_POOL><VNET><ID>0</ID><NAME>private</NAME></VNET>"
    "<VNET><ID>3</ID><NAME>Public EC2</NAME></VNET></VNET_POOL>"
)
NET = (
    "<VNET><ID>3</ID><NAME>Public EC2</NAME><LEASES>"
    "<LEASE><IP>10.0.0.1</IP><USED>1</USED><VID>-1</VID></LEASE>"
    "<LEASE><IP>10.0.0.2</IP><USED>1</USED><VID>7</VID></LEASE>"
    "<LEASE><IP>10.0.0.4</IP><USED>1</USED><VID>-1</VID></LEASE>"
    "</LEASES><AR_POOL><AR><IP>10.0.0.1</IP><SIZE>4</SIZE></AR></AR_POOL></VNET>"
)


class Oned:
    """Answers one.vnpool.info and one.vn.info with the documents above; records the rest."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def call(self, session: str, method: str, *params: object) -> object:
        self.calls.append((method, *params))
        return {"one.vnpool.info": POOL, "one.vn.info": NET}.get(method, 3)


def test_the_public_network_by_name_or_id_with_its_free_and_held_addresses():
    for wanted in ("Public EC2", 3, "3"):
        net = public_network(Oned(), "s", wanted)
        assert (net.nid, net.free(), sorted(net.held)) == (
            3,
            ["10.0.0.3"],
            ["10.0.0.1", "10.0.0.4"],
        )


@pytest.mark.parametrize("wanted", [None, "nowhere"])
def test_no_public_network_is_refused_in_ec2_words(wanted):
    with pytest.raises(Ec2Error) as info:
        public_network(Oned(), "s", wanted)
    assert info.value.code == ("UnsupportedOperation" if wanted is None else "Unavailable")


def test_reconcile_releases_unowned_holds_and_drops_owned_addresses_not_held(tmp_path, caplog):
    book = AddressBook(str(tmp_path / "book.json"))
    owned = {"uid": 2, "domain": "standard", "allocation_id": None, "vid": None}
    book.save({"addresses": {"10.0.0.1": owned, "10.0.0.3": owned}})
    oned = Oned()
    with caplog.at_level(logging.WARNING, logger="econe"):
        reconcile(book, oned, "s", "Public EC2")
    assert ("one.vn.release", 3, 'LEASES = [ IP = "10.0.0.4" ]') in oned.calls
    assert list(json.loads((tmp_path / "book.json").read_text())["addresses"]) == ["10.0.0.1"]
    assert (tmp_path / "book.json").stat().st_mode & 0o777 == 0o600
    assert "10.0.0.4: held on Public EC2 but owned by nobody" in caplog.text
    assert "10.0.0.3 of user 2: no longer held" in caplog.text
    assert book.reconciled


@pytest.mark.parametrize(
    ("template", "expected"),
    [({"EC2_ELASTIC_IP": "10.0.0.1"}, "10.0.0.1"), ({"EC2_ELASTIC_IP": ""}, None), ({}, None)],
)
def test_elastic_ip_of_a_user_template(template, expected):
    assert elastic_ip(template) == expected
