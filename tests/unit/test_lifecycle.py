"""The VM life cycle as a pure table (reference §3): every row, every refusal, whole walks."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oned.errors import ActionNotAllowed, BadCall
from oned.lifecycle import (
    ALLOCATE_EFFECTS,
    TABLE,
    USER_ACTIONS,
    VALID_PAIRS,
    AddCapacity,
    At,
    DelCapacity,
    DriverCancel,
    Event,
    HostRef,
    Ignored,
    OpenHistory,
    Outcome,
    ReleaseLeases,
    RunHooks,
    TmTransfer,
    VmmAction,
    allowed,
    applied,
    check,
    poll_event,
    state_name,
    step,
    tm_event,
    vmm_event,
)
from oned.records import History, Vm
from oned.states import HistoryReason, LcmState, VmState
from oned.template import Template
from tests.unit.test_modern_actions import MODERN_ROWS
from tests.unit.test_reboot import REBOOT_ROWS

E = Event
HOST01 = HostRef(0, "host01", "vmm_kvm", "tm_ssh", "/srv/cloud/one/var")
HOST02 = HostRef(1, "host02", "vmm_kvm", "tm_ssh", "/srv/cloud/one/var")
HOST03 = HostRef(2, "host03", "vmm_xen", "tm_nfs", "/srv/cloud/one/var")
ADD, DEL, DEL_P, LEASES = AddCapacity(), DelCapacity(), DelCapacity("previous"), ReleaseLeases()
POLL = VmmAction("POLL")


def vmm(action, host="current"):
    return VmmAction(action, host)


def tm(script):
    return TmTransfer(script)


def hook(on):
    return RunHooks(on)


def record(seq, host=HOST01, reason=HistoryReason.NONE):
    return History(
        7, seq, host.name, host.hid, host.vm_dir, host.vm_mad, host.tm_mad, reason=reason
    )


def vm_at(pair, after_stop=False):
    """A VM in ``pair``; after a stop its last record ended with STOP_RESUME."""
    history = (
        [record(0, reason=HistoryReason.STOP_RESUME)] if after_stop else [record(0), record(1)]
    )
    return Vm(7, 0, "ttylinux", Template(), state=pair[0], lcm_state=pair[1], history=history)


# -- Every row -------------------------------------------------------------------------------

FAILED_EFFECTS = (DEL, LEASES, tm("delete"), hook("FAILED"))  # leases back at FAILED (NOTE)
BACK_TO_RUNNING = (POLL, hook("RUNNING"))

ROWS = [
    # §3.3 Deploy
    (At.PENDING, E.DEPLOY, True, At.PROLOG_RESUME, (ADD, tm("resume"))),
    (At.PENDING, E.DEPLOY, False, At.PROLOG, (ADD, tm("prolog"))),
    (At.PROLOG, E.PROLOG_SUCCESS, False, At.BOOT, (vmm("DEPLOY"),)),
    (At.PROLOG_MIGRATE, E.PROLOG_SUCCESS, False, At.BOOT, (vmm("RESTORE"),)),
    (At.PROLOG_RESUME, E.PROLOG_SUCCESS, False, At.BOOT, (vmm("RESTORE"),)),
    (At.BOOT, E.DEPLOY_SUCCESS, False, At.RUNNING, (hook("RUNNING"),)),
    (At.BOOT, E.RESTORE_SUCCESS, False, At.RUNNING, (hook("RUNNING"),)),
    # §3.3 Failure
    (At.PROLOG, E.PROLOG_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    (At.PROLOG_MIGRATE, E.PROLOG_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    (At.PROLOG_RESUME, E.PROLOG_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    (At.BOOT, E.DEPLOY_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    (At.BOOT, E.RESTORE_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    (At.EPILOG, E.EPILOG_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    (At.EPILOG_STOP, E.EPILOG_FAILURE, False, At.FAILED, FAILED_EFFECTS),
    # §3.3 Shutdown
    (At.RUNNING, E.SHUTDOWN, False, At.SHUTDOWN, (vmm("SHUTDOWN"),)),
    (At.SHUTDOWN, E.SHUTDOWN_SUCCESS, False, At.EPILOG, (tm("epilog"), hook("SHUTDOWN"))),
    (At.EPILOG, E.EPILOG_SUCCESS, False, At.DONE, (DEL, LEASES, hook("DONE"))),
    (At.SHUTDOWN, E.SHUTDOWN_FAILURE, False, At.RUNNING, BACK_TO_RUNNING),
    # §3.3 Cancel
    (At.RUNNING, E.CANCEL, False, At.CANCEL, (vmm("CANCEL"),)),
    (At.CANCEL, E.CANCEL_SUCCESS, False, At.DONE, (DEL, LEASES, tm("delete"), hook("DONE"))),
    (At.CANCEL, E.CANCEL_FAILURE, False, At.RUNNING, BACK_TO_RUNNING),
    # §3.3 Stop
    (At.RUNNING, E.STOP, False, At.SAVE_STOP, (vmm("SAVE"),)),
    (At.SAVE_STOP, E.SAVE_SUCCESS, False, At.EPILOG_STOP, (tm("stop"),)),
    (At.EPILOG_STOP, E.EPILOG_SUCCESS, False, At.STOPPED, (DEL, hook("STOP"))),
    (At.STOPPED, E.RESUME, False, At.PENDING, ()),
    # §3.3 Suspend
    (At.RUNNING, E.SUSPEND, False, At.SAVE_SUSPEND, (vmm("SAVE"),)),
    (At.SAVE_SUSPEND, E.SAVE_SUCCESS, False, At.SUSPENDED, (DEL,)),
    (At.SUSPENDED, E.RESUME, False, At.BOOT, (ADD, vmm("RESTORE"))),
    (At.SAVE_STOP, E.SAVE_FAILURE, False, At.RUNNING, BACK_TO_RUNNING),
    (At.SAVE_SUSPEND, E.SAVE_FAILURE, False, At.RUNNING, BACK_TO_RUNNING),
    # §3.3 Cold and live migrate
    (At.RUNNING, E.MIGRATE, False, At.SAVE_MIGRATE, (ADD, vmm("SAVE", "previous"))),
    (At.SAVE_MIGRATE, E.SAVE_SUCCESS, False, At.PROLOG_MIGRATE, (DEL_P, tm("migrate"))),
    (At.SAVE_MIGRATE, E.SAVE_FAILURE, False, At.RUNNING, (DEL_P, *BACK_TO_RUNNING)),
    (At.RUNNING, E.LIVEMIGRATE, False, At.MIGRATE, (ADD, vmm("MIGRATE", "previous"))),
    (At.MIGRATE, E.MIGRATE_SUCCESS, False, At.RUNNING, (DEL_P, hook("RUNNING"))),
    (At.MIGRATE, E.MIGRATE_FAILURE, False, At.RUNNING, (DEL_P, *BACK_TO_RUNNING)),
    # §3.3 Restart, §3.2 hold and release
    (At.UNKNOWN, E.RESTART, False, At.BOOT, (vmm("DEPLOY"),)),
    (At.BOOT, E.RESTART, False, At.BOOT, (vmm("DEPLOY"),)),
    (At.PENDING, E.HOLD, False, At.HOLD, ()),
    (At.HOLD, E.RELEASE, False, At.PENDING, ()),
    # §1.5 POLL
    (At.RUNNING, E.POLL_RUNNING, False, At.RUNNING, ()),
    (At.UNKNOWN, E.POLL_RUNNING, False, At.RUNNING, (hook("RUNNING"),)),
    (At.RUNNING, E.POLL_SUSPENDED, False, At.SUSPENDED, (DEL,)),
    (At.UNKNOWN, E.POLL_SUSPENDED, False, At.SUSPENDED, (DEL,)),
    (At.RUNNING, E.POLL_FAILED, False, At.FAILED, FAILED_EFFECTS),
    (At.UNKNOWN, E.POLL_FAILED, False, At.FAILED, FAILED_EFFECTS),
    (At.RUNNING, E.POLL_DELETED, False, At.UNKNOWN, ()),
    (At.UNKNOWN, E.POLL_DELETED, False, At.UNKNOWN, ()),
    (At.RUNNING, E.POLL_UNKNOWN, False, At.RUNNING, ()),
    (At.UNKNOWN, E.POLL_UNKNOWN, False, At.UNKNOWN, ()),
]

_VMM_CLEANUP = (DriverCancel("VMM"), vmm("CANCEL"), tm("delete"))
_TM_CLEANUP = (DriverCancel("TM"), tm("delete"))
_END = (tm("delete"), hook("DONE"))
_PREV_END = (tm("delete_prev"), hook("DONE"))
# §3.4: (former pair, effects, fields the last record gets besides etime and reason USER)
DELETES = [
    (At.INIT, (LEASES, hook("DONE")), None),
    (At.PENDING, (LEASES, hook("DONE")), None),
    (At.HOLD, (LEASES, hook("DONE")), None),
    (At.STOPPED, (LEASES, hook("DONE")), None),
    (At.SUSPENDED, (LEASES, tm("delete"), hook("DONE")), None),
    (At.FAILED, (LEASES, hook("DONE")), None),
    (At.PROLOG, (DEL, LEASES, *_TM_CLEANUP, hook("DONE")), "petime"),
    (At.PROLOG_RESUME, (DEL, LEASES, *_TM_CLEANUP, hook("DONE")), "petime"),
    (At.BOOT, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (At.RUNNING, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (At.UNKNOWN, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (At.SHUTDOWN, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (At.CANCEL, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (
        At.MIGRATE,
        (DEL, DEL_P, LEASES, DriverCancel("VMM"), vmm("CANCEL"), vmm("CANCEL", "previous"), *_END),
        "retime",
    ),
    (At.SAVE_STOP, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (At.SAVE_SUSPEND, (DEL, LEASES, *_VMM_CLEANUP, hook("DONE")), "retime"),
    (
        At.SAVE_MIGRATE,
        (DEL, DEL_P, LEASES, DriverCancel("VMM"), vmm("CANCEL", "previous"), *_PREV_END),
        "etime",
    ),
    (
        At.PROLOG_MIGRATE,
        (DEL, LEASES, *_TM_CLEANUP, tm("delete_prev"), hook("DONE")),
        "petime",
    ),
    (At.EPILOG_STOP, (DEL, LEASES, *_TM_CLEANUP, hook("DONE")), "eetime"),
    (At.EPILOG, (DEL, LEASES, *_TM_CLEANUP, hook("DONE")), "eetime"),
]


def label(pair):
    return state_name(*pair)


@pytest.mark.parametrize(
    ("source", "event", "after_stop", "target", "effects"),
    ROWS,
    ids=[f"{label(r[0])}-{r[1]}{'-after-stop' if r[2] else ''}" for r in ROWS],
)
def test_each_row_moves_the_vm_and_asks_for_its_effects(source, event, after_stop, target, effects):
    """(state, lcm, event) -> (state, lcm) and the effects in the order the shell runs them."""
    out = step(vm_at(source, after_stop), event, now=500, host=HOST02)
    assert isinstance(out, Outcome)
    assert ((out.state, out.lcm_state), out.effects) == (target, effects)
    assert (out.prev_state, out.prev_lcm_state) == source


@pytest.mark.parametrize(
    ("source", "effects", "time_field"), DELETES, ids=[label(d[0]) for d in DELETES]
)
def test_delete_goes_to_done_from_every_state_with_the_cleanup_of_that_state(
    source, effects, time_field
):
    """§3.4: LCM DELETE, the former state's cleanup, DM DONE with leases released."""
    vm = vm_at(source)
    out = step(vm, E.DELETE, now=900)
    assert isinstance(out, Outcome)
    assert ((out.state, out.lcm_state), out.effects) == (At.DONE, effects)
    assert out.vm_etime == (None if source == At.FAILED else 900)
    last = applied(vm, out).history[-1]
    if source[0] == VmState.ACTIVE:
        assert (last.etime, last.reason, getattr(last, time_field)) == (
            900,
            HistoryReason.USER,
            900,
        )
    else:
        assert last == vm.history[-1]


