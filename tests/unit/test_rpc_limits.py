"""The XML-RPC front under abuse (issue 10, finding 5), without a process: big bodies wait for
their session, integers out of range, the connection caps and the request deadline."""

from __future__ import annotations

import hashlib
import logging
import xmlrpc.client

import pytest
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from oned import auth
from oned.api.cloud import Cloud
from oned.api.sessions import Sessions
from oned.config import Config
from oned.errors import BadCall
from oned.pools import Pools
from oned.records import User
from oned.rpc.dispatch import Dispatcher
from oned.rpc.methods import METHODS
from oned.rpc.peek import session_of
from oned.rpc.server import make_site

LOG = logging.getLogger("test")
GOOD = "helen:mypass"


def call_body(session: object, method: str = "one.system.version", pad: int = 0) -> bytes:
    """A call whose tail holds ``pad`` empty values (slow to decode, cheap to send)."""
    body = xmlrpc.client.dumps((session,), method).encode()
    if not pad:
        return body
    tail = b"<param><value><array><data>" + b"<value/>" * pad + b"</data></array></value></param>"
    return body.replace(b"</params>", tail + b"</params>")


def reply_of(reply: list[bytes]) -> list:
    (value,), _ = xmlrpc.client.loads(b"".join(reply))
    return value


class Threads:
    """Stands in for deferToThread: runs at once, and remembers what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def __call__(self, f, *args) -> defer.Deferred:
        self.ran.append(f.__name__)
        return defer.maybeDeferred(f, *args)


@pytest.fixture
def pools() -> Pools:
    pools = Pools()
    pools.put_user(User(0, "oneadmin", auth.hash_password("x", iterations=10)))
    pools.put_user(User(1, "helen", auth.hash_password("mypass", iterations=10)))
    pools.put_user(User(2, "dis", auth.hash_password("mypass", iterations=10), enabled=False))
    return pools


def dispatcher(pools: Pools, **config: int) -> tuple[Dispatcher, Threads]:
    settings = Config(max_unauthenticated_request_size=1024, **config)
    cloud = Cloud(pools, None, settings, LOG)  # type: ignore[arg-type]
    threads = Threads()
    return Dispatcher(cloud, Sessions(pools, LOG), threads, LOG), threads


def answer(reply) -> list:
    if isinstance(reply, defer.Deferred):
        result: list = []
        reply.addBoth(result.append)
        reply = result[0]
    return reply_of(reply)


# --- bodies over MAX_UNAUTHENTICATED_REQUEST_SIZE ----------------------------------------------


def test_a_big_body_with_a_bad_session_is_refused_without_being_decoded(pools):
    """Finding 5: an 8 MB body was decoded on the reactor thread before authentication."""
    rpc, threads = dispatcher(pools)
    reply = answer(rpc.handle(call_body("helen:wrong", pad=10_000), "10.0.0.1"))
    assert reply[0] is False and reply[2] == 0x100
    assert threads.ran == ["verify"]


def test_a_big_body_with_a_good_session_is_decoded_in_a_thread_and_answered(pools):
    """The session is verified first, then the body decoded off the reactor, then the call."""
    rpc, threads = dispatcher(pools)
    reply = answer(rpc.handle(call_body(GOOD, "one.system.version"), "10.0.0.1"))
    assert reply[0] is True and threads.ran == ["verify"]  # small: decoded inline
    reply = answer(rpc.handle(call_body(GOOD, pad=10_000), "10.0.0.1"))
    assert reply[2] == 0x1000 and "wrong parameters" in reply[1]  # decoded, then dispatched
    assert threads.ran == ["verify", "decode_call"]  # the session was cached: no new verify


def test_a_big_body_without_a_session_at_its_head_is_refused_unread(pools):
    """A session too long to fit the head (a 7 MB user name) is never looked at."""
    rpc, threads = dispatcher(pools)
    reply = answer(rpc.handle(call_body("x" * 5000 + ":pw"), "10.0.0.1"))
    assert reply[2] == 0x100 and "MAX_UNAUTHENTICATED_REQUEST_SIZE" in reply[1]
    assert threads.ran == []


def test_a_big_multicall_with_a_bad_first_session_is_a_fault(pools):
    """A multicall refused as a whole is an XML-RPC fault, as standard clients expect."""
    rpc, threads = dispatcher(pools)
    calls = [{"methodName": "one.system.version", "params": ["helen:wrong"], "pad": [0] * 500}]
    body = xmlrpc.client.dumps((calls,), "system.multicall").encode()
    with pytest.raises(xmlrpc.client.Fault) as fault:
        answer(rpc.handle(body, "10.0.0.1"))
    assert fault.value.faultCode == 0x100 and threads.ran == ["verify"]


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (xmlrpc.client.dumps(("a:b&<", "x"), "one.vm.allocate"), ("one.vm.allocate", "a:b&<")),
        (
            "<methodCall><methodName>m</methodName><params><param><value>untyped</value>"
            "</param></params></methodCall>",
            ("m", "untyped"),
        ),
        (xmlrpc.client.dumps((1, "a:b"), "one.vm.info"), None),
        (xmlrpc.client.dumps(("a:b",), "one.vm.info")[:70], None),
        (
            xmlrpc.client.dumps(
                ([{"params": ["s:1", 3], "methodName": "one.vm.info"}, {"params": ["s:2"]}],),
                "system.multicall",
            ),
            ("system.multicall", "s:1"),
        ),
        (
            '<!DOCTYPE x [<!ENTITY a "aaaa">]><methodCall><methodName>m</methodName><params>'
            "<param><value>&a;</value></param></params></methodCall>",
            None,
        ),
        ("garbage", None),
    ],
)
def test_the_session_is_read_from_the_head_of_a_body(body, found):
    """The session and nothing else: missing, cut, non-string, a DTD or garbage give None."""
    assert session_of(body.encode()) == found


# --- integers out of range ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [2**63, 2**64, 2**31, -(2**31) - 1, -(2**40)])
@pytest.mark.parametrize("method", ["one.vm.info", "one.host.info", "one.vmpool.info"])
def test_an_integer_out_of_32_bits_is_a_bad_call(method, value):
    """Finding 5: ids of 2^63 or more were an internal error (0x2000) with a traceback."""
    with pytest.raises(BadCall, match="out of range"):
        METHODS[method].arguments((value,))


def test_the_32_bit_bounds_themselves_are_accepted():
    assert METHODS["one.vm.deploy"].arguments((2**31 - 1, -(2**31))) == (2**31 - 1, -(2**31))


# --- logins ------------------------------------------------------------------------------------


def count_pbkdf2(monkeypatch) -> list[int]:
    runs: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counted(*args, **kw):
        runs.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(auth.hashlib, "pbkdf2_hmac", counted)
    return runs


@pytest.mark.parametrize("session", ["helen:wrong", "nobody:wrong", "dis:mypass"])
def test_every_failed_login_runs_the_password_hash_once(pools, monkeypatch, session):
    """Finding 4: an unknown user answered in 3 ms, a wrong password in 33 ms."""
    runs = count_pbkdf2(monkeypatch)
    with pytest.raises(Exception, match="couldn't be authenticated"):
        Sessions(pools, LOG).verify(session)
    assert len(runs) == 1


def test_the_user_name_of_a_failed_login_is_logged_cut_and_escaped(pools, caplog):
    """Finding 5: a 7 MB user name added 7 MB to oned.log, a newline in it forged lines."""
    name = "eve\n[ReM][I] forged" + "x" * 7_000_000  # no colon: the session splits at it
    with caplog.at_level(logging.ERROR), pytest.raises(Exception, match="authenticated"):
        Sessions(pools, LOG).verify(f"{name}:pw", "10.0.0.1")
    (message,) = caplog.messages
    assert len(message) < 300 and "\n" not in message
    assert message.startswith('Authentication failed for "eve\\n[ReM][I] forged')
    assert message.endswith(f'... ({len(name)} characters)": no such user (from 10.0.0.1)')


def test_the_eleventh_failed_login_from_an_address_is_refused_without_a_check(pools):
    """Finding 5: failed logins were not limited; another address is not affected."""
    rpc, threads = dispatcher(pools, max_auth_failures=10)
    for _ in range(10):
        assert "couldn't be authenticated" in answer(rpc.handle(call_body("helen:no"), "a"))[1]
    reply = answer(rpc.handle(call_body(GOOD), "a"))
    assert reply[2] == 0x100 and reply[1].startswith("[one.system.version] too many failed")
    assert "from a; retry in " in reply[1]
    assert threads.ran == ["verify"] * 10
    assert answer(rpc.handle(call_body(GOOD), "b"))[0] is True


def test_failed_logins_are_forgotten_after_a_minute_and_a_success_forgets_only_itself():
    clock = task.Clock()
    logins = auth.FailedLogins(2, clock=clock.seconds)
    logins.attempt("a")
    clock.advance(30)
    good = logins.attempt("a")
    logins.succeeded("a", good)
    logins.attempt("a")
    assert logins.retry_in("a") == 30 and logins.retry_in("b") == 0
    clock.advance(30)
    assert logins.retry_in("a") == 0


# --- connections -------------------------------------------------------------------------------


def site(**config: int):
    clock = task.Clock()
    rpc, _ = dispatcher(Pools())
    return make_site(rpc, Config(**config), LOG, reactor=clock), clock


def connect(site, host: str):
    channel = site.buildProtocol(IPv4Address("TCP", host, 40000))
    if channel is not None:
        channel.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", host, 40000)))
    return channel


def test_connections_over_the_caps_are_refused_and_a_closed_one_frees_its_place():
    """Finding 5: 1,100 idle connections locked everyone out (no cap at all)."""
    web, _ = site(max_conn=4, max_conn_per_client=2)
    first = [connect(web, "10.0.0.1") for _ in range(3)]
    assert first[2] is None
    assert connect(web, "10.0.0.2") is not None and connect(web, "10.0.0.3") is not None
    assert connect(web, "10.0.0.4") is None  # MAX_CONN
    first[0].connectionLost(Failure(ConnectionError()))
    assert connect(web, "10.0.0.1") is not None


def test_an_idle_connection_is_closed_after_keepalive_timeout():
    web, clock = site(keepalive_timeout=5)
    channel = connect(web, "10.0.0.1")
    clock.advance(4.9)
    assert not channel.transport.disconnecting
    clock.advance(0.2)
    assert channel.transport.disconnecting


def test_a_client_trickling_a_request_is_cut_off_after_timeout():
    """Finding 5 (slowloris): every byte restarted the idle timer, so a byte every few seconds
    held the connection forever."""
    web, clock = site(keepalive_timeout=5, timeout=12)
    channel = connect(web, "10.0.0.1")
    for byte in b"POST /RPC2 HTTP/1.1\r\n":
        channel.dataReceived(bytes([byte]))
        clock.advance(1)
        if channel.transport.disconnecting:
            break
    assert clock.seconds() == 12 and channel.transport.disconnecting
