"""Garbage in, an EC2 error out: the pure request parsers never fail any other way, so no
client mistake can become a 500 (which clients retry)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econe import query, signature
from econe.errors import Ec2Error
from econe.request import HttpRequest, Policy

FORM = ("Content-Type", "application/x-www-form-urlencoded")
PRESIGNED = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a&X-Amz-SignedHeaders=host"
NAMES = st.sampled_from(
    ["Action", "Version", "InstanceId", "InstanceId.1", "Filter.1.Name", "Filter.1.Value.1",
     "A.0", "A.1.B", "ImageId", "DryRun", "AWSAccessKeyId", "Signature", "X-Amz-Algorithm"]
) | st.text(max_size=12)  # fmt: skip
VALUES = st.sampled_from(["DescribeInstances", "2016-11-15", "i-0000002a", "ami-1"]) | st.text(
    max_size=12
)
AUTH = st.builds(
    lambda c, s, g: f"AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={s}, Signature={g}",
    st.text(max_size=40) | st.just("AK/20261202/one/ec2/aws4_request"),
    st.text(max_size=20) | st.just("host;x-amz-date"),
    st.text(max_size=70) | st.just("0" * 64),
)
V4 = "AWS4-HMAC-SHA256 Credential=AK/20261202/one/ec2/aws4_request, SignedHeaders=host, Signature="
V4 += "0" * 64
DATES = st.builds(
    lambda d, m, y, t: f"Mon, {d} {m} {y} {t} GMT",
    st.integers(-5, 40), st.sampled_from(["Jan", "Feb", "Xyz"]), st.integers(-10, 10**12),
    st.sampled_from(["00:00:00", "99:99:99", "x"]),
)  # fmt: skip
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["Host", "X-Amz-Date", "Authorization", "Date", "x-amz-content-sha256"]),
        st.text(max_size=30) | AUTH | DATES | st.just("20261202T000000Z"),
    ),
    max_size=5,
)  # fmt: skip


def form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


def only_ec2_errors(call) -> None:
    try:
        call()
    except Ec2Error as err:
        assert 400 <= err.status < 500, err


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=8), st.binary(max_size=40))
def test_query_parse_answers_garbage_with_ec2_errors(pairs, raw):
    only_ec2_errors(lambda: query.parse(HttpRequest("POST", "/", "", (FORM,), form(pairs))))
    only_ec2_errors(lambda: query.parse(HttpRequest("POST", "/", "", (FORM,), raw)))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "PUT"]),
    st.text(max_size=20),
    st.text(max_size=60)
    | st.builds(
        lambda d, e: f"{PRESIGNED}&X-Amz-Date={d}&X-Amz-Expires={e}&X-Amz-Signature={'0' * 64}",
        st.text(max_size=18) | st.just("20261202T000000Z"),
        st.text(max_size=8),
    ),
    HEADERS,
    st.lists(st.tuples(NAMES, VALUES), max_size=6),
    st.sampled_from(["ec2", "s3"]),
)
def test_signature_verification_answers_garbage_with_ec2_errors(
    method, path, query_string, headers, pairs, service
):
    req = HttpRequest(method, path, query_string, (FORM, *headers), form(pairs))
    policy = Policy(service=service)
    only_ec2_errors(lambda: signature.verify(req, lambda key: "secret", policy, 1_795_000_000))


@pytest.mark.parametrize(
    "headers, query_string",
    [
        ((("Date", "Mon, 1 Jan 99999999999 00:00:00 GMT"), ("Authorization", V4)), ""),
        ((), PRESIGNED + "&X-Amz-Date=20261202T000000Z&X-Amz-Expires=%C2%B2&X-Amz-Signature=x"),
        ((), PRESIGNED + "&X-Amz-Date=00010101T000000Z&X-Amz-Expires=1&X-Amz-Signature=x"),
    ],
    ids=["date-overflow", "expires-superscript", "year-one"],
)
def test_regressions_found_by_probing_are_ec2_errors(headers, query_string):
    req = HttpRequest("GET", "/", query_string, (("Host", "h"), *headers))
    with pytest.raises(Ec2Error) as info:
        signature.verify(req, lambda key: "secret", Policy(), 1_795_000_000)
    assert info.value.status < 500
