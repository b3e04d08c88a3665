"""The fast path of DescribeInstances: instances written as text (`responses.instance_xml`,
`reservation_item`) give the very bytes the generic renderer writes for the same dicts, and
a VM document read with direct-child lookups gives the rows the path lookups gave (the rows
kept between calls: tests/unit/test_econe_mirror.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from econe import instances
from econe import responses as r
from econe.config import Settings
from econe.context import Context
from econe.one import attribute, text
from econe.tags import tags_of

RID = "a72b366a-0000-4000-8000-000000000001"
EXTRAS = [
    {},
    {"amiLaunchIndex": "3", "keyName": "k", "privateIpAddress": "10.0.0.5", "ipAddress": "1.2.3.4"},
    {"privateDnsName": "10.0.0.5", "dnsName": "a&b<c>", "clientToken": "tok-1"},
    {"tags": {"Name": "web & db", "z": "", "a\x01": "é<>"}, "keyName": "ké\ty"},
    {"tags": {}, "clientToken": None, "keyName": None},
]


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("launch", [1796189170, 0.5, datetime(2026, 11, 21, tzinfo=UTC)])
def test_an_instance_written_as_text_is_what_the_generic_renderer_writes(extra, launch):
    args = ("i-0000002a", "ami-00000001", "running", "m1.small", launch, "one")
    generic = r.render("RunInstances", r.reservation("r-1", "7", [r.instance(*args, **extra)]), RID)
    raw = r.Raw(r.instance_xml(*args, **extra))
    assert r.render("RunInstances", r.reservation("r-1", "7", raw), RID) == generic
    listed = r.reservation_item("r-1", "7", raw)
    body = {"reservationSet": [r.reservation("r-1", "7", [r.instance(*args, **extra)])]}
    assert r.render("DescribeInstances", {"reservationSet": r.Raw(listed)}, RID) == r.render(
        "DescribeInstances", body, RID
    )


VM = """<VM><ID>42</ID><UID>7</UID><STATE>{state}</STATE><LCM_STATE>3</LCM_STATE>
<STIME>100</STIME><ETIME>0</ETIME><TEMPLATE>{template}</TEMPLATE>{user}</VM>"""
TEMPLATES = [
    "",
    "<DISK><SIZE>1</SIZE></DISK><DISK><IMAGE_ID>9</IMAGE_ID></DISK><NIC/><NIC><IP>10.0.0.9</IP>"
    "</NIC><EC2_TAGS>a=1&amp;b=%20x</EC2_TAGS>",
    "<ECONE><INSTANCE_TYPE>m1.large</INSTANCE_TYPE><IMAGE_ID>ami-00000002</IMAGE_ID>"
    "<KEY_NAME>k</KEY_NAME><CLIENT_TOKEN>t</CLIENT_TOKEN><RESERVATION>r-0000002a</RESERVATION>"
    "<LAUNCH_INDEX>1</LAUNCH_INDEX></ECONE><EC2_TAGS>launch=1</EC2_TAGS><NIC><IP/></NIC>",
]
USERS = ["", "<USER_TEMPLATE/>", "<USER_TEMPLATE><EC2_TAGS/></USER_TEMPLATE>",
         "<USER_TEMPLATE><EC2_TAGS>x=y&amp;z</EC2_TAGS></USER_TEMPLATE>"]  # fmt: skip


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("state", [3, 6])
def test_a_row_read_with_child_lookups_is_what_path_lookups_read(template, user, state):
    vm = ET.fromstring(VM.format(state=state, template=template, user=user))
    row = instances._row(vm)
    econe = vm.find("TEMPLATE/ECONE")
    disk = text(vm, "TEMPLATE/DISK/IMAGE_ID")
    image = text(vm, "TEMPLATE/ECONE/IMAGE_ID", "") if econe is not None else ""
    image = image or (f"ami-{int(disk):08x}" if disk.isdigit() else "")
    assert row["image"] == image
    assert row["ip"] == row["public_ip"] == text(vm, "TEMPLATE/NIC/IP")
    assert row["tags"] == tags_of(vm)
    assert (row["uid"], row["stime"], row["done"]) == ("7", 100, state == 6)
    assert attribute(vm, "EC2_TAGS") is None or row["tags"] is not None


class NoLeasesClient:
    """oned's client when allocate fails as with no lease left on the public network."""

    def call(self, method, *params):
        from oned.client import OneCallError

        if method == "one.image.info":
            return "<IMAGE><ID>1</ID></IMAGE>"
        raise OneCallError('[one.vm.allocate] virtual network "pub" has no free lease', 0x2000)


def test_an_allocation_oned_cannot_make_is_insufficient_capacity_not_unavailable(monkeypatch):
    from pathlib import Path

    from econe.context import Services
    from econe.credentials import Credentials
    from econe.errors import Ec2Error
    from econe.instance_types import InstanceTypes
    from econe.one import Oned
    from econe.query import QueryRequest

    oned = Oned("http://127.0.0.1:9/RPC2")
    monkeypatch.setattr(oned, "_client", lambda session: NoLeasesClient())
    types = InstanceTypes(str(Path(__file__).resolve().parents[2] / "templates" / "ec2query"))
    creds = Credentials("s", 7, "alice", "alice:s")
    ctx = Context("k", Settings(), RID, creds, Services(oned=oned, types=types))
    call = QueryRequest("RunInstances", "", {"ImageId": "ami-00000001", "MinCount": "1",
                                             "MaxCount": "1"})  # fmt: skip
    with pytest.raises(Ec2Error) as refused:
        instances.run_instances(ctx, call)
    assert (refused.value.code, refused.value.status) == ("InsufficientInstanceCapacity", 400)
    assert refused.value.message == 'virtual network "pub" has no free lease'
    with pytest.raises(Ec2Error) as other:  # any other call's 0x2000 stays Unavailable
        oned.call("alice:s", "one.vm.info", 1)
    assert other.value.code == "Unavailable"
