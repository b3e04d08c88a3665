"""Malformed, mistyped and oversized requests get an error reply; oned keeps answering."""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import ssl
import subprocess
import xmlrpc.client
from pathlib import Path

import pytest
import twisted.test

from tests.functional.oned_process import OnedProcess

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


# --- HTTP framing over a real socket (oned.rpc.http) -------------------------------------------


def exchange(oned, data: bytes, replies: int = 1) -> bytes:
    """Send ``data`` on a new connection; read until ``replies`` whole replies or the close."""
    with socket.create_connection(("127.0.0.1", oned.port), timeout=10) as sock:
        sock.sendall(data)
        return read_replies(sock, replies)


def read_replies(sock: socket.socket, count: int) -> bytes:
    received = b""
    while received.count(b"HTTP/1.1 ") < count or not whole(received):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def whole(data: bytes) -> bool:
    """The last reply in ``data`` has all of its Content-Length."""
    at = data.rfind(b"HTTP/1.1 ")
    head, sep, body = data[at:].partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return bool(sep) and (length is None or len(body) >= int(length.group(1)))


def version_call() -> bytes:
    return xmlrpc.client.dumps((SESSION,), "one.system.version").encode()


def test_a_chunked_request_over_a_raw_socket_is_answered(oned):
    """HTTP/1.1 servers must accept Transfer-Encoding: chunked."""
    body = version_call()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:50], body[50:])) + b"0\r\n\r\n"
    data = exchange(oned, b"POST /RPC2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    head, _, reply = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"<boolean>1</boolean>" in reply


def test_expect_100_continue_is_answered_before_the_body_is_sent(oned):
    body = version_call()
    with socket.create_connection(("127.0.0.1", oned.port), timeout=10) as sock:
        sock.sendall(
            b"POST /RPC2 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert b"<boolean>1</boolean>" in read_replies(sock, 1)


def test_curl_posts_a_large_body_with_expect_and_chunked(oned, tmp_path):
    """curl sends Expect: 100-continue for large bodies (over 1 KB before 7.77, 1 MB since:
    asked here) and chunked bodies when asked."""
    if shutil.which("curl") is None:
        pytest.skip("no curl")
    body = tmp_path / "call.xml"
    body.write_bytes(
        xmlrpc.client.dumps(
            (SESSION, "MEMORY = 64\nPAD = " + "x" * 5000), "one.vm.allocate"
        ).encode()
    )
    verbose = []
    for extra in (["-H", "Expect: 100-continue"], ["-H", "Transfer-Encoding: chunked"]):
        out = subprocess.run(
            ["curl", "-sS", "-v", "--data-binary", f"@{body}", "-H", "Content-Type: text/xml",
             *extra, oned.endpoint],
            capture_output=True, timeout=30, check=True,
        )  # fmt: skip
        (reply,), _ = xmlrpc.client.loads(out.stdout)
        assert reply[0] is True, reply
        verbose.append(out.stderr)
    assert b"< HTTP/1.1 100 Continue" in verbose[0]  # Content-Length and Expect
    assert b"> Transfer-Encoding: chunked" in verbose[1]


def test_pipelined_requests_are_answered_in_order_on_one_connection(oned):
    one = b"POST /RPC2 HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
    calls = [xmlrpc.client.dumps((SESSION, vid), "one.vm.info").encode() for vid in (7, 8, 9)]
    data = exchange(oned, b"".join(one % (len(c), c) for c in calls), replies=3)
    answers = [
        xmlrpc.client.loads(r.partition(b"\r\n\r\n")[2])[0][0] for r in data.split(b"HTTP/1.1 ")[1:]
    ]
    assert [a[2] for a in answers] == [0x400] * 3
    assert [re.findall(r"\d+", a[1])[-1] for a in answers] == ["7", "8", "9"], answers


@pytest.mark.parametrize(
    "data",
    [
        b"POST /RPC2 HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"BLAH\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\n" + b"A: b\r\n" * 600 + b"\r\n",
    ],
)
def test_a_malformed_request_is_answered_400_and_closed_and_oned_goes_on(oned, data):
    reply = exchange(oned, data, replies=2)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request") and reply.count(b"HTTP/1.1") == 1
    assert call(oned, "one.vm.info", SESSION, 99)[2] == 0x400


@pytest.mark.parametrize(("version", "closed"), [(b"1.0", True), (b"1.1", False)])
def test_http_1_0_closes_after_the_reply_and_1_1_keeps_the_connection(oned, version, closed):
    body = version_call()
    request = b"POST /RPC2 HTTP/%s\r\nContent-Length: %d\r\n\r\n%s" % (version, len(body), body)
    with socket.create_connection(("127.0.0.1", oned.port), timeout=10) as sock:
        sock.sendall(request)
        read_replies(sock, 1)
        sock.settimeout(1)
        try:
            gone = sock.recv(1) == b""
        except TimeoutError:
            gone = False
        assert gone is closed


def test_a_listing_over_a_megabyte_arrives_whole_over_tls(tmp_path):
    """A reply over LargeReply.piece sent over TLS went straight to the socket in plain text
    (TLSMemoryBIOProtocol passed the TCP connection's attributes through): "wrong version
    number" on the client."""
    pem = Path(twisted.test.__file__).with_name("server.pem")  # Twisted's test key and cert
    conf = f'TLS_CERT = "{pem}"\nTLS_KEY = "{pem}"'
    oned = OnedProcess(tmp_path / "one", conf_extra=conf).start()
    try:
        server = xmlrpc.client.ServerProxy(
            oned.endpoint.replace("http://", "https://"),
            context=ssl._create_unverified_context(),
        )
        call = {"methodName": "one.vm.allocate", "params": [SESSION, "MEMORY = 64"]}
        for _ in range(4):
            server.system.multicall([call] * 750)
        ok, xml, _ = server.one.vmpool.info(SESSION, -2, -1, -1, -1)
        assert ok and len(xml) > 1 << 20 and xml.count("<VM>") == 3000
    finally:
        oned.stop()