def test_the_expected_rows_cover_the_whole_table():
    """No row of the lifecycle table goes untested, and the tests invent none."""
    expected = {(*r[0], r[1]) for r in ROWS} | {(*d[0], E.DELETE) for d in DELETES}
    expected |= {(*r[0], r[1]) for r in MODERN_ROWS}  # tests/unit/test_modern_actions.py
    expected |= {(*r[0], r[1]) for r in REBOOT_ROWS}  # tests/unit/test_reboot.py
    assert expected == set(TABLE)


def test_every_row_starts_and_ends_in_a_pair_a_vm_can_be_in():
    """LCM FAILURE and DELETE are passed through, never kept; non-ACTIVE means LCM_INIT."""
    rows = [row for rows in TABLE.values() for row in rows]
    assert all(r.source in VALID_PAIRS and r.target in VALID_PAIRS for r in rows)
    assert all(rows[-1].when is None for rows in TABLE.values())


def test_database_effects_come_before_driver_requests_and_hooks_last():
    """The shell commits capacity and leases with the VM, then sends requests, then hooks."""
    for rows in TABLE.values():
        for row in rows:
            out = step(vm_at(row.source, row.when is not None), row.event, now=1, host=HOST01)
            phases = [
                0 if e.in_transaction else 2 if isinstance(e, RunHooks) else 1 for e in out.effects
            ]
            assert phases == sorted(phases), row


