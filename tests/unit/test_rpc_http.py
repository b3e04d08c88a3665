"""The XML-RPC front's HTTP/1.1 protocol (oned.rpc.http) on a StringTransport and a task.Clock:
framing, keep-alive, pipelining, held replies, refusals and timers."""

from __future__ import annotations

import logging
import xmlrpc.client

import pytest
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from oned.config import Config
from oned.rpc.chunked import BadRequest, ChunkedBody
from oned.rpc.server import LargeReply, make_site

LOG = logging.getLogger("test")


class Dispatcher:
    """Answers every body with itself, or with what a test queued (a Deferred)."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []
        self.queued: list[object] = []

    def handle(self, body: bytes, client: str) -> object:
        self.calls.append((body, client))
        return self.queued.pop(0) if self.queued else [b"<r>", body, b"</r>"]


def connected(**config: int):
    clock = task.Clock()
    rpc = Dispatcher()
    site = make_site(rpc, Config(**config), LOG, reactor=clock)  # type: ignore[arg-type]
    channel = site.buildProtocol(IPv4Address("TCP", "10.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 40000))
    channel.makeConnection(transport)
    return channel, transport, rpc, clock


def post(body: bytes, path: bytes = b"/RPC2", extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        path,
        extra,
        len(body),
        body,
    )


def replies(transport: StringTransport) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """(status line, headers with lower-case names, body) of every reply written so far."""
    data, found = transport.value(), []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
        size = int(headers.get(b"content-length", b"0"))
        found.append((status, headers, data[:size]))
        data = data[size:]
    return found


def test_a_post_to_rpc2_is_answered_with_the_dispatchers_reply():
    channel, transport, rpc, _ = connected()
    channel.dataReceived(post(b"<call/>"))
    ((status, headers, body),) = replies(transport)
    assert status == b"HTTP/1.1 200 OK" and body == b"<r><call/></r>"
    assert headers[b"content-type"] == b"text/xml" and headers[b"content-length"] == b"14"
    assert rpc.calls == [(b"<call/>", "10.0.0.1")] and not transport.disconnecting


def test_a_request_read_a_byte_at_a_time_is_answered_once_whole():
    channel, transport, rpc, _ = connected()
    for byte in post(b"<call/>", extra=b"cOnTeNt-TyPe: text/xml\r\n"):
        channel.dataReceived(bytes([byte]))
    assert [r[2] for r in replies(transport)] == [b"<r><call/></r>"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n\n"], ids=["lf", "crlf-then-lf"])
def test_a_head_whose_lines_end_with_a_bare_lf_is_read(newline):
    """RFC 9112 §2.2: a server may take LF alone as a line's end; twisted.web did, and a
    request typed by hand (printf | nc) has them. The body keeps its own CRLFs."""
    channel, transport, rpc, _ = connected()
    body = b"<call>\r\n\r\n</call>"
    head = b"POST /RPC2 HTTP/1.1\nHost: x\r\nContent-Length: %d" % len(body)
    channel.dataReceived(head + newline + (b"" if newline == b"\r\n\n" else b"\n") + body)
    channel.dataReceived(post(b"<next/>"))
    assert [r[2] for r in replies(transport)] == [b"<r>" + body + b"</r>", b"<r><next/></r>"]
    assert not transport.disconnecting


def test_pipelined_requests_wait_for_a_held_reply_and_are_answered_in_order():
    channel, transport, rpc, _ = connected()
    held: defer.Deferred = defer.Deferred()
    rpc.queued.append(held)
    channel.dataReceived(post(b"1") + post(b"2") + post(b"3"))
    assert transport.value() == b"" and len(rpc.calls) == 1
    held.callback([b"one"])
    assert [r[2] for r in replies(transport)] == [b"one", b"<r>2</r>", b"<r>3</r>"]


def test_a_client_that_goes_away_cancels_its_held_reply():
    channel, transport, rpc, _ = connected()
    held: defer.Deferred = defer.Deferred()
    rpc.queued.append(held)
    channel.dataReceived(post(b"changes"))
    channel.connectionLost(Failure(ConnectionError()))
    assert held.called and transport.value() == b""  # cancelled; nothing written after


def test_a_failed_reply_is_an_internal_error_fault(caplog):
    channel, transport, rpc, _ = connected()
    rpc.queued.append(defer.fail(RuntimeError("boom")))
    channel.dataReceived(post(b"x"))
    ((status, _, body),) = replies(transport)
    (value,), _ = xmlrpc.client.loads(body)
    assert status.endswith(b"200 OK") and value == [False, "Internal error, see oned.log", 0x2000]
    assert "Unexpected error answering a request" in caplog.text


def test_a_chunked_body_is_read_in_pieces_with_extensions_and_trailers():
    channel, transport, rpc, _ = connected()
    request = (
        b"POST /RPC2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: y\r\n\r\n"
    )
    for at in range(0, len(request), 7):
        channel.dataReceived(request[at : at + 7])
    assert rpc.calls == [(b"hello, chunked!", "10.0.0.1")]
    assert replies(transport)[0][0] == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize("body", [b"zz\r\n", b"5\r\nhelloXX", b"-1\r\n", b"1" * 17 + b"\r\n"])
def test_a_bad_chunk_is_a_bad_request(body):
    with pytest.raises(BadRequest):
        ChunkedBody().feed(body)


def test_expect_100_continue_is_answered_before_the_body():
    channel, transport, rpc, _ = connected()
    channel.dataReceived(post(b"", extra=b"Expect: 100-continue\r\n").replace(b"0\r\n", b"4\r\n"))
    assert transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    channel.dataReceived(b"body")
    assert rpc.calls == [(b"body", "10.0.0.1")]


def test_a_body_over_max_request_size_is_refused_unkept_and_the_connection_kept(caplog):
    channel, transport, rpc, _ = connected(max_request_size=100)
    channel.dataReceived(post(b"x" * 150)[:-150])
    for _ in range(5):
        channel.dataReceived(b"x" * 30)
    assert channel._body == [] and rpc.calls == []
    channel.dataReceived(post(b"next"))
    (_, _, refused), (_, _, answered) = replies(transport)
    (value,), _ = xmlrpc.client.loads(refused)
    assert value[0] is False and value[2] == 0x1000 and "exceeds MAX_REQUEST_SIZE (100)" in value[1]
    assert answered == b"<r>next</r>" and "Refused a request of 150 bytes" in caplog.text


def test_an_oversized_body_announced_with_expect_is_refused_at_once_and_closed():
    channel, transport, rpc, _ = connected(max_request_size=100)
    head = b"POST /RPC2 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"
    channel.dataReceived(head)
    ((status, headers, body),) = replies(transport)
    assert status == b"HTTP/1.1 200 OK" and b"MAX_REQUEST_SIZE" in body
    assert headers[b"connection"] == b"close" and transport.disconnecting and rpc.calls == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /RPC2\r\n\r\n",
        b"POST /RPC2 HTTP/2.0\r\n\r\n",
        b"POST  /RPC2 HTTP/1.1\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nHost : x\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\n" + b"A: b\r\n" * 501 + b"\r\n",
        b"POST /RPC2 HTTP/1.1\r\nA: " + b"b" * 17000 + b"\r\n\r\n",
        b"POST /RPC2 HTTP/1.1\r\n" + (b"A: " + b"b" * 1000 + b"\r\n") * 70,
        b"POST /RPC2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n",
    ],
)
def test_a_malformed_request_is_answered_400_and_closed(request_bytes):
    channel, transport, rpc, _ = connected()
    channel.dataReceived(request_bytes)
    ((status, headers, _),) = replies(transport)
    assert status == b"HTTP/1.1 400 Bad Request" and headers[b"connection"] == b"close"
    assert transport.disconnecting and rpc.calls == []


@pytest.mark.parametrize(
    ("version", "connection", "kept"),
    [
        (b"HTTP/1.1", b"", True),
        (b"HTTP/1.1", b"Connection: close\r\n", False),
        (b"HTTP/1.1", b"connection: Keep-Alive\r\n", True),
        (b"HTTP/1.0", b"", False),
        (b"HTTP/1.0", b"Connection: keep-alive\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_and_the_connection_header(version, connection, kept):
    channel, transport, _, _ = connected()
    channel.dataReceived(post(b"x", extra=connection).replace(b"HTTP/1.1", version))
    ((_, headers, _),) = replies(transport)
    assert transport.disconnecting is not kept
    assert headers.get(b"connection") == {
        (True, b"HTTP/1.0"): b"keep-alive",
        (False, b"HTTP/1.0"): b"close",
        (False, b"HTTP/1.1"): b"close",
    }.get((kept, version))


@pytest.mark.parametrize(
    ("request_bytes", "status", "allow"),
    [
        (b"GET /RPC2 HTTP/1.1\r\n\r\n", b"405 Method Not Allowed", b"POST"),
        (b"PUT /RPC2 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405 Method Not Allowed", b"POST"),
        (post(b"x", b"/other"), b"404 Not Found", None),
        (post(b"x", b"/RPC2?a=b"), b"200 OK", None),
    ],
)
def test_other_paths_and_methods_are_refused(request_bytes, status, allow):
    channel, transport, _, _ = connected()
    channel.dataReceived(request_bytes)
    ((line, headers, _),) = replies(transport)
    assert line == b"HTTP/1.1 " + status and headers.get(b"allow") == allow


def test_a_large_reply_follows_its_head_whole_and_the_next_request_is_answered_after():
    channel, transport, rpc, _ = connected()
    parts = [b"<big>", *(b"%07d" % n for n in range(300_000)), b"</big>"]  # 2.1 MB
    rpc.queued.append(parts)
    channel.dataReceived(post(b"list") + post(b"after"))
    big, after = replies(transport)
    assert int(big[1][b"content-length"]) == sum(map(len, parts)) > LargeReply.piece
    assert big[2] == b"".join(parts) and after[2] == b"<r>after</r>"
    assert transport.producer is None


def test_the_idle_timer_waits_for_a_held_reply_and_counts_from_its_end():
    channel, transport, rpc, clock = connected(keepalive_timeout=5)
    held: defer.Deferred = defer.Deferred()
    rpc.queued.append(held)
    clock.advance(3)
    channel.dataReceived(post(b"changes"))
    clock.advance(30)
    assert not transport.disconnecting
    held.callback([b"changed"])
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(5)
    assert transport.disconnecting


def test_a_request_read_in_part_is_cut_off_at_timeout_even_with_later_bytes(caplog):
    channel, transport, _, clock = connected(keepalive_timeout=5, timeout=12)
    with caplog.at_level(logging.INFO):
        channel.dataReceived(post(b"x" * 100)[:-50])
        clock.advance(11)
        channel.dataReceived(b"x" * 10)
        assert not transport.disconnecting
        clock.advance(1)
    assert transport.disconnecting and transport.value() == b""
    assert "no whole request within 12 s (TIMEOUT)" in caplog.text


def test_a_dispatcher_that_raises_is_answered_with_an_internal_error(caplog):
    channel, transport, rpc, _ = connected()
    rpc.handle = lambda body, client: 1 / 0  # type: ignore[method-assign]
    channel.dataReceived(post(b"x"))
    (value,), _ = xmlrpc.client.loads(replies(transport)[0][2])
    assert value[2] == 0x2000 and "ZeroDivisionError" in caplog.text


def test_what_comes_after_a_bad_request_is_not_read():
    channel, transport, rpc, _ = connected()
    channel.dataReceived(b"BAD\r\n\r\n")
    channel.dataReceived(post(b"x") * 100)
    assert len(replies(transport)) == 1 and rpc.calls == [] and channel._buffer == b""


def test_reading_stops_while_a_reply_is_held_and_many_requests_wait_then_resumes():
    """A client pipelining megabytes behind a held reply is not buffered without end."""
    channel, transport, rpc, _ = connected()
    held: defer.Deferred = defer.Deferred()
    rpc.queued.append(held)
    channel.dataReceived(post(b"changes"))
    for _ in range(10):
        channel.dataReceived(post(b"y" * 10_000))
    assert transport.producerState == "paused" and len(rpc.calls) == 1
    held.callback([b"changed"])
    assert transport.producerState == "producing" and len(replies(transport)) == 11
