"""Malformed, mistyped and oversized requests get an error reply; oned keeps answering."""

from __future__ import annotations

import http.client
import xmlrpc.client

import pytest

SESSION = "oneadmin:onecloud"


def post(oned, body: bytes, path: str = "/RPC2") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", oned.port, timeout=10)
    conn.request("POST", path, body, {"Content-Type": "text/xml"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def call(oned, method: str, *params) -> list:
    status, data = post(oned, xmlrpc.client.dumps(params, method).encode())
    assert status == 200
    (reply,), _ = xmlrpc.client.loads(data)
    return reply


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("one.no.such", (SESSION,), 0x1000),
        ("one.vm.info", (), 0x1000),
        ("one.vm.info", (SESSION,), 0x1000),
        ("one.vm.info", (SESSION, "7"), 0x1000),
        ("one.vm.info", (SESSION, 1, 2, 3), 0x1000),
        ("one.vm.info", (SESSION, 7.5), 0x1000),
        ("one.vm.info", (SESSION, 99), 0x400),
        ("one.vm.info", (42, 1), 0x100),
        ("one.host.enable", (SESSION, 0, 7), 0x1000),
        ("one.vmpool.info", (SESSION, -9, -1, -1, -1), 0x1000),
        ("one.vmpool.info", (SESSION, -2, -1, -1, 42), 0x1000),
        ("one.user.allocate", (SESSION, "bad name", "pw"), 0x1000),
        ("one.user.allocate", (SESSION, "a:b", "pw"), 0x1000),
    ],
)
def test_bad_calls_get_a_three_item_error_reply(oned, method, params, code):
    """Every failure is [false, message, code] with the right code."""
    reply = call(oned, method, *params)
    assert reply[0] is False
    assert reply[2] == code
    assert isinstance(reply[1], str) and reply[1]
    assert "Traceback" not in reply[1]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<?xml version='1.0'?><methodCall><methodName>one.vm.info</methodName><params>",
        b"<methodCall><params><param><value><int>1</int></value></param></params></methodCall>",
        b"<methodCall><methodName>one.vm.info</methodName><params><param><value>"
        b"<int>notanint</int></value></param></params></methodCall>",
        b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<methodCall><methodName>&b;</methodName></methodCall>",
    ],
)
def test_malformed_requests_get_an_error_reply_and_oned_survives(oned, body):
    """Garbage in, one XML-RPC error reply out; the next call works."""
    status, data = post(oned, body)
    assert status == 200
    (reply,), _ = xmlrpc.client.loads(data)
    assert reply[0] is False and reply[2] == 0x1000
    assert call(oned, "one.vm.info", SESSION, 99)[2] == 0x400


def test_an_oversized_request_is_refused_without_being_buffered(oned):
    """A body over MAX_REQUEST_SIZE gets an error naming the limit."""
    template = "A = " + "x" * (9 * 1024 * 1024)
    reply = call(oned, "one.vm.allocate", SESSION, template)
    assert reply[0] is False and reply[2] == 0x1000
    assert "MAX_REQUEST_SIZE" in reply[1]
    assert call(oned, "one.vmpool.info", SESSION, -2, -1, -1, -1)[0] is True


def test_other_paths_and_methods_are_refused(oned):
    """Only POST /RPC2 is XML-RPC."""
    assert post(oned, b"x", "/other")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", oned.port, timeout=10)
    conn.request("GET", "/RPC2")
    assert conn.getresponse().status == 405


def test_replies_start_with_the_document_and_integers_are_ints(oned):
    """pyone needs XML starting with '<' and ids as <int>."""
    vid = call(oned, "one.vm.allocate", SESSION, "MEMORY = 64")
    assert vid == [True, 0, 0]
    info = call(oned, "one.vm.info", SESSION, 0)
    assert info[1].startswith("<VM><ID>0</ID>")
    empty = call(oned, "one.hostpool.info", SESSION)
    assert empty == [True, "<HOST_POOL/>", 0]


def test_the_1_4_signatures_are_accepted(oned):
    """1.4/2.0 forms: user.allocate with a sha1, host.allocate with tm, host.enable, vmpool."""
    sha1_of_mypass = "e727d1464ae12436e899a726da5b2f11d8381b26"
    assert call(oned, "one.user.allocate", SESSION, "helen", sha1_of_mypass)[0] is True
    assert call(oned, "one.vm.info", "helen:mypass", 0)[2] == 0x400
    assert call(oned, "one.host.allocate", SESSION, "host01", "im_kvm", "vmm_kvm", "tm_nfs")[1] == 0
    assert call(oned, "one.host.enable", SESSION, 0, False) == [True, 0, 0]
    assert "<STATE>4</STATE>" in call(oned, "one.host.info", SESSION, 0)[1]
    assert "<TM_MAD>tm_nfs</TM_MAD>" in call(oned, "one.host.info", SESSION, 0)[1]
    call(oned, "one.vm.allocate", SESSION, "MEMORY = 64")
    assert "<ID>0</ID>" in call(oned, "one.vmpool.info", SESSION, -2)[1]
    assert "<ID>0</ID>" in call(oned, "one.vmpool.info", SESSION, -2, True, -1)[1]