# -- Refusals and late replies ---------------------------------------------------------------

REFUSED = sorted(
    (pair, action)
    for pair in VALID_PAIRS
    for action in USER_ACTIONS
    if (*pair, action) not in TABLE
)
IGNORED = sorted(
    (pair, event)
    for pair in VALID_PAIRS
    for event in Event
    if event not in USER_ACTIONS and (*pair, event) not in TABLE
)


@pytest.mark.parametrize(("pair", "action"), REFUSED, ids=[f"{label(p)}-{a}" for p, a in REFUSED])
def test_a_user_action_the_state_does_not_allow_is_refused_naming_vm_state_and_action(pair, action):
    """0x800 with the VM id, its state and the action, from check() and from step() alike."""
    assert not allowed(*pair, action)
    with pytest.raises(ActionNotAllowed) as refused:
        check(*pair, action, 7)
    message = refused.value.message
    assert refused.value.code == 0x800
    assert f"VM 7 is {label(pair)}: {action} is allowed in " in message
    with pytest.raises(ActionNotAllowed):
        step(vm_at(pair), action, now=1, host=HOST01)


@pytest.mark.parametrize(("pair", "event"), IGNORED, ids=[f"{label(p)}-{e}" for p, e in IGNORED])
def test_a_driver_outcome_the_vm_is_not_waiting_for_is_ignored(pair, event):
    """Late or duplicated replies are dropped with a reason, never raised."""
    out = step(vm_at(pair), event, now=1)
    assert isinstance(out, Ignored)
    assert f"VM 7 is {label(pair)}" in out.reason


