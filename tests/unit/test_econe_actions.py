"""The actions answered from econe.conf, and EC2's filters with their wildcards."""

from __future__ import annotations

import pytest

from econe import actions, filters
from econe.config import Settings
from econe.errors import Ec2Error
from econe.query import QueryRequest

SETTINGS = Settings(region="lab", zones=("lab-a", "lab-b"), public_url="https://c.example/")
CTX = actions.Context("alice", SETTINGS, "rid")


def run(action: str, **params) -> dict:
    return actions.ACTIONS[action](CTX, QueryRequest(action, "2016-11-15", params))


def test_describe_regions_names_this_region_and_its_endpoint():
    assert run("DescribeRegions")["regionInfo"] == [
        {
            "regionName": "lab",
            "regionEndpoint": "https://c.example/",
            "optInStatus": "opt-in-not-required",
        }
    ]


def test_describe_availability_zones_by_name_and_by_filter():
    assert [z["zoneName"] for z in run("DescribeAvailabilityZones")["availabilityZoneInfo"]] == [
        "lab-a",
        "lab-b",
    ]
    named = run("DescribeAvailabilityZones", ZoneName=["lab-b"])["availabilityZoneInfo"]
    assert [z["zoneName"] for z in named] == ["lab-b"]
    spec = [{"Name": "zone-name", "Value": ["*-a"]}, {"Name": "state", "Value": ["available"]}]
    picked = run("DescribeAvailabilityZones", Filter=spec)["availabilityZoneInfo"]
    assert [z["zoneName"] for z in picked] == ["lab-a"]


def test_an_unknown_region_or_zone_name_is_invalid_parameter_value():
    for action, name in (
        ("DescribeRegions", "RegionName"),
        ("DescribeAvailabilityZones", "ZoneName"),
    ):
        with pytest.raises(Ec2Error) as info:
            run(action, **{name: ["mars"]})
        assert info.value.code == "InvalidParameterValue"


ITEMS = [
    {"id": "i-1", "state": "running", "tags": {"Name": "web*1"}},
    {"id": "i-2", "state": "stopped", "tags": {"Name": "db"}},
    {"id": "i-3", "state": "running", "ips": ["10.0.0.3", "1.2.3.4"]},
]
READERS = {
    "instance-id": lambda i: i["id"],
    "instance-state-name": lambda i: i["state"],
    "ip-address": lambda i: i.get("ips"),
}


@pytest.mark.parametrize(
    "spec, ids",
    [
        (None, ["i-1", "i-2", "i-3"]),
        ([{"Name": "instance-state-name", "Value": ["running"]}], ["i-1", "i-3"]),
        ([{"Name": "instance-state-name", "Value": ["stopped", "running"]}], ["i-1", "i-2", "i-3"]),
        (
            [
                {"Name": "instance-state-name", "Value": ["running"]},
                {"Name": "instance-id", "Value": ["i-?"]},
                {"Name": "tag:Name", "Value": ["web\\*?"]},
            ],
            ["i-1"],
        ),
        ([{"Name": "ip-address", "Value": ["1.2.*"]}], ["i-3"]),
        ([{"Name": "tag:Name", "Value": ["*"]}], ["i-1", "i-2"]),
        ([{"Name": "instance-id", "Value": ["i-1.*"]}], []),
    ],
)
def test_filters_keep_items_matching_every_filter(spec, ids):
    assert [i["id"] for i in filters.select(ITEMS, spec, READERS)] == ids


@pytest.mark.parametrize(
    "spec",
    [
        [{"Name": "colour", "Value": ["x"]}],
        [{"Name": "instance-id"}],
        [{"Value": ["x"]}],
        ["instance-id"],
        [{"Name": "instance-id", "Value": [{"a": "b"}]}],
    ],
)
def test_an_unknown_or_malformed_filter_is_refused(spec):
    with pytest.raises(Ec2Error) as info:
        filters.select(ITEMS, spec, READERS)
    assert info.value.code == "InvalidParameterValue"
