"""onevm actions, history and the show additions: the calls each command makes, exact output."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import onevm
from cli.common import run_cli
from oned import views
from oned.client import OneCallError
from oned.records import History, Vm
from oned.states import HistoryReason, LcmState, VmState
from oned.template import Template

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"
VM_POOL = (FIXTURES / "one.vmpool.info_pending_and_running.xml").read_text()  # 1 ttylinux, 2 one-2
HOST_POOL = (FIXTURES / "one.hostpool.info_two_hosts.xml").read_text()  # 0 host01, 1 host02
T0 = 1795262100  # Sat Nov 21 2026 11:55:00 UTC
POOLS = {"one.vmpool.info": VM_POOL, "one.hostpool.info": HOST_POOL}


class FakeOned:
    """Answers each method from a table (a value, or a function of the params); records calls."""

    def __init__(self, answers: dict[str, Any]):
        self.answers = answers
        self.calls: list[tuple[Any, ...]] = []

    def call(self, method: str, *params: Any) -> Any:
        self.calls.append((method, *params))
        answer = self.answers[method]
        return answer(*params) if callable(answer) else answer


def run(argv: list[str], answers: dict[str, Any] | None = None) -> tuple[int, str, str, list]:
    fake = FakeOned({**POOLS, **(answers or {})})
    out, err = io.StringIO(), io.StringIO()
    rc = run_cli(onevm.PROG, onevm.DESCRIPTION, onevm.COMMANDS, argv, lambda: fake, out, err)
    return rc, out.getvalue(), err.getvalue(), fake.calls


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def a_record(seq: int, host: str, stime: int, etime: int = 0, reason: int = 0) -> History:
    return History(
        7, seq, host, seq, "/var/lib/one", "vmm_kvm", "tm_nfs", stime, etime, reason=reason
    )


def migrated_vm(**fields: Any) -> Vm:
    """VM 7, deployed on host01, then live-migrated to host02 where it runs."""
    vm = Vm(7, 0, "web", Template([("NAME", "web"), ("MEMORY", "64")]), **fields)
    vm.state, vm.lcm_state, vm.stime = VmState.ACTIVE, LcmState.RUNNING, T0
    vm.history = [
        a_record(0, "host01", T0 + 10, T0 + 3700, HistoryReason.USER),
        a_record(1, "host02", T0 + 3700),
    ]
    return vm


# ---------------------------------------------------------------------------- actions

ACTIONS = [
    ("shutdown", "shutdown", "Shutting down VM"),
    ("hold", "hold", "Setting VM to hold state"),
    ("release", "release", "Releasing VM"),
    ("stop", "stop", "Stopping VM"),
    ("cancel", "cancel", "Canceling VM"),
    ("suspend", "suspend", "Suspending VM"),
    ("resume", "resume", "Resuming VM"),
    ("restart", "restart", "Restarting VM"),
    ("delete", "finalize", "VM correctly deleted"),
]


@pytest.mark.parametrize(("command", "action", "said"), ACTIONS)
def test_each_action_sends_one_vm_action_with_the_action_name_first(command, action, said):
    """one.vm.action(session, action, vid): the 1.4 order; -v prints 1.4's words."""
    rc, out, err, calls = run([command, "2"], {"one.vm.action": 2})
    assert (rc, out, err) == (0, "", "")
    assert calls == [("one.vm.action", action, 2)]
    assert run([command, "-v", "2"], {"one.vm.action": 2})[1] == f"{said}\n"


def test_delete_sends_finalize_as_onevm_1_4_did():
    """The action string on the wire is 1.4's "finalize", not "delete"."""
    assert run(["delete", "1"], {"one.vm.action": 1})[3] == [("one.vm.action", "finalize", 1)]


def test_an_action_on_a_range_acts_on_each_vm_in_order():
    """`onevm shutdown 1-3` is three calls, 1 then 2 then 3."""
    calls = run(["shutdown", "1-3"], {"one.vm.action": 0})[3]
    assert calls == [("one.vm.action", "shutdown", vid) for vid in (1, 2, 3)]


def test_an_action_on_a_name_lists_the_pool_once_to_find_the_id():
    """Names resolve like the other commands do."""
    calls = run(["stop", "ttylinux", "one-2"], {"one.vm.action": 0})[3]
    assert calls == [
        ("one.vmpool.info", -2, -1, -1, -1),
        ("one.vm.action", "stop", 1),
        ("one.vm.action", "stop", 2),
    ]


def test_an_unknown_vm_name_is_one_error_line_and_nothing_is_done():
    """Every name is resolved before the first action."""
    rc, out, err, calls = run(["cancel", "1", "nope"], {"one.vm.action": 0})
    assert (rc, out, err) == (255, "", 'Error: VM "nope" not found\n')
    assert [c for c in calls if c[0] == "one.vm.action"] == []