def test_shutdown_of_a_pending_vm_is_refused_as_the_issue_says():
    """The exact message of the bad-input case."""
    with pytest.raises(ActionNotAllowed, match=r"^\[one\.vm\.action\] VM 7 is PENDING: "):
        check(VmState.PENDING, LcmState.LCM_INIT, "stop", 7)
    message = "[one.vm.action] VM 7 is PENDING: stop is allowed in ACTIVE/RUNNING"
    with pytest.raises(ActionNotAllowed) as refused:
        check(*At.PENDING, "stop", 7)
    assert refused.value.message == message


def test_refusals_name_where_the_action_is_allowed():
    """Several states are listed with "or"; all of ACTIVE is written ACTIVE."""
    with pytest.raises(
        ActionNotAllowed, match="restart is allowed in ACTIVE/BOOT or ACTIVE/UNKNOWN"
    ):
        check(*At.RUNNING, "restart", 3)
    with pytest.raises(ActionNotAllowed, match=r"deploy is allowed in PENDING, HOLD or STOPPED$"):
        check(*At.RUNNING, "deploy", 3, method="one.vm.deploy")
    with pytest.raises(ActionNotAllowed) as refused:
        check(*At.DONE, "delete", 3)
    expected = "INIT, PENDING, HOLD, ACTIVE, STOPPED, SUSPENDED or FAILED"
    assert refused.value.message.endswith(expected)


def test_an_unknown_action_or_a_driver_event_is_a_bad_call():
    """check() only answers for user actions."""
    for action in ("poweroff", "DEPLOY_SUCCESS"):
        with pytest.raises(BadCall, match="unknown action"):
            check(*At.RUNNING, action, 7)


def test_finalize_is_the_1_4_name_of_delete():
    """one.vm.action "finalize" is delete."""
    assert Event("finalize") is E.DELETE
    assert allowed(*At.RUNNING, "finalize")


def test_a_vm_in_a_pair_that_is_never_kept_refuses_and_ignores_but_does_not_crash():
    """Say a 1.4 database left ACTIVE/FAILURE: actions are refused, replies ignored."""
    vm = vm_at((VmState.ACTIVE, LcmState.FAILURE))
    assert isinstance(step(vm, E.EPILOG_SUCCESS, now=1), Ignored)
    with pytest.raises(ActionNotAllowed, match="VM 7 is ACTIVE/FAILURE"):
        step(vm, E.SHUTDOWN, now=1)
    assert isinstance(step(vm_at((42, 0)), E.POLL_RUNNING, now=1), Ignored)


def test_deploy_and_migrate_need_the_host_to_go_to():
    """The RPC chose the host; step() cannot make one up."""
    with pytest.raises(ValueError, match="needs the host"):
        step(vm_at(At.PENDING), E.DEPLOY, now=1)


# -- Whole walks, with history times and reasons ------------------------------------------


class Walk:
    """A VM driven through step() and applied(), with the capacity each host holds for it."""

    def __init__(self, state=VmState.PENDING):
        self.vm = Vm(7, 0, "ttylinux", Template(), state=state, prev_state=state)
        self.now = 1000
        self.capacity: Counter[str] = Counter()
        self.sent: list[object] = []

    def do(self, event, host=None) -> Outcome:
        out = self.feed(event, host)
        assert isinstance(out, Outcome), out
        return out

    def feed(self, event, host=None) -> Outcome | Ignored:
        self.now += 10
        out = step(self.vm, event, now=self.now, host=host)
        if isinstance(out, Outcome):
            self.vm = applied(self.vm, out)
            for effect in out.effects:
                self.run(effect)
        return out

    def run(self, effect):
        if isinstance(effect, AddCapacity | DelCapacity):
            name = self.host(effect.host)
            self.capacity[name] += 1 if isinstance(effect, AddCapacity) else -1
            assert self.capacity[name] >= 0, f"capacity of {name} below zero"
        elif isinstance(effect, VmmAction):
            self.sent.append((effect.action, self.host(effect.host)))
        elif isinstance(effect, TmTransfer):
            self.sent.append((effect.script, self.host("current")))
        else:
            self.sent.append(effect)

    def copy(self) -> Walk:
        twin = Walk()
        twin.vm, twin.now, twin.capacity = self.vm, self.now, Counter(self.capacity)
        return twin

    def host(self, side):
        return self.vm.history[-1 if side == "current" else -2].host_name

    @property
    def pair(self):
        return (self.vm.state, self.vm.lcm_state)

    def times(self, seq, *fields):
        return tuple(getattr(self.vm.history[seq], f) for f in fields)


