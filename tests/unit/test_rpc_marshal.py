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


CALL = b"<methodCall><methodName>one.vm.info</methodName><params>%s</params></methodCall>"


def _param(value: bytes) -> bytes:
    return CALL % (b"<param><value>" + value + b"</value></param>")


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "one.user.delete">]>'
        + b"<methodCall><methodName>&e;</methodName></methodCall>",
        b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        + _param(b"<string>&b;&b;&b;</string>"),
        b'<!DOCTYPE x [<!ENTITY f SYSTEM "file:///etc/passwd">]>' + _param(b"&f;"),
        b"<!DOCTYPE methodCall>" + CALL % b"",
    ],
)
def test_decode_call_refuses_dtds_so_no_entity_is_ever_expanded(body):
    """Fuzzing finding (issue 10): a DTD's entities were expanded (the method name came from
    one; a billion-laughs body grew in memory); now any DTD is a ValueError."""
    with pytest.raises(ValueError, match="DTDs are not accepted"):
        marshal.decode_call(body)


def test_decode_call_refuses_values_nested_deeper_than_max_depth():
    """Fuzzing finding (issue 10): 100,000 nested arrays decoded into a value whose repr()
    raised RecursionError; now the parse stops at MAX_DEPTH with a ValueError."""
    deep = b"<array><data><value>" * 100_000 + b"</value></data></array>" * 100_000
    with pytest.raises(ValueError, match="nested more than"):
        marshal.decode_call(_param(deep))
    nested = b"<array><data><value>" * 20 + b"<int>1</int>" + b"</value></data></array>" * 20
    _, (value,) = marshal.decode_call(_param(nested))
    for _ in range(20):
        (value,) = value
    assert value == 1


@pytest.mark.parametrize("text", [b"nan", b"-inf", b"1e999", b"9" * 400])
def test_decode_call_refuses_doubles_that_are_not_finite(text):
    """Fuzzing finding (issue 10): nan and inf came through as parameters."""
    with pytest.raises(ValueError, match="not a finite number"):
        marshal.decode_call(_param(b"<double>" + text + b"</double>"))


@pytest.mark.parametrize(
    "value",
    [
        b"<int>" + b"9" * 5000 + b"</int>",
        b"<base64>!!garbage</base64>",
        b"<boolean>2</boolean>",
        b"<struct><member><value>1</value></member></struct>",
        b"<string>\xff\xfe</string>",
        b"<unknown>1</unknown>",
    ],
)
def test_decode_call_refuses_malformed_values_with_a_value_error(value):
    """Garbage inside a well-formed call is a ValueError too, never another exception."""
    with pytest.raises(ValueError, match="malformed"):
        marshal.decode_call(_param(value))


def test_decode_call_keeps_out_of_range_ints_for_the_methods_to_check():
    """Ranges are the methods' business (0x1000 there); the decoder only reads."""
    body = _param(b"<i4>99999999999999999999</i4>")
    assert marshal.decode_call(body) == ("one.vm.info", (99999999999999999999,))


def test_decode_call_reads_a_megabyte_body():
    """A 1 MB call of 40,000 values decodes whole."""
    body = _param(b"<array><data>" + b"<value><int>7</int></value>" * 40_000 + b"</data></array>")
    assert len(body) > 2**20
    _, (values,) = marshal.decode_call(body)
    assert values == [7] * 40_000


@pytest.mark.parametrize(
    "params",
    [
        ("oneadmin:pw", 'NAME="ünï"\nCPU=1 & <x>'),
        ("s", 0, -(2**31), 2**31 - 1, True, False, 1.5),
        ("s", [1, ["a", {"k": [True]}]], {"a": {"b": ""}}),
        ([{"methodName": "one.vm.info", "params": ["s", 1]}],),
    ],
)
def test_decode_call_reads_back_what_xmlrpc_client_sends(params):
    """Every value type a client sends decodes to what it was."""
    body = xmlrpc.client.dumps(params, "one.vm.allocate").encode()
    assert marshal.decode_call(body) == ("one.vm.allocate", params)