def test_a_refused_action_stops_at_that_vm_with_oned_s_message():
    """As 1.4's loop did: the first refusal ends the command with exit 255."""

    def refuse_second(action: str, vid: int) -> int:
        if vid == 2:
            raise OneCallError("[one.vm.action] VM 2 is PENDING: stop is allowed in RUNNING", 0x800)
        return vid

    rc, out, err, calls = run(["stop", "1-3"], {"one.vm.action": refuse_second})
    assert (rc, out) == (255, "")
    assert err == "Error: [one.vm.action] VM 2 is PENDING: stop is allowed in RUNNING\n"
    assert calls == [("one.vm.action", "stop", 1), ("one.vm.action", "stop", 2)]


def test_deploy_resolves_the_vm_and_the_host_by_name():
    """`onevm deploy ttylinux host01`: one.vm.deploy(vid, hid)."""
    rc, out, _, calls = run(["deploy", "-v", "ttylinux", "host02"], {"one.vm.deploy": 1})
    assert (rc, out) == (0, "Deploying VM\n")
    assert calls == [
        ("one.vmpool.info", -2, -1, -1, -1),
        ("one.hostpool.info",),
        ("one.vm.deploy", 1, 1),
    ]


def test_deploy_with_ids_makes_no_listing_and_takes_several_vms():
    """Numbers are ids; every VM named goes to the one host."""
    calls = run(["deploy", "1-2", "0"], {"one.vm.deploy": 0})[3]
    assert calls == [("one.vm.deploy", 1, 0), ("one.vm.deploy", 2, 0)]


def test_deploy_to_an_unknown_host_deploys_nothing():
    """The host name is checked before any VM moves."""
    rc, _, err, calls = run(["deploy", "1", "host09"], {"one.vm.deploy": 0})
    assert (rc, err) == (255, 'Error: host "host09" not found\n')
    assert [c for c in calls if c[0] == "one.vm.deploy"] == []


def test_a_users_deploy_refused_by_oned_prints_its_message_on_one_line():
    """Deploy and migrate are oneadmin's: oned's 0x200 is the one Error: line, exit 255."""
    refusal = "[one.vm.deploy] User [1] not authorized to perform ADMIN on VM [1]."

    def refuse(vid: int, hid: int) -> int:
        raise OneCallError(refusal, 0x200)

    rc, out, err, _ = run(["deploy", "1", "0"], {"one.vm.deploy": refuse})
    assert (rc, out, err) == (255, "", f"Error: {refusal}\n")


@pytest.mark.parametrize("command", ["deploy", "livemigrate", "migrate"])
def test_the_commands_that_choose_a_host_say_they_are_for_oneadmin(command):
    """Their summary in onevm's help names who may use them."""
    summary = next(c.summary for c in onevm.COMMANDS if c.name == command)
    assert summary.endswith("(oneadmin only)")


def test_deploy_without_a_host_is_a_usage_error():
    """Both arguments are required."""
    rc, _, err, calls = run(["deploy", "1"])
    assert rc == 255 and calls == []
    assert err.startswith("Error: onevm deploy: the following arguments are required: host")


@pytest.mark.parametrize(("command", "live"), [("livemigrate", True), ("migrate", False)])
def test_migrations_send_one_vm_migrate_with_the_live_flag(command, live):
    """livemigrate is one.vm.migrate(vid, hid, true); migrate the same with false."""
    rc, out, _, calls = run([command, "-v", "one-2", "host02"], {"one.vm.migrate": 2})
    assert (rc, out) == (0, "Migrating VM\n")
    assert calls[-1] == ("one.vm.migrate", 2, 1, live)
    assert calls[-1][3] is live


def test_help_lists_every_action_with_its_arguments_and_a_one_line_summary(capsys):
    """`onevm --help` shows each command's usage line followed by one summary line."""
    assert onevm.main(["--help"]) == 0
    text = capsys.readouterr().out
    for usage in (
        "deploy <name|id>... <host>",
        "shutdown <name|id>...",
        "livemigrate <name|id>... <host>",
        "migrate <name|id>... <host>",
        "hold <name|id>...",
        "release <name|id>...",
        "stop <name|id>...",
        "cancel <name|id>...",
        "suspend <name|id>...",
        "resume <name|id>...",
        "delete <name|id>...",
        "restart <name|id>...",
        "history [--list <col,...>] <name|id>...",
    ):
        assert f"\n  {usage}\n        " in text, usage
    lines = text.splitlines()
    for command in onevm.COMMANDS:
        at = lines.index(f"  {command.usage()}")
        assert lines[at + 1] == f"        {command.summary}"
        assert not lines[at + 2].startswith("        ")  # no second summary line


# ---------------------------------------------------------------------------- history

HISTORY_HEADER = "  ID SEQ        HOSTNAME          STIME          ETIME        TIME REASON"


def test_history_lists_every_record_with_1_4_columns(utc):
    """ID SEQ HOSTNAME STIME ETIME TIME REASON; `--` for a record still open."""
    text = views.vm_xml(migrated_vm(), "oneadmin")
    lines = onevm.history_lines([text], now=T0 + 3700 + 65)
    assert lines == [
        HISTORY_HEADER,
        "   7   0          host01 11/21 11:55:10 11/21 12:56:40 00 01:01:30   user",
        "   7   1          host02 11/21 12:56:40             -- 00 00:01:05   none",
    ]