def deployed(host=HOST01):
    walk = Walk()
    walk.do(E.DEPLOY, host)
    walk.do(E.PROLOG_SUCCESS)
    walk.do(E.DEPLOY_SUCCESS)
    return walk


def test_deploy_then_shutdown_walks_prolog_boot_running_epilog_done():
    """§3.3 deploy and shutdown, with every time of the one history record."""
    walk = Walk()
    walk.do(E.DEPLOY, HOST01)
    assert walk.pair == At.PROLOG and walk.capacity == {"host01": 1}
    walk.do(E.PROLOG_SUCCESS)
    walk.do(E.DEPLOY_SUCCESS)
    assert walk.pair == At.RUNNING
    walk.do(E.SHUTDOWN)
    walk.do(E.SHUTDOWN_SUCCESS)
    assert walk.pair == At.EPILOG
    out = walk.do(E.EPILOG_SUCCESS)
    assert walk.pair == At.DONE and +walk.capacity == {}
    assert len(walk.vm.history) == 1
    fields = ("stime", "pstime", "petime", "rstime", "retime", "estime", "eetime", "etime")
    assert walk.times(0, *fields) == (1010, 1010, 1020, 1020, 1050, 1050, 1060, 1060)
    assert walk.vm.history[0].reason == HistoryReason.NONE
    assert (walk.vm.etime, out.vm_etime) == (1060, 1060)
    assert walk.sent == [
        ("prolog", "host01"),
        ("DEPLOY", "host01"),
        hook("RUNNING"),
        ("SHUTDOWN", "host01"),
        ("epilog", "host01"),
        hook("SHUTDOWN"),
        LEASES,
        hook("DONE"),
    ]


def test_the_new_history_record_carries_the_host_the_rpc_chose():
    """Host name, id, VM_DIR and the host's drivers, seq 0 for the first stay."""
    walk = Walk()
    out = walk.do(E.DEPLOY, HOST03)
    assert out.history == (OpenHistory((("stime", 1010), ("pstime", 1010)), None, HOST03),)
    first = walk.vm.history[0]
    assert (first.seq, first.host_name, first.hid, first.vm_mad, first.tm_mad) == (
        0,
        "host03",
        2,
        "vmm_xen",
        "tm_nfs",
    )


def test_stop_then_resume_takes_the_prolog_resume_path_on_the_next_deploy():
    """§3.3 stop: SAVE, EPILOG_STOP with STOP_RESUME, STOPPED; resume: PENDING, then RESTORE."""
    walk = deployed()
    walk.do(E.STOP)
    walk.do(E.SAVE_SUCCESS)
    assert walk.pair == At.EPILOG_STOP
    walk.do(E.EPILOG_SUCCESS)
    assert walk.pair == At.STOPPED and +walk.capacity == {}
    assert walk.vm.history[0].reason == HistoryReason.STOP_RESUME
    assert walk.times(0, "retime", "estime", "eetime", "etime") == (1050, 1050, 1060, 1060)
    assert walk.vm.etime == 0
    walk.do(E.RESUME)
    assert walk.pair == At.PENDING
    walk.do(E.DEPLOY, HOST02)
    assert walk.pair == At.PROLOG_RESUME
    walk.do(E.PROLOG_SUCCESS)
    walk.do(E.RESTORE_SUCCESS)
    assert walk.pair == At.RUNNING and walk.capacity == {"host01": 0, "host02": 1}
    assert walk.sent[-3:] == [("resume", "host02"), ("RESTORE", "host02"), hook("RUNNING")]
    assert [h.seq for h in walk.vm.history] == [0, 1]


def test_suspend_then_resume_restores_on_the_same_host_in_a_new_record():
    """§3.3 suspend: the record closes with STOP_RESUME; resume copies it (seq+1) and RESTOREs."""
    walk = deployed()
    walk.do(E.SUSPEND)
    walk.do(E.SAVE_SUCCESS)
    assert walk.pair == At.SUSPENDED and +walk.capacity == {}
    assert walk.times(0, "retime", "etime", "reason") == (1050, 1050, HistoryReason.STOP_RESUME)
    walk.do(E.RESUME)
    assert walk.pair == At.BOOT and walk.capacity == {"host01": 1}
    second = walk.vm.history[1]
    assert (second.seq, second.host_name, second.stime, second.rstime, second.pstime) == (
        1,
        "host01",
        1060,
        1060,
        0,
    )
    walk.do(E.RESTORE_SUCCESS)
    assert walk.pair == At.RUNNING
    assert ("RESTORE", "host01") in walk.sent


