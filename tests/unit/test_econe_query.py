"""EC2 Query parsing on the bodies botocore's own EC2 serializer writes, and each malformed
request refused with EC2's code and a 4xx."""

from __future__ import annotations

from urllib.parse import urlencode

import botocore.session
import pytest
from botocore.serialize import create_serializer

from econe import query
from econe.errors import Ec2Error
from econe.request import HttpRequest

MODEL = botocore.session.get_session().get_service_model("ec2")
FORM = (("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),)


def body_of(operation: str, **params) -> bytes:
    """The form body boto3 sends for `operation(**params)`."""
    op = MODEL.operation_model(operation)
    serialized = create_serializer("ec2").serialize_to_request(params, op)
    return urlencode(serialized["body"]).encode()


def post(body: bytes | str) -> HttpRequest:
    body = body.encode() if isinstance(body, str) else body
    return HttpRequest("POST", "/", "", FORM, body)


def parsed(operation: str, **params) -> query.QueryRequest:
    return query.parse(post(body_of(operation, **params)))


def refused(request: HttpRequest) -> Ec2Error:
    with pytest.raises(Ec2Error) as info:
        query.parse(request)
    assert 400 <= info.value.status < 500
    return info.value


def test_describe_instances_ids_and_filters_become_lists():
    call = parsed(
        "DescribeInstances",
        InstanceIds=["i-00000001", "i-0000002a"],
        Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}],
    )
    assert (call.action, call.version) == ("DescribeInstances", "2016-11-15")
    assert call.params == {
        "InstanceId": ["i-00000001", "i-0000002a"],
        "Filter": [{"Name": "instance-state-name", "Value": ["running", "pending"]}],
    }


def test_run_instances_keeps_nested_structures_and_the_client_token():
    call = parsed(
        "RunInstances",
        ImageId="ami-00000001",
        MinCount=1,
        MaxCount=2,
        InstanceType="m1.small",
        UserData="aGVsbG8=",
        Placement={"AvailabilityZone": "one"},
        ClientToken="tok-1",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
    )
    p = call.params
    assert (p["ImageId"], p["MinCount"], p["MaxCount"]) == ("ami-00000001", "1", "2")
    assert p["Placement"] == {"AvailabilityZone": "one"}
    assert p["TagSpecification"] == [
        {"ResourceType": "instance", "Tag": [{"Key": "a", "Value": "b"}]}
    ]
    assert p["ClientToken"] == "tok-1"


def test_a_get_query_string_parses_like_a_form():
    req = HttpRequest("GET", "/", "Action=DescribeRegions&Version=2016-11-15&RegionName.1=one")
    assert query.parse(req).params == {"RegionName": ["one"]}


def test_dry_run_is_read_and_signature_fields_are_dropped():
    body = body_of("DescribeRegions", DryRun=True).decode()
    body += "&AWSAccessKeyId=k&SignatureVersion=2&SignatureMethod=HmacSHA256&Signature=x"
    body += "&Timestamp=2026-01-01T00%3A00%3A00Z"
    call = query.parse(post(body))
    assert call.dry_run
    assert call.params == {"DryRun": "true"}


def test_numbered_lists_follow_their_indexes_with_gaps_closed():
    assert query.nest({"A.3": "c", "A.1": "a", "A.10": "j"}) == {"A": ["a", "c", "j"]}


def test_old_versions_from_the_seed_tools_are_accepted():
    for version in ("2008-12-01", "2014-10-01"):
        req = post(f"Action=DescribeImages&Version={version}")
        assert query.parse(req).version == version


@pytest.mark.parametrize(
    "body, code",
    [
        ("Version=2016-11-15", "MissingAction"),
        ("Action=LaunchMissiles&Version=2016-11-15", "InvalidAction"),
        ("Action=DescribeInstances", "MissingParameter"),
        ("Action=DescribeInstances&Version=2099-01-01", "NoSuchVersion"),
        ("Action=DescribeInstances&Version=yesterday", "NoSuchVersion"),
        (
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=42",
            "InvalidInstanceID.Malformed",
        ),
        (
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-2a",
            "InvalidInstanceID.Malformed",
        ),
        (
            "Action=DescribeInstances&Version=2016-11-15&InstanceId=i-0000000G",
            "InvalidInstanceID.Malformed",
        ),
        ("Action=DescribeImages&Version=2016-11-15&ImageId.1=ami-1", "InvalidAMIID.Malformed"),
        ("Action=RunInstances&Version=2016-11-15&ImageId=i-00000001", "InvalidAMIID.Malformed"),
        (
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1.x=i-00000001",
            "InvalidInstanceID.Malformed",
        ),
        ("Action=DescribeInstances&Version=2016-11-15&A=1&A=2", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&A=1&A.1=2", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&A.1=1&A.01=2", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&A.0=1", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&A.99999=1", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&A.1=1&A.x=2", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&A..B=1", "InvalidParameterValue"),
        ("Action=DescribeInstances&Version=2016-11-15&%FF=1", "InvalidParameterValue"),
    ],
)
def test_a_malformed_request_is_refused_with_its_code(body, code):
    assert refused(post(body)).code == code


def test_an_oversize_body_is_refused_before_parsing():
    body = "Action=RunInstances&Version=2016-11-15&UserData=" + "A" * query.MAX_BODY
    err = refused(post(body))
    assert (err.code, err.status) == ("RequestEntityTooLarge", 413)


def test_too_many_parameters_are_refused():
    body = "Action=DescribeTags&Version=2016-11-15&" + "&".join(f"K{i}=v" for i in range(1200))
    assert refused(post(body)).code == "InvalidParameterValue"


def test_ids_are_hex_of_at_least_eight_digits_and_round_trip():
    assert query.format_id(42, "i") == "i-0000002a"
    assert query.format_id(0x123456789, "ami") == "ami-123456789"
    assert query.parse_id("i-0000002a", "i") == 42
    assert query.parse_id(query.format_id(2**40, "ami"), "ami") == 2**40


def test_helpers_read_lists_and_required_parameters():
    assert query.as_list({"InstanceId": "i-00000001"}, "InstanceId") == ["i-00000001"]
    assert query.as_list({}, "InstanceId") == []
    with pytest.raises(Ec2Error) as info:
        query.required({"ImageId": ""}, "ImageId")
    assert info.value.code == "MissingParameter"