def test_history_of_a_never_deployed_vm_is_the_header_alone():
    """No record, no row."""
    text = views.vm_xml(Vm(3, 0, "idle", Template()), "oneadmin")
    assert onevm.history_lines([text]) == [HISTORY_HEADER]


def test_history_reads_the_single_history_element_of_a_1_4_oned(utc):
    """1.4/2.0 documents carry only the last record, as <HISTORY> without HISTORY_RECORDS."""
    text = (
        "<VM><ID>4</ID><HISTORY><SEQ>2</SEQ><HOSTNAME>host03</HOSTNAME>"
        f"<STIME>{T0}</STIME><ETIME>{T0 + 60}</ETIME><REASON>4</REASON></HISTORY></VM>"
    )
    assert onevm.history_lines([text])[1:] == [
        "   4   2          host03 11/21 11:55:00 11/21 11:56:00 00 00:01:00   canc"
    ]


def test_history_command_puts_every_vm_named_in_one_table(utc, monkeypatch):
    """`onevm history 7 web`: one header, the records of each VM; --list picks columns."""
    monkeypatch.setattr(time, "time", lambda: T0 + 3765)
    pool = views.vm_short_xml(migrated_vm(), "oneadmin").join(("<VM_POOL>", "</VM_POOL>"))
    failed = migrated_vm()
    failed.id, failed.name = 8, "db"
    failed.history = [History(8, 0, "host01", 0, "/v", "kvm", "nfs", T0, T0 + 5, reason=1)]
    docs = {7: views.vm_xml(migrated_vm(), "oneadmin"), 8: views.vm_xml(failed, "oneadmin")}
    answers = {"one.vmpool.info": pool, "one.vm.info": lambda vid: docs[vid]}
    rc, out, _, calls = run(["history", "web", "8"], answers)
    assert rc == 0
    assert out.splitlines() == onevm.history_lines(list(docs.values()), now=T0 + 3765)
    assert [line.split()[-1] for line in out.splitlines()] == ["REASON", "user", "none", "erro"]
    assert calls[1:] == [("one.vm.info", 7), ("one.vm.info", 8)]
    _, out, _, _ = run(["history", "--list", "seq,hostname,reason", "8"], answers)
    assert out.splitlines() == ["SEQ        HOSTNAME REASON", "  0          host01   erro"]
    assert run(["history", "-x", "8"], answers)[1] == docs[8] + "\n"


# ---------------------------------------------------------------------------- show


def test_show_prints_the_user_template_after_the_vm_template_and_the_sched_message_on_top(utc):
    """A pending VM the scheduler cannot place says why, in the fields and in USER TEMPLATE."""
    message = "Sat Nov 21 11:55:30 2026 : No host with enough capacity to deploy the VM"
    vm = Vm(5, 0, "big", Template([("NAME", "big"), ("MEMORY", "65536")]), stime=T0)
    vm.user_template = Template([("SCHED_MESSAGE", message), ("NOTE", "mine")])
    lines = onevm.show_lines(views.vm_xml(vm, "oneadmin"))
    assert lines[7:] == [
        "DEPLOY ID:     : -                   ",
        f"SCHED_MESSAGE  : {message}",
        "",
        "VIRTUAL MACHINE TEMPLATE".ljust(80),
        "NAME=big",
        "MEMORY=65536",
        "",
        "USER TEMPLATE".ljust(80),
        f"SCHED_MESSAGE={message}",
        "NOTE=mine",
    ]


def test_show_puts_the_last_error_of_a_failed_vm_in_the_fields(utc):
    """oned's ERROR=[MESSAGE, TIMESTAMP] in the template reads as one dated line."""
    tmpl = Template([("NAME", "x"), ("ERROR", {"MESSAGE": "old", "TIMESTAMP": str(T0)})])
    tmpl.add("ERROR", {"MESSAGE": "Error executing\nprolog", "TIMESTAMP": str(T0 + 5)})
    vm = Vm(6, 0, "x", tmpl, state=VmState.FAILED)
    lines = onevm.show_lines(views.vm_xml(vm, "oneadmin"))
    assert lines[8] == "ERROR          : Sat Nov 21 11:55:05 2026 : Error executing prolog"
    assert lines[9] == ""
    assert "USER TEMPLATE".ljust(80) not in lines


def test_show_without_user_template_or_notices_keeps_the_1_4_layout(utc):
    """Nothing is added for a VM that has neither."""
    lines = onevm.show_lines(views.vm_xml(migrated_vm(), "oneadmin"))
    assert lines[7:10] == [
        "DEPLOY ID:     : -                   ",
        "",
        "VIRTUAL MACHINE TEMPLATE".ljust(80),
    ]
    assert lines[-1] == "MEMORY=64"


def test_a_notice_given_as_a_single_value_is_printed_on_one_line():
    """Modern oned writes ERROR as a single attribute; line breaks are folded."""
    text = "<VM><USER_TEMPLATE><ERROR>line one\nline two</ERROR></USER_TEMPLATE></VM>"
    assert onevm.notices(onevm.parse_xml(text)) == [("ERROR", "line one line two")]