def test_cold_migrate_saves_on_the_old_host_moves_the_images_and_restores_on_the_new():
    """§3.3 cold migrate, with the old record closed USER and the new one opened."""
    walk = deployed()
    walk.do(E.MIGRATE, HOST02)
    assert walk.pair == At.SAVE_MIGRATE and walk.capacity == {"host01": 1, "host02": 1}
    walk.do(E.SAVE_SUCCESS)
    assert walk.pair == At.PROLOG_MIGRATE and +walk.capacity == {"host02": 1}
    walk.do(E.PROLOG_SUCCESS)
    walk.do(E.RESTORE_SUCCESS)
    assert walk.pair == At.RUNNING
    assert walk.sent[-4:] == [
        ("SAVE", "host01"),
        ("migrate", "host02"),
        ("RESTORE", "host02"),
        hook("RUNNING"),
    ]
    assert walk.times(0, "etime", "retime", "reason") == (1050, 1050, HistoryReason.USER)
    assert walk.times(1, "stime", "pstime", "petime", "rstime") == (1040, 1050, 1060, 1060)


def test_a_failed_save_while_migrating_keeps_the_vm_running_on_the_old_host():
    """§3.3 cold migrate step 5: new record ERROR, old one USER, a copy of the old one opens."""
    walk = deployed()
    walk.do(E.MIGRATE, HOST02)
    out = walk.do(E.SAVE_FAILURE)
    assert walk.pair == At.RUNNING and +walk.capacity == {"host01": 1}
    assert [(h.seq, h.host_name, h.reason) for h in walk.vm.history] == [
        (0, "host01", HistoryReason.USER),
        (1, "host02", HistoryReason.ERROR),
        (2, "host01", HistoryReason.NONE),
    ]
    assert walk.times(2, "stime", "rstime", "etime") == (1050, 1050, 0)
    assert walk.sent[-2:] == [("POLL", "host01"), hook("RUNNING")]
    assert out.log[0].startswith("Fail to save VM state while migrating.")


def test_live_migrate_moves_the_running_vm_and_frees_the_old_host():
    """§3.3 live migrate: MIGRATE from the old host; success closes the old record."""
    walk = deployed()
    walk.do(E.LIVEMIGRATE, HOST02)
    assert walk.pair == At.MIGRATE and walk.sent[-1] == ("MIGRATE", "host01")
    walk.do(E.MIGRATE_SUCCESS)
    assert walk.pair == At.RUNNING and +walk.capacity == {"host02": 1}
    assert walk.times(0, "etime", "retime", "reason") == (1050, 1050, HistoryReason.USER)
    assert walk.times(1, "stime", "rstime", "pstime") == (1040, 1050, 0)


def test_a_failed_live_migration_goes_back_to_running_on_the_old_host_and_polls():
    """§3.3 live migrate step 3: the same rollback as a failed cold save."""
    walk = deployed()
    walk.do(E.LIVEMIGRATE, HOST02)
    out = walk.do(E.MIGRATE_FAILURE)
    assert walk.pair == At.RUNNING and +walk.capacity == {"host01": 1}
    assert walk.host("current") == "host01" and len(walk.vm.history) == 3
    assert walk.vm.history[1].reason == HistoryReason.ERROR
    assert walk.sent[-2:] == [("POLL", "host01"), hook("RUNNING")]
    assert (
        out.log[0]
        == "Fail to life migrate VM. Assuming that the VM is still RUNNING (will poll VM)."
    )


@pytest.mark.parametrize(
    ("events", "failure", "time_field"),
    [
        ((), E.PROLOG_FAILURE, "petime"),
        ((E.PROLOG_SUCCESS,), E.DEPLOY_FAILURE, "retime"),
        (
            (E.PROLOG_SUCCESS, E.DEPLOY_SUCCESS, E.SHUTDOWN, E.SHUTDOWN_SUCCESS),
            E.EPILOG_FAILURE,
            "eetime",
        ),
        ((E.PROLOG_SUCCESS, E.DEPLOY_SUCCESS, E.STOP, E.SAVE_SUCCESS), E.EPILOG_FAILURE, "eetime"),
        ((E.PROLOG_SUCCESS, E.DEPLOY_SUCCESS), E.POLL_FAILED, "retime"),
    ],
    ids=["prolog", "boot", "epilog", "epilog-stop", "poll-e"],
)
def test_a_failure_at_prolog_boot_or_epilog_leaves_the_vm_failed_and_the_host_free(
    events, failure, time_field
):
    """§3.3 Failure: reason ERROR, end time and ETIME, capacity and leases back, TM delete."""
    walk = Walk()
    walk.do(E.DEPLOY, HOST01)
    for event in events:
        walk.do(event)
    out = walk.do(failure)
    assert walk.pair == At.FAILED and +walk.capacity == {}
    last = walk.vm.history[-1]
    assert (last.reason, last.etime, getattr(last, time_field)) == (
        HistoryReason.ERROR,
        walk.now,
        walk.now,
    )
    assert walk.vm.etime == walk.now
    assert out.effects[-2:] == (tm("delete"), hook("FAILED"))
    assert LEASES in out.effects  # NOTE: given back at FAILED, not only at DONE as in 1.4
    walk.do(E.DELETE)
    assert walk.pair == At.DONE and walk.vm.etime == walk.now - 10


