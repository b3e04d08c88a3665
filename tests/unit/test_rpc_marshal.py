"""Replies are three-item arrays any XML-RPC client decodes; cached fragments are joined as is."""

import xmlrpc.client

import pytest

from oned.errors import BadCall
from oned.rpc import marshal
from oned.rpc.methods import METHODS, Method, type_code


def decode(parts: list[bytes]):
    (reply,), _ = xmlrpc.client.loads(b"".join(parts))
    return reply


@pytest.mark.parametrize("value", [0, 7, -1, True, "text", "<VM>&amp;</VM>", "ünïcode"])
def test_success_replies_decode_to_true_value_zero(value):
    """[true, value, 0] for every value type a method returns."""
    assert decode(marshal.success(value)) == [True, value, 0]


def test_escaped_fragments_are_sent_without_escaping_again():
    """A pool is a join of fragments that were escaped once, when cached."""
    parts = (marshal.escape_bytes("<A>1 & 2</A>"), marshal.escape_bytes("<B/>"))
    assert decode(marshal.success(marshal.Escaped(parts))) == [True, "<A>1 & 2</A><B/>", 0]


def test_a_multicall_reply_wraps_each_reply_in_a_one_item_array():
    """The XML-RPC multicall convention: [[reply0], [reply1], ...], any reply kind inside."""
    escaped = marshal.Escaped((marshal.escape_bytes("<VM/>"),))
    parts = marshal.multicall(
        [marshal.success(3), marshal.failure("no such VM", 0x400), marshal.success(escaped)]
    )
    assert decode(parts) == [[[True, 3, 0]], [[False, "no such VM", 0x400]], [[True, "<VM/>", 0]]]
    assert decode(marshal.multicall([])) == []


def test_failure_replies_carry_message_and_code():
    """[false, message, code]: pyone picks its exception class from the code."""
    assert decode(marshal.failure("no <such> VM", 0x400)) == [False, "no <such> VM", 0x400]


def test_decode_call_refuses_garbage_with_a_value_error():
    """Malformed bodies never escape as anything but ValueError."""
    for body in (b"", b"<x", b"<methodCall></methodCall>"):
        with pytest.raises(ValueError, match="malformed"):
            marshal.decode_call(body)


def test_booleans_are_not_ints_but_ints_0_and_1_fill_boolean_parameters():
    """XML-RPC <boolean> is a Python bool, itself an int: checked before int."""
    assert [type_code(v) for v in (True, 1, "s", [1], 1.5, None)] == ["b", "i", "s", "a", "d", "x"]
    method = Method("m", lambda *a: a, (("ib", None),))
    assert method.arguments((3, 1)) == (3, True)
    with pytest.raises(BadCall, match=r"got \(int, int\)"):
        method.arguments((3, 7))


def test_a_wrong_signature_lists_the_accepted_forms():
    """The error names what was sent and every accepted form."""
    with pytest.raises(BadCall) as exc:
        METHODS["one.vmpool.info"].arguments(("x",))
    message = str(exc.value)
    assert "got (string)" in message
    assert "(session, int)" in message and "(session, int, int, int, int)" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ((-2,), (-2,)),
        ((-2, True, 3), (-2, -1, -1, 3, True)),
        ((-2, 0, 10, -1), (-2, 0, 10, -1)),
        ((-2, 0, 10, -1, ""), (-2, 0, 10, -1)),
    ],
)
def test_vmpool_info_accepts_the_signatures_of_every_era(params, expected):
    """1.4 (filter), 2.0 (filter, extended, state), 3.x+ and 5.x+ forms."""
    assert METHODS["one.vmpool.info"].arguments(params) == expected
