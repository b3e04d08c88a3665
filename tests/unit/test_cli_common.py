"""The shared CLI skeleton: ranges, name resolution, XML access, the error contract."""

import io

import pytest

from cli.common import Arg, CliError, Command, Context, int_of, parse_xml, run_cli
from cli.names import Pool, expand_ranges, resolve_ids
from oned.client import OneClientError


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["1-3"], ["1", "2", "3"]),
        (["host[01-03]"], ["host01", "host02", "host03"]),
        (["vm[8-10]"], ["vm8", "vm9", "vm10"]),
        (["host-01", "7"], ["host-01", "7"]),  # a hyphenated name is not a range
    ],
)
def test_ranges_expand_to_each_id_or_name(args, expected):
    assert expand_ranges(args) == expected


class Pools:
    def __init__(self):
        self.calls = []

    def call(self, method, *params):
        self.calls.append(method)
        hosts = [(4, "a"), (5, "b"), (6, "b")]
        items = "".join(f"<HOST><ID>{i}</ID><NAME>{n}</NAME></HOST>" for i, n in hosts)
        return f"<HOST_POOL>{items}</HOST_POOL>"


def _ctx(fake):
    return Context(opts=None, client_factory=lambda: fake, out=io.StringIO())


HOSTS = Pool("host", "one.hostpool.info", "HOST")


def test_names_are_resolved_with_one_pool_listing_and_ids_need_none():
    fake = Pools()
    assert resolve_ids(_ctx(fake), HOSTS, ["1", "a", "a"]) == [1, 4, 4]
    assert fake.calls == ["one.hostpool.info"]
    fake2 = Pools()
    assert resolve_ids(_ctx(fake2), HOSTS, ["0-2"]) == [0, 1, 2]
    assert fake2.calls == []


def test_an_ambiguous_name_is_an_error():
    with pytest.raises(CliError, match='multiple hosts named "b"'):
        resolve_ids(_ctx(Pools()), HOSTS, ["b"])


def test_int_of_reads_integers_and_monitoring_floats():
    e = parse_xml("<X><A>12</A><B>12.7</B><C>junk</C></X>")
    assert (int_of(e, "A"), int_of(e, "B"), int_of(e, "C"), int_of(e, "D", 9)) == (12, 12, 0, 9)


def test_malformed_xml_is_a_cli_error():
    with pytest.raises(CliError, match="malformed XML from oned"):
        parse_xml("<HOST><ID>")


def _run(run, argv, factory=None):
    out, err = io.StringIO(), io.StringIO()
    commands = (Command("go", "does it", run, (Arg("thing", "thing"),)),)
    rc = run_cli("onetest", "Test.", commands, argv, factory or (lambda: None), out, err)
    return rc, out.getvalue(), err.getvalue()


def test_a_client_error_is_one_line_on_stderr_and_exit_255():
    def fail(ctx, opts):
        raise OneClientError("cannot reach oned at http://localhost:2633/RPC2: Connection refused")

    assert _run(fail, ["go", "x"]) == (
        255,
        "",
        "Error: cannot reach oned at http://localhost:2633/RPC2: Connection refused\n",
    )


def test_a_multi_line_message_is_folded_to_one_line():
    def fail(ctx, opts):
        raise CliError("Error allocating VN with template:\nNAME=x\n")

    assert _run(fail, ["go", "x"])[2] == "Error: Error allocating VN with template: NAME=x\n"


def test_the_client_is_only_made_when_a_command_calls_oned():
    def no_auth():
        raise OneClientError("ONE_AUTH file /nope not found: No such file or directory")

    assert _run(lambda ctx, opts: None, ["go", "x"], no_auth) == (0, "", "")
    rc, _, err = _run(lambda ctx, opts: ctx.call("one.x"), ["go", "x"], no_auth)
    assert (rc, err) == (255, "Error: ONE_AUTH file /nope not found: No such file or directory\n")


def test_extra_arguments_are_a_usage_error():
    rc, _, err = _run(lambda ctx, opts: None, ["go", "x", "y"])
    assert (rc, err) == (255, "Error: onetest: unrecognized arguments: y\n")