def test_a_vm_the_hypervisor_lost_goes_unknown_and_restart_deploys_it_again():
    """POLL d -> UNKNOWN; restart -> BOOT and DEPLOY on the same host; no history change."""
    walk = deployed()
    out = walk.do(E.POLL_DELETED)
    assert walk.pair == At.UNKNOWN and out.log[0].startswith("VM running but it was not found.")
    walk.do(E.RESTART)
    assert walk.pair == At.BOOT and walk.sent[-1] == ("DEPLOY", "host01")
    walk.do(E.DEPLOY_SUCCESS)
    assert walk.pair == At.RUNNING and len(walk.vm.history) == 1


def test_a_vm_found_again_by_poll_is_running_and_fires_the_running_hook_once():
    """POLL a in UNKNOWN -> RUNNING; POLL a in RUNNING changes nothing and fires nothing."""
    walk = deployed()
    walk.do(E.POLL_DELETED)
    found = walk.do(E.POLL_RUNNING)
    assert found.effects == (hook("RUNNING"),)
    assert found.log == ("VM was now found, new state is RUNNING", "New VM state is RUNNING")
    again = walk.do(E.POLL_RUNNING)
    assert (again.effects, again.log, again.history) == ((), (), ())


def test_a_paused_vm_seen_by_poll_is_suspended_and_can_be_resumed():
    """POLL p -> SUSPENDED: the record closes with STOP_RESUME and the host is freed."""
    walk = deployed()
    walk.do(E.POLL_SUSPENDED)
    assert walk.pair == At.SUSPENDED and +walk.capacity == {}
    assert walk.vm.history[0].reason == HistoryReason.STOP_RESUME
    walk.do(E.RESUME)
    walk.do(E.RESTORE_SUCCESS)
    assert walk.pair == At.RUNNING and walk.capacity == {"host01": 1}


def test_hold_and_release_only_move_between_pending_and_hold():
    """§3.2: no history, no effects (modern OpenNebula also deploys a held VM)."""
    walk = Walk()
    assert walk.do(E.HOLD).effects == ()
    assert walk.pair == At.HOLD and allowed(*walk.pair, E.DEPLOY)
    walk.do(E.RELEASE)
    walk.do(E.DEPLOY, HOST01)
    assert walk.pair == At.PROLOG


def test_restart_in_boot_sends_deploy_again_without_moving():
    """§3.3 restart from BOOT only logs "Sending BOOT command to VM again"."""
    walk = Walk()
    walk.do(E.DEPLOY, HOST01)
    walk.do(E.PROLOG_SUCCESS)
    out = walk.do(E.RESTART)
    assert (out.effects, out.log) == ((vmm("DEPLOY"),), ("Sending BOOT command to VM again",))
    walk.do(E.DEPLOY_SUCCESS)
    assert isinstance(step(walk.vm, E.DEPLOY_SUCCESS, now=1), Ignored)


def test_replies_after_delete_are_ignored():
    """Delete while saving: the SAVE reply, and the TM delete reply, find the VM DONE."""
    walk = deployed()
    walk.do(E.SUSPEND)
    walk.do(E.DELETE)
    assert walk.pair == At.DONE and +walk.capacity == {}
    late = step(walk.vm, E.SAVE_SUCCESS, now=2000)
    assert isinstance(late, Ignored)
    assert late.reason == (
        "SAVE_SUCCESS ignored: VM 7 is DONE, expected in ACTIVE/SAVE_STOP, "
        "ACTIVE/SAVE_SUSPEND or ACTIVE/SAVE_MIGRATE"
    )
    assert tm_event(*walk.pair, True) is None


def test_deleting_a_suspended_vm_removes_its_files_from_the_host():
    """§3.4 SUSPENDED: TM delete on the host that keeps the checkpoint."""
    walk = deployed(HOST02)
    walk.do(E.SUSPEND)
    walk.do(E.SAVE_SUCCESS)
    walk.do(E.DELETE)
    assert walk.sent[-3:] == [LEASES, ("delete", "host02"), hook("DONE")]


def test_applied_leaves_the_original_vm_untouched():
    """Pure: the shell decides when the new values replace the old."""
    walk = deployed()
    before = walk.vm
    out = step(before, E.SHUTDOWN, now=5)
    assert isinstance(out, Outcome)
    after = applied(before, out)
    assert (before.lcm_state, after.lcm_state) == (LcmState.RUNNING, LcmState.SHUTDOWN)
    assert (after.prev_state, after.prev_lcm_state) == At.RUNNING


