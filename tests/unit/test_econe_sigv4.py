"""SigV4 verification against requests signed by botocore itself (header and presigned forms,
EC2 and S3), and each kind of forgery refused with the code EC2 or S3 gives it."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from econe import signature, sigv4
from econe.errors import Ec2Error
from econe.request import HttpRequest, Policy

KEYS = {"AKIDUSER1": "s3cr3t/with+chars", "AKIDUSER2": "other"}
EC2 = Policy(service="ec2", regions=frozenset({"us-east-1"}))
S3 = Policy(service="s3", regions=frozenset({"us-east-1"}))
URL = "http://127.0.0.1:4567/"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
BODY = "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-00000001"


def received(aws: AWSRequest) -> HttpRequest:
    """The request as a server receives it: urllib3 adds Host, the body is bytes."""
    prepared = aws.prepare()
    parts = urlsplit(prepared.url)
    headers = [(k, v) for k, v in prepared.headers.items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(("Host", parts.netloc))
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    return HttpRequest(prepared.method, parts.path, parts.query, tuple(headers), body)


def ec2_post(key="AKIDUSER1", region="us-east-1", service="ec2", body=BODY, url=URL):
    aws = AWSRequest("POST", url, headers={"Content-Type": FORM}, data=body)
    SigV4Auth(Credentials(key, KEYS.get(key, "nope")), service, region).add_auth(aws)
    aws.headers["amz-sdk-invocation-id"] = "added after signing"
    return received(aws)


def refused(request, policy=EC2, now=None, lookup=KEYS.get) -> Ec2Error:
    with pytest.raises(Ec2Error) as info:
        signature.verify(request, lookup, policy, now)
    return info.value


def replace(request: HttpRequest, **changes) -> HttpRequest:
    fields = {**request.__dict__, **changes}
    return HttpRequest(**fields)


def test_a_botocore_ec2_post_verifies_and_names_its_access_key():
    """What boto3 and awscli send for every EC2 action."""
    assert signature.verify(ec2_post(), KEYS.get, EC2) == "AKIDUSER1"


def test_a_get_with_the_parameters_in_the_query_string_verifies():
    aws = AWSRequest("GET", URL, params={"Action": "DescribeRegions", "Version": "2016-11-15"})
    SigV4Auth(Credentials("AKIDUSER2", "other"), "ec2", "us-east-1").add_auth(aws)
    assert signature.verify(received(aws), KEYS.get, EC2) == "AKIDUSER2"


def test_a_path_prefix_and_odd_query_characters_verify():
    aws = AWSRequest("GET", "http://h:8/ec2/./x/", params={"a b": "c/d~e+f", "Z": "", "é": "ü"})
    SigV4Auth(Credentials("AKIDUSER1", KEYS["AKIDUSER1"]), "ec2", "us-east-1").add_auth(aws)
    assert signature.verify(received(aws), KEYS.get, EC2) == "AKIDUSER1"


def test_boto2_separators_without_spaces_verify():
    """boto 2 joins the Authorization fields with ',' alone."""
    req = ec2_post()
    headers = tuple((k, v.replace(", ", ",")) for k, v in req.headers)
    assert signature.verify(replace(req, headers=headers), KEYS.get, EC2) == "AKIDUSER1"


def test_any_region_is_accepted_when_the_policy_names_none():
    req = ec2_post(region="0")
    assert signature.verify(req, KEYS.get, Policy(service="ec2")) == "AKIDUSER1"


def test_a_presigned_ec2_url_verifies():
    aws = AWSRequest("GET", URL, params={"Action": "DescribeRegions", "Version": "2016-11-15"})
    SigV4QueryAuth(Credentials("AKIDUSER1", KEYS["AKIDUSER1"]), "ec2", "us-east-1").add_auth(aws)
    assert signature.verify(received(aws), KEYS.get, EC2) == "AKIDUSER1"


def s3_put(body=b"image bytes", url="http://127.0.0.1:4567/images/a%20b/c%2Bd.raw", unsigned=False):
    aws = AWSRequest("PUT", url, data=body)
    if unsigned:
        aws.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials("AKIDUSER1", KEYS["AKIDUSER1"]), "s3", "us-east-1").add_auth(aws)
    return received(aws)


def test_an_s3_put_with_its_payload_hash_verifies():
    req = s3_put()
    assert req.header("x-amz-content-sha256") != sigv4.UNSIGNED_PAYLOAD
    assert signature.verify(req, KEYS.get, S3) == "AKIDUSER1"


def test_an_s3_body_hashed_while_streamed_verifies():
    req = s3_put()
    streamed = replace(req, body=b"", body_sha256=req.payload_hash())
    assert signature.verify(streamed, KEYS.get, S3) == "AKIDUSER1"


def test_an_unsigned_s3_payload_verifies_on_s3_but_not_on_ec2():
    req = s3_put(unsigned=True)
    assert req.header("x-amz-content-sha256") == sigv4.UNSIGNED_PAYLOAD
    assert signature.verify(req, KEYS.get, S3) == "AKIDUSER1"
    assert refused(req, Policy(service="ec2", scope_services=frozenset({"s3"}))).status == 401


def test_a_presigned_s3_get_verifies_until_it_expires():
    aws = AWSRequest("GET", "http://127.0.0.1:4567/images/x.raw")
    S3SigV4QueryAuth(Credentials("AKIDUSER1", KEYS["AKIDUSER1"]), "s3", "us-east-1", 60).add_auth(
        aws
    )
    req = received(aws)
    assert signature.verify(req, KEYS.get, S3) == "AKIDUSER1"
    err = refused(req, S3, now=time.time() + 120)
    assert (err.code, err.status) == ("AccessDenied", 403)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: replace(r, body=r.body.replace(b"i-00000001", b"i-00000002")),
        lambda r: replace(r, query="Action=TerminateInstances"),
        lambda r: replace(r, method="GET"),
        lambda r: replace(r, path="/other"),
        lambda r: replace(
            r, headers=tuple((k, "10.0.0.1:4567" if k == "Host" else v) for k, v in r.headers)
        ),
    ],
    ids=["body", "query", "method", "path", "host"],
)
def test_a_tampered_request_is_refused_with_auth_failure(tamper):
    err = refused(tamper(ec2_post()))
    assert (err.code, err.status) == ("AuthFailure", 401)


def test_a_wrong_secret_and_an_unknown_key_are_auth_failures():
    assert refused(ec2_post(), lookup=lambda k: "wrong").code == "AuthFailure"
    assert refused(ec2_post(key="NOBODY")).code == "AuthFailure"


def test_on_s3_a_wrong_secret_is_signature_does_not_match():
    err = refused(s3_put(), S3, lookup=lambda k: "wrong")
    assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)


def test_a_wrong_region_or_service_in_the_scope_is_refused():
    assert refused(ec2_post(region="eu-west-1")).code == "AuthFailure"
    assert refused(ec2_post(service="s3")).code == "AuthFailure"
    assert refused(s3_put(), Policy(service="s3", regions=frozenset({"x"}))).status == 400


@pytest.mark.parametrize("offset", [-1000, 1000], ids=["future-dated", "expired"])
def test_a_request_outside_the_15_minute_window_is_request_expired(offset):
    err = refused(ec2_post(), now=time.time() + offset)
    assert (err.code, err.status) == ("RequestExpired", 400)


def test_within_the_window_a_skewed_clock_is_accepted():
    assert signature.verify(ec2_post(), KEYS.get, EC2, now=time.time() + 800) == "AKIDUSER1"


def test_an_unsigned_request_is_missing_authentication_token():
    err = refused(HttpRequest("POST", "/", "", (("Host", "h"),), BODY.encode()))
    assert (err.code, err.status) == ("MissingAuthenticationToken", 403)


SCOPE = "AWS4-HMAC-SHA256 Credential=A/{d}/us-east-1/ec2/aws4_request, "


@pytest.mark.parametrize(
    "auth",
    [
        "AWS4-HMAC-SHA256 Credential=AKIDUSER1/20261121/us-east-1/ec2/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDUSER1/x/aws4_request, SignedHeaders=host, Signature="
        + "0" * 64,
        SCOPE + "SignedHeaders=x-amz-date, Signature=" + "0" * 64,
        SCOPE + "SignedHeaders=host, Signature=zz",
        "AWS AKIDUSER1:abc",
    ],
    ids=["no-signature", "short-credential", "host-unsigned", "bad-hex", "other-algorithm"],
)
def test_a_malformed_authorization_is_incomplete_signature(auth):
    stamp = time.strftime(sigv4.TIMESTAMP, time.gmtime())
    headers = (("Host", "h"), ("X-Amz-Date", stamp), ("Authorization", auth.format(d=stamp[:8])))
    err = refused(HttpRequest("POST", "/", "", headers, b""))
    assert (err.code, err.status) == ("IncompleteSignature", 400)


def test_a_declared_payload_hash_must_be_the_bodys():
    req = s3_put()
    err = refused(replace(req, body=b"other bytes"), S3)
    assert (err.code, err.status) == ("XAmzContentSHA256Mismatch", 400)


def test_a_missing_signed_header_is_refused():
    req = ec2_post()
    headers = tuple((k, v) for k, v in req.headers if k.lower() != "content-type")
    assert refused(replace(req, headers=headers)).code == "AuthFailure"


def test_a_date_from_an_earlier_day_in_the_scope_is_refused():
    req = ec2_post()
    auth = req.header("authorization")
    stamp = req.header("x-amz-date")
    forged = auth.replace(f"/{stamp[:8]}/", "/20200101/")
    headers = tuple((k, forged if k == "Authorization" else v) for k, v in req.headers)
    assert refused(replace(req, headers=headers)).code == "AuthFailure"
