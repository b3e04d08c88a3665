"""oned's hook runner (oned/hm.py): the EXECUTE lines it writes, read back as one_hm reads them.

Finding 2 of issue 10: hook arguments were re-split after their variables were expanded, so a
VM name with blanks or shell syntax became several arguments (or, through the driver's shell
splitting, quotes that swallowed the next ones).
"""

from __future__ import annotations

import logging

import pytest

from drivers.hm import Hook, parse_execute
from drivers.protocol import parse_request
from oned.config import HookConfig
from oned.hm import HookRunner, host_words
from oned.records import History, Host, Vm
from oned.template import Template
from tests.unit.test_mad_channel import FakeReactor, started

NASTY = "x; rm -rf / #"


def runner(reactor, caplog, *hooks: HookConfig) -> HookRunner:
    channel = started(reactor, caplog)
    log = logging.getLogger("one.HKM")
    vm_hooks = tuple(h for h in hooks if h.kind == "VM_HOOK")
    host_hooks = tuple(h for h in hooks if h.kind == "HOST_HOOK")
    return HookRunner(channel, host_hooks, "/hooks", log, vm_hooks)


def sent(reactor: FakeReactor) -> list[Hook]:
    """What one_hm would run for each EXECUTE line written so far."""
    lines = [w.decode() for w in reactor.spawned[0][1].written[1:]]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    return [parse_execute(parse_request(line)) for line in lines]


def vm(name: str, **attrs: object) -> Vm:
    tmpl = Template([("NAME", name), *attrs.items()])  # type: ignore[list-item]
    history = [History(5, 0, "host01", 0, "/vm", "kvm", "ssh")]
    return Vm(5, 0, name, tmpl, history=history)


@pytest.fixture
def reactor() -> FakeReactor:
    return FakeReactor()


def test_a_vm_name_with_blanks_and_shell_syntax_reaches_the_hook_as_one_argument(reactor, caplog):
    """Finding 2: "$NAME" expanded first and split after made NAME several arguments."""
    hook = HookConfig("VM_HOOK", "log", "running", "log.sh", "$VMID $NAME")
    runner(reactor, caplog, hook).vm_event(vm(NASTY), "running")
    assert sent(reactor) == [Hook("log", None, ("/hooks/log.sh", "5", NASTY))]


def test_a_value_with_a_newline_and_quotes_stays_one_argument_and_one_line(reactor, caplog):
    """A newline in a value cannot end the request line; quotes cannot join arguments."""
    name = 'a "b\nEXECUTE 9 x LOCAL /bin/rm -rf /'
    hook = HookConfig("VM_HOOK", "log", "running", "/bin/log", "$NAME '$NAME' end", remote=True)
    runner(reactor, caplog, hook).vm_event(vm(name), "running")
    assert sent(reactor) == [Hook("log", "host01", ("/bin/log", name, name, "end"))]


def test_the_arguments_are_split_like_a_shell_before_expansion(reactor, caplog):
    """Quotes in the configured ARGUMENTS group words; a vector variable with a quoted blank
    is one variable; a variable that expands to nothing is dropped, a written "" stays."""
    hook = HookConfig(
        "VM_HOOK", "net", "running", "/bin/net",
        '"ip $NIC[IP, NETWORK="Private LAN"]" $NIC[MAC] "" $MISSING last',
    )  # fmt: skip
    nic = {"IP": "10.0.0.2", "NETWORK": "Private LAN"}
    runner(reactor, caplog, hook).vm_event(vm("web", NIC=nic), "running")
    assert sent(reactor) == [Hook("net", None, ("/bin/net", "ip 10.0.0.2", "", "last"))]


def test_no_arguments_send_opennebulas_literal_dash(reactor, caplog):
    """NOTE: OpenNebula sends '-' for empty arguments, and the hook gets it."""
    hook = HookConfig("VM_HOOK", "bare", "running", "/bin/bare", "$MISSING")
    runner(reactor, caplog, hook).vm_event(vm("web"), "running")
    assert reactor.spawned[0][1].written[1:] == [b"EXECUTE 5 bare LOCAL /bin/bare -\n"]


def test_unbalanced_quotes_in_the_arguments_log_an_error_and_run_nothing(reactor, caplog):
    """A hook whose ARGUMENTS cannot be split is reported, never sent half-split."""
    hook = HookConfig("VM_HOOK", "odd", "running", "/bin/odd", '"$NAME')
    runner(reactor, caplog, hook).vm_event(vm("web"), "running")
    assert sent(reactor) == []
    assert "Hook odd for 5 not run: bad arguments" in caplog.text


def test_host_hook_variables_are_expanded_inside_their_words():
    """$HID, $NAME and monitoring attributes, each value one word whatever it holds."""
    host = Host(3, "node 1", "im", "vmm", "tm", template=Template([("ARCH", "x86 64")]))
    assert host_words("$HID $NAME '$ARCH!' $NONE", host) == ["3", "node 1", "x86 64!"]