def test_allocate_runs_the_create_hooks():
    """§2 Hooks: CREATE fires after allocate, outside the table."""
    assert [hook("CREATE")] == list(ALLOCATE_EFFECTS)


# -- Driver replies to events ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "success", "event"),
    [
        ("DEPLOY", True, E.DEPLOY_SUCCESS),
        ("DEPLOY", False, E.DEPLOY_FAILURE),
        ("SHUTDOWN", True, E.SHUTDOWN_SUCCESS),
        ("CANCEL", False, E.CANCEL_FAILURE),
        ("SAVE", True, E.SAVE_SUCCESS),
        ("RESTORE", True, E.RESTORE_SUCCESS),
        ("MIGRATE", False, E.MIGRATE_FAILURE),
        ("POLL", True, None),
        ("CHECKPOINT", True, None),
    ],
)
def test_vmm_replies_map_to_their_events(action, success, event):
    """§1.5: one event per action and result; POLL goes through poll_event."""
    assert vmm_event(action, success) == event


@pytest.mark.parametrize(
    ("pair", "success", "event"),
    [
        (At.PROLOG, True, E.PROLOG_SUCCESS),
        (At.PROLOG_MIGRATE, False, E.PROLOG_FAILURE),
        (At.PROLOG_RESUME, True, E.PROLOG_SUCCESS),
        (At.EPILOG, True, E.EPILOG_SUCCESS),
        (At.EPILOG_STOP, False, E.EPILOG_FAILURE),
        (At.RUNNING, True, None),
        (At.FAILED, True, None),
        (At.DONE, False, None),
    ],
)
def test_tm_replies_map_by_the_state_the_vm_is_in(pair, success, event):
    """§1.6: PROLOG* -> PROLOG_*, EPILOG* -> EPILOG_*, anything else is a wrong-state answer."""
    assert tm_event(*pair, success) == event


def test_poll_states_map_to_their_events():
    """§1.5: a, p, e, d; "-" and no STATE at all change nothing."""
    assert [poll_event(s) for s in ("a", "p", "e", "d", "-", None, "x")] == [
        E.POLL_RUNNING,
        E.POLL_SUSPENDED,
        E.POLL_FAILED,
        E.POLL_DELETED,
        E.POLL_UNKNOWN,
        E.POLL_UNKNOWN,
        E.POLL_UNKNOWN,
    ]


def test_the_lifecycle_modules_load_neither_twisted_nor_sqlalchemy():
    """DESIGN §3: the transition table is a pure module."""
    code = (
        "import sys, oned.lifecycle; "
        "print(','.join(m for m in sys.modules if m.split('.')[0] in ('twisted', 'sqlalchemy')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stderr


# -- Random walks -------------------------------------------------------------------------

HOSTS = (HOST01, HOST02, HOST03)


def next_event(data, pair):
    """Mostly an event the VM waits for, seldom a failure or delete (else random walks end
    early), sometimes any event at all."""
    fitting = [e for e in Event if e != E.DELETE and allowed(*pair, e)]
    going_on = [e for e in fitting if "FAIL" not in e] or fitting
    roll = data.draw(st.integers(0, 9))
    if roll == 0 or not fitting:
        return data.draw(st.sampled_from(list(Event)))
    if roll in (1, 2):
        return E.DELETE if roll == 1 else data.draw(st.sampled_from(fitting))
    return data.draw(st.sampled_from(going_on))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_events_keep_a_valid_pair_and_balanced_capacity(data):
    """From PENDING, any sequence: valid pairs only; capacity held exactly while ACTIVE, and a
    delete at any point gives all of it back."""
    walk = Walk()
    for _ in range(data.draw(st.integers(0, 80))):
        if walk.pair == At.DONE:
            break
        event, host = next_event(data, walk.pair), data.draw(st.sampled_from(HOSTS))
        try:
            out = walk.feed(event, host)
        except ActionNotAllowed:
            assert event in USER_ACTIONS
        else:
            assert isinstance(out, Outcome) or event not in USER_ACTIONS
        assert walk.pair in VALID_PAIRS
        held = sum(walk.capacity.values())
        if walk.vm.state != VmState.ACTIVE:
            assert held == 0, (walk.pair, walk.capacity)
        else:
            both = walk.pair in (At.MIGRATE, At.SAVE_MIGRATE)
            assert held == (2 if both else 1), (walk.pair, walk.capacity)
            assert walk.capacity[walk.host("current")] >= 1
        if walk.pair != At.DONE:
            deleted = walk.copy()
            deleted.do(E.DELETE)
            assert +deleted.capacity == {}, f"delete in {label(walk.pair)} keeps {deleted.capacity}"
