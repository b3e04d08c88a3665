"""QueryResource without a network: a secret looked up asynchronously (as oned's EC2 keys
will be), and a lookup that fails answered InternalError without details."""

from __future__ import annotations

import io
import time
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from twisted.internet import defer, task
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from econe.config import Settings
from econe.server import QueryResource

BODY = "Action=DescribeRegions&Version=2016-11-15"


class FakeRequest(DummyRequest):
    too_large = False
    econe_user = econe_action = "-"
    gone = False


def signed_request(clock: task.Clock, secret: str = "s3cret") -> FakeRequest:
    aws = AWSRequest(
        "POST",
        "http://127.0.0.1:4567/",
        data=BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials("AK1", secret), "ec2", "one").add_auth(aws)
    prepared = aws.prepare()
    request = FakeRequest([b""])
    request.method = b"POST"
    request.uri = urlsplit(prepared.url).path.encode()
    for name, value in [*prepared.headers.items(), ("Host", "127.0.0.1:4567")]:
        request.requestHeaders.addRawHeader(name, value)
    request.content = io.BytesIO(BODY.encode())
    clock.advance(time.time())
    return request


def test_a_secret_looked_up_asynchronously_is_waited_for():
    clock = task.Clock()
    pending: defer.Deferred = defer.Deferred()
    resource = QueryResource(Settings(), lambda key: pending, clock)
    request = signed_request(clock)
    assert resource.render(request) is NOT_DONE_YET
    assert request.finished == 0
    pending.callback("s3cret")
    assert request.responseCode == 200
    assert b"<regionName>one</regionName>" in b"".join(request.written)


def test_a_failing_lookup_is_an_internal_error_without_details():
    clock = task.Clock()
    resource = QueryResource(Settings(), lambda key: defer.fail(RuntimeError("db gone")), clock)
    request = signed_request(clock)
    resource.render(request)
    body = b"".join(request.written)
    assert request.responseCode == 500
    assert b"<Code>InternalError</Code>" in body and b"db gone" not in body


def test_a_client_gone_before_the_answer_is_not_written_to():
    clock = task.Clock()
    pending: defer.Deferred = defer.Deferred()
    resource = QueryResource(Settings(), lambda key: pending, clock)
    request = signed_request(clock)
    resource.render(request)
    request.processingFailed(Exception("connection lost"))
    assert request.gone
    pending.callback("s3cret")
    assert request.written == []
