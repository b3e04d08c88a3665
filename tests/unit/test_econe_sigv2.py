"""SigV2 verification against requests signed by botocore's SigV2Auth (what
`Config(signature_version="v2")` sends), POST and GET, and each forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, urlencode, urlsplit

import pytest
from botocore.auth import SigV2Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from econe import signature, sigv2
from econe.errors import Ec2Error
from econe.request import HttpRequest, Policy

KEYS = {"AKIDUSER1": "s3cr3t/with+chars"}
EC2 = Policy(service="ec2")
URL = "http://127.0.0.1:4567/"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
PARAMS = {"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": "i-00000001"}


def signed(method="POST", params=None, key="AKIDUSER1", url=URL) -> HttpRequest:
    """Signed by botocore, as the server receives it (urllib3 adds Host)."""
    params = dict(params or PARAMS)
    if method == "POST":
        aws = AWSRequest("POST", url, headers={"Content-Type": FORM}, data=params)
    else:
        aws = AWSRequest("GET", url, params=params)
    SigV2Auth(Credentials(key, KEYS.get(key, "nope"))).add_auth(aws)
    prepared = aws.prepare()
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    headers = (*prepared.headers.items(), ("Host", parts.netloc))
    return HttpRequest(method, parts.path, parts.query, tuple(headers), body)


def refused(request, policy=EC2, now=None, lookup=KEYS.get) -> Ec2Error:
    with pytest.raises(Ec2Error) as info:
        signature.verify(request, lookup, policy, now)
    return info.value


def test_a_botocore_v2_post_verifies():
    req = signed()
    assert sigv2.is_v2(req)
    assert signature.verify(req, KEYS.get, EC2) == "AKIDUSER1"


def test_a_botocore_v2_get_verifies():
    assert signature.verify(signed("GET"), KEYS.get, EC2) == "AKIDUSER1"


def test_odd_characters_in_values_verify():
    params = {**PARAMS, "UserData": "a b+c/d~e=", "Name": "ünï"}
    assert signature.verify(signed(params=params), KEYS.get, EC2) == "AKIDUSER1"


def test_a_host_signed_without_its_port_verifies():
    """econe accepted the host alone (clients that drop the port)."""
    req = signed(url="http://127.0.0.1/")
    headers = tuple((k, "127.0.0.1:4567" if k == "Host" else v) for k, v in req.headers)
    assert signature.verify(HttpRequest("POST", "/", "", headers, req.body), KEYS.get, EC2)


def test_the_configured_public_host_verifies_behind_a_proxy():
    req = signed(url="https://cloud.example.org/")
    headers = tuple((k, "127.0.0.1:4567" if k == "Host" else v) for k, v in req.headers)
    proxied = HttpRequest("POST", "/", "", headers, req.body)
    assert refused(proxied).code == "AuthFailure"
    assert signature.verify(proxied, KEYS.get, Policy(hosts=("cloud.example.org",)))


def hand_signed(fields: dict[str, str], secret="s3cr3t/with+chars", digest=hashlib.sha1):
    """A request signed by hand (HmacSHA1, Expires: what botocore never sends)."""
    params = {**PARAMS, "AWSAccessKeyId": "AKIDUSER1", "SignatureVersion": "2", **fields}
    text = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='-_~')}" for k, v in sorted(params.items())
    )
    mac = hmac.new(secret.encode(), f"POST\nh\n/\n{text}".encode(), digest).digest()
    params["Signature"] = base64.b64encode(mac).decode()
    headers = (("Host", "h"), ("Content-Type", FORM))
    return HttpRequest("POST", "/", "", headers, urlencode(params).encode())


def test_hmac_sha1_with_expires_verifies_until_it_expires():
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    req = hand_signed({"SignatureMethod": "HmacSHA1", "Expires": expires})
    assert signature.verify(req, KEYS.get, EC2) == "AKIDUSER1"
    assert refused(req, now=time.time() + 120).code == "RequestExpired"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: HttpRequest(
            r.method, r.path, r.query, r.headers, r.body.replace(b"i-00000001", b"i-00000002")
        ),
        lambda r: HttpRequest(r.method, "/x", r.query, r.headers, r.body),
        lambda r: HttpRequest("GET", r.path, r.body.decode(), r.headers, b""),
    ],
    ids=["body", "path", "method"],
)
def test_a_tampered_request_is_auth_failure(tamper):
    err = refused(tamper(signed()))
    assert (err.code, err.status) == ("AuthFailure", 401)


def test_a_wrong_secret_and_an_unknown_key_are_auth_failures():
    assert refused(signed(), lookup=lambda k: "wrong").code == "AuthFailure"
    assert refused(signed(key="NOBODY")).code == "AuthFailure"


@pytest.mark.parametrize("offset", [-1000, 1000], ids=["future-dated", "expired"])
def test_a_timestamp_outside_the_window_is_request_expired(offset):
    err = refused(signed(), now=time.time() + offset)
    assert (err.code, err.status) == ("RequestExpired", 400)


@pytest.mark.parametrize(
    "fields",
    [
        {"SignatureMethod": "HmacMD5", "Timestamp": "2026-01-01T00:00:00Z"},
        {"SignatureMethod": "HmacSHA256", "SignatureVersion": "1", "Timestamp": "x"},
        {"SignatureMethod": "HmacSHA256"},
        {"SignatureMethod": "HmacSHA256", "Timestamp": "yesterday"},
    ],
    ids=["method", "version-1", "no-time", "bad-time"],
)
def test_a_malformed_signature_is_incomplete_signature(fields):
    err = refused(hand_signed(fields))
    assert (err.code, err.status) == ("IncompleteSignature", 400)


def test_no_signature_at_all_is_missing_authentication_token():
    req = HttpRequest("POST", "/", "", (("Content-Type", FORM),), urlencode(PARAMS).encode())
    assert not sigv2.is_v2(req)
    assert refused(req).code == "MissingAuthenticationToken"


def test_a_signature_field_given_twice_is_refused():
    req = signed()
    twice = HttpRequest(req.method, req.path, "AWSAccessKeyId=AKIDUSER2", req.headers, req.body)
    assert refused(twice).code == "IncompleteSignature"
