"""Where econe finds a signer's secret: the keys file, oned's EC2 keys kept 60 s and fetched
again on a mismatch, oned unreachable as Unavailable (503), never AuthFailure; and the server
refusing, then accepting after one fresh look, a signature made with a rotated secret."""

from __future__ import annotations

import time

import pytest
from twisted.internet import task
from twisted.web.server import NOT_DONE_YET

from econe.config import Settings
from econe.credentials import Chain, Credentials, OnedKeys, StaticKeys
from econe.errors import Ec2Error
from econe.server import QueryResource
from oned.client import OneCallError, OneClientError
from tests.unit.test_econe_server import signed_request


class FakeClient:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, method, *params):
        self.calls.append((method, *params))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def keys(answers, clock=None):
    client = FakeClient(answers)
    now = clock or [0.0]
    return OnedKeys(lambda: client, ttl=60, clock=lambda: now[0]), client, now


def test_the_keys_file_signs_with_the_password_of_the_user_it_names():
    found = StaticKeys({"alice": "pw"}).get("alice")
    assert found == Credentials("pw", -1, "alice", "alice:pw")
    assert StaticKeys({}).get("alice") is None


def test_oned_keys_are_kept_a_minute_then_asked_again():
    lookup, client, now = keys([[1, "alice", "s3cret", "tok", time.time() + 600]])
    assert lookup.cached("AK1") is None
    found = lookup.get("AK1")
    assert found == Credentials("s3cret", 1, "alice", "alice:tok")
    assert lookup.cached("AK1") == found and lookup.get("AK1") == found
    assert client.calls == [("one.user.ec2keysecret", "AK1")]
    now[0] = 61
    assert lookup.cached("AK1") is None
    lookup.get("AK1")
    assert len(client.calls) == 2


def test_a_token_about_to_expire_is_not_kept():
    lookup, client, _ = keys([[1, "alice", "s3cret", "tok", time.time() + 10]])
    lookup.get("AK1")
    assert lookup.cached("AK1") is None


def test_an_unknown_key_is_none_and_oned_unreachable_is_unavailable():
    lookup, _, _ = keys([OneCallError("no such key", 0x400)])
    assert lookup.get("AK9") is None
    lookup, _, _ = keys([OneClientError("cannot reach oned")])
    with pytest.raises(Ec2Error) as info:
        lookup.get("AK9")
    assert (info.value.code, info.value.status) == ("Unavailable", 503)
    lookup, _, _ = keys([OneCallError("not oneadmin", 0x200)])
    with pytest.raises(Ec2Error, match="Unavailable"):
        lookup.get("AK9")


def test_a_chain_answers_from_the_first_source_that_knows_the_key():
    lookup, client, _ = keys([OneCallError("no", 0x400)])
    chain = Chain(StaticKeys({"alice": "pw"}), lookup)
    assert chain.get("alice").secret == "pw" and client.calls == []
    assert chain.get("AK1") is None and len(client.calls) == 1


class RotatingLookup:
    """Keeps the old secret until asked again."""

    def __init__(self):
        self.kept = Credentials("old", 1, "alice", "alice:t")
        self.refetched = 0

    def cached(self, key):
        return self.kept

    def refetch(self, key):
        self.refetched += 1
        self.kept = Credentials("s3cret", 1, "alice", "alice:t2")
        return self.kept

    get = cached


def test_a_rotated_secret_is_fetched_once_more_before_refusing(monkeypatch):
    from twisted.internet import defer, threads

    monkeypatch.setattr(threads, "deferToThread", lambda f, *a: defer.maybeDeferred(f, *a))
    clock = task.Clock()
    lookup = RotatingLookup()
    resource = QueryResource(Settings(), lookup, clock)
    request = signed_request(clock)  # signed with "s3cret"
    assert resource.render(request) is NOT_DONE_YET
    assert request.responseCode == 200 and lookup.refetched == 1
    clock = task.Clock()
    forged = signed_request(clock, secret="forged")
    QueryResource(Settings(), lookup, clock).render(forged)
    assert forged.responseCode == 401 and lookup.refetched == 2


def test_the_key_exchange_reads_http_basic_only():
    import base64

    from econe.keyexchange import credentials_of

    basic = "Basic " + base64.b64encode(b"carol:pa:ss").decode()
    assert credentials_of(basic) == ("carol", "pa:ss")
    for bad in (None, "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        with pytest.raises(Ec2Error, match="AuthFailure"):
            credentials_of(bad)
