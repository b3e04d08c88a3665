"""Responses checked with botocore's own EC2 parser and the ec2 service model: what boto3
and awscli will read from econe, not only what we expect to have written."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.parsers import create_parser

from econe import responses as r
from econe.errors import Ec2Error

MODEL = botocore.session.get_session().get_service_model("ec2")
RID = "a72b366a-0000-4000-8000-000000000001"
LAUNCH = datetime(2026, 11, 21, 11, 26, 56, tzinfo=UTC)


def parse(action: str, xml: bytes, status: int = 200) -> dict:
    """What boto3 returns for `action` given this body."""
    op = MODEL.operation_model(action)
    answer = {"body": xml, "status_code": status, "headers": {}}
    parsed = create_parser("ec2").parse(answer, op.output_shape)
    assert parsed["ResponseMetadata"]["RequestId"] == RID
    return parsed


def an_instance(**extra):
    return r.instance("i-0000002a", "ami-00000001", "running", "m1.small", LAUNCH, "one", **extra)


def test_describe_instances():
    inst = an_instance(keyName="k", privateIpAddress="10.0.0.5", tags={"Name": "web"})
    body = {"reservationSet": [r.reservation("r-default", "alice", [inst])]}
    parsed = parse("DescribeInstances", r.render("DescribeInstances", body, RID))
    (res,) = parsed["Reservations"]
    assert (res["ReservationId"], res["OwnerId"]) == ("r-default", "alice")
    (got,) = res["Instances"]
    assert got["InstanceId"] == "i-0000002a"
    assert got["State"] == {"Code": 16, "Name": "running"}
    assert got["LaunchTime"] == LAUNCH
    assert got["Placement"]["AvailabilityZone"] == "one"
    assert (got["KeyName"], got["PrivateIpAddress"]) == ("k", "10.0.0.5")
    assert got["Tags"] == [{"Key": "Name", "Value": "web"}]
    assert got["AmiLaunchIndex"] == 0


def test_describe_instances_with_none_is_an_empty_list():
    parsed = parse("DescribeInstances", r.render("DescribeInstances", {"reservationSet": []}, RID))
    assert parsed["Reservations"] == []


def test_run_instances_answers_a_reservation_without_a_wrapper():
    inst = r.instance("i-00000001", "ami-00000001", "pending", "m1.small", 0.0, "one")
    xml = r.render("RunInstances", r.reservation("r-00000001", "alice", [inst]), RID)
    parsed = parse("RunInstances", xml)
    assert parsed["Instances"][0]["State"] == {"Code": 0, "Name": "pending"}
    assert parsed["Instances"][0]["LaunchTime"] == datetime(1970, 1, 1, tzinfo=UTC)


def test_terminate_instances():
    body = {"instancesSet": [r.state_change("i-00000001", "shutting-down", "running")]}
    (change,) = parse("TerminateInstances", r.render("TerminateInstances", body, RID))[
        "TerminatingInstances"
    ]
    assert change == {
        "InstanceId": "i-00000001",
        "CurrentState": {"Code": 32, "Name": "shutting-down"},
        "PreviousState": {"Code": 16, "Name": "running"},
    }


def test_reboot_instances_answers_return_true():
    parsed = parse("RebootInstances", r.render("RebootInstances", {"return": True}, RID))
    assert set(parsed) == {"ResponseMetadata"}


def test_describe_images():
    img = r.image("ami-00000001", "ttylinux", "available", "alice", "ttylinux.img")
    (got,) = parse("DescribeImages", r.render("DescribeImages", {"imagesSet": [img]}, RID))[
        "Images"
    ]
    assert (got["ImageId"], got["Name"], got["State"]) == ("ami-00000001", "ttylinux", "available")
    assert (got["OwnerId"], got["Public"], got["ImageLocation"]) == ("alice", False, "ttylinux.img")
    assert got["ImageType"] == "machine"


def test_register_image():
    xml = r.render("RegisterImage", {"imageId": "ami-00000007"}, RID)
    assert parse("RegisterImage", xml)["ImageId"] == "ami-00000007"


def test_describe_key_pairs():
    body = {"keySet": [r.key_pair("k", "aa:bb", "key-00000001")]}
    (got,) = parse("DescribeKeyPairs", r.render("DescribeKeyPairs", body, RID))["KeyPairs"]
    assert got == {"KeyPairId": "key-00000001", "KeyName": "k", "KeyFingerprint": "aa:bb"}


def test_describe_regions_and_availability_zones():
    regions = {"regionInfo": [r.region("one", "https://cloud.example.org:4567/")]}
    parsed = parse("DescribeRegions", r.render("DescribeRegions", regions, RID))
    assert parsed["Regions"][0]["RegionName"] == "one"
    assert parsed["Regions"][0]["Endpoint"] == "https://cloud.example.org:4567/"
    zones = {"availabilityZoneInfo": [r.zone("one-a", "one")]}
    parsed = parse("DescribeAvailabilityZones", r.render("DescribeAvailabilityZones", zones, RID))
    (zone,) = parsed["AvailabilityZones"]
    assert (zone["ZoneName"], zone["State"], zone["RegionName"]) == ("one-a", "available", "one")


@pytest.mark.parametrize(
    "error",
    [
        Ec2Error("AuthFailure", "AWS was not able to validate the provided access credentials"),
        Ec2Error("InvalidInstanceID.NotFound", "The instance ID 'i-00000063' does not exist"),
        Ec2Error("InternalError", "an internal error occurred"),
    ],
)
def test_errors_parse_with_their_code_and_message(error):
    status, xml = r.render_error(error, RID)
    parsed = parse("DescribeInstances", xml, status)
    assert parsed["Error"] == {"Code": error.code, "Message": error.message}
    assert status == {"AuthFailure": 401, "InternalError": 500}.get(error.code, 400)


def test_text_that_xml_cannot_carry_is_replaced_not_written():
    """A control character in a user's tag must not make the whole answer unparseable."""
    inst = an_instance(tags={"Name": "a\x01b<&>"})
    body = {"reservationSet": [r.reservation("r-default", "alice", [inst])]}
    parsed = parse("DescribeInstances", r.render("DescribeInstances", body, RID))
    tags = parsed["Reservations"][0]["Instances"][0]["Tags"]
    assert tags == [{"Key": "Name", "Value": "a\ufffdb<&>"}]


def test_the_document_carries_ec2s_namespace_and_echoes_an_old_version():
    assert b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"' in r.render("X", {}, RID)
    assert b"doc/2008-12-01/" in r.render("X", {}, RID, "2008-12-01")


def test_timestamps_are_utc_with_milliseconds():
    assert r.timestamp(LAUNCH.replace(microsecond=123456)) == "2026-11-21T11:26:56.123Z"
    assert r.timestamp(0) == "1970-01-01T00:00:00.000Z"
