"""The reconciliation table (issue 11, finding 1): what oned does at start with a VM found in each
transient state, and which reply ``onevm recover --success/--failure`` stands for."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from oned import lifecycle as lc
from oned import reconcile
from oned.lifecycle_effects import TmTransfer, VmmAction
from oned.reconcile import Poll, Resend
from oned.states import HistoryReason, LcmState, VmState

E, L = lc.Event, LcmState


@dataclass
class H:
    reason: int = HistoryReason.NONE
    pstime: int = 0


@dataclass
class V:
    lcm_state: int
    history: list[H] = field(default_factory=lambda: [H(pstime=10)])
    state: int = VmState.ACTIVE


FIRST_DEPLOY = [H(pstime=10)]
AFTER_STOP = [H(HistoryReason.STOP_RESUME, 10), H(pstime=20)]
AFTER_SUSPEND = [H(HistoryReason.STOP_RESUME, 10), H(pstime=0)]
COLD_MIGRATED = [H(HistoryReason.USER, 10), H(pstime=20)]
LIVE_MIGRATED = [H(HistoryReason.USER, 10), H(pstime=0)]


@pytest.mark.parametrize(
    ("lcm_state", "history", "decision"),
    [
        (L.PROLOG, FIRST_DEPLOY, Resend(TmTransfer("prolog"))),
        (L.PROLOG_MIGRATE, COLD_MIGRATED, Resend(TmTransfer("migrate"))),
        (L.PROLOG_RESUME, AFTER_STOP, Resend(TmTransfer("resume"))),
        (L.BOOT, FIRST_DEPLOY, Resend(VmmAction("DEPLOY"))),
        (L.BOOT, LIVE_MIGRATED, Resend(VmmAction("DEPLOY"))),  # a RESTART after a live one
        (L.BOOT, AFTER_STOP, Resend(VmmAction("RESTORE"))),
        (L.BOOT, AFTER_SUSPEND, Resend(VmmAction("RESTORE"))),
        (L.BOOT, COLD_MIGRATED, Resend(VmmAction("RESTORE"))),
        (L.SHUTDOWN, FIRST_DEPLOY, Resend(VmmAction("SHUTDOWN"))),
        (L.CANCEL, FIRST_DEPLOY, Resend(VmmAction("CANCEL"))),
        (L.EPILOG, FIRST_DEPLOY, Resend(TmTransfer("epilog"))),
        (L.EPILOG_STOP, FIRST_DEPLOY, Resend(TmTransfer("stop"))),
        (
            L.SAVE_STOP,
            FIRST_DEPLOY,
            Poll("current", E.SAVE_FAILURE, E.SAVE_SUCCESS, E.SAVE_FAILURE),
        ),
        (
            L.SAVE_SUSPEND,
            FIRST_DEPLOY,
            Poll("current", E.SAVE_FAILURE, E.SAVE_SUCCESS, E.SAVE_FAILURE),
        ),
        (
            L.SAVE_MIGRATE,
            LIVE_MIGRATED,
            Poll("previous", E.SAVE_FAILURE, E.SAVE_SUCCESS, E.SAVE_FAILURE),
        ),
        (
            L.MIGRATE,
            LIVE_MIGRATED,
            Poll("current", E.MIGRATE_SUCCESS, E.MIGRATE_FAILURE, E.MIGRATE_FAILURE),
        ),
        (L.RUNNING, FIRST_DEPLOY, None),
        (L.UNKNOWN, FIRST_DEPLOY, None),
    ],
)
def test_each_transient_state_is_reconciled_by_resending_or_polling(lcm_state, history, decision):
    """Transfers, DEPLOY, SHUTDOWN and CANCEL are sent again; SAVE and MIGRATE are polled."""
    assert reconcile.decide(V(lcm_state, history)) == decision


@pytest.mark.parametrize("state", [s for s in VmState if s != VmState.ACTIVE])
def test_vms_outside_active_are_never_reconciled(state):
    """PENDING, HOLD, STOPPED, SUSPENDED, FAILED, DONE wait for no driver."""
    assert reconcile.decide(V(L.LCM_INIT, state=state)) is None
    assert reconcile.recover_event(V(L.LCM_INIT, state=state), True) is None


def test_every_active_state_but_running_and_unknown_is_transient():
    """Nothing that waits for a driver is left out of the table."""
    left = {lcm for _, lcm in lc.ACTIVE_PAIRS} - set(reconcile.TRANSIENT)
    assert left == {L.RUNNING, L.UNKNOWN}


@pytest.mark.parametrize(
    ("answer", "event"),
    [("a", E.SAVE_FAILURE), ("d", E.SAVE_SUCCESS), ("p", E.SAVE_FAILURE), (None, E.SAVE_FAILURE)],
)
def test_a_save_found_running_goes_back_to_running_and_one_found_gone_was_saved(answer, event):
    """POLL STATE=a: the SAVE did not happen; STATE=d: the domain is gone, the save did."""
    poll = reconcile.decide(V(L.SAVE_STOP))
    assert isinstance(poll, Poll) and poll.event(answer) == event


@pytest.mark.parametrize("answer", ["d", "e", None])
def test_a_live_migration_not_found_on_the_new_host_rolls_back(answer):
    """Only STATE=a on the new host means the migration arrived."""
    poll = reconcile.decide(V(L.MIGRATE, LIVE_MIGRATED))
    assert isinstance(poll, Poll)
    assert (poll.event("a"), poll.event(answer)) == (E.MIGRATE_SUCCESS, E.MIGRATE_FAILURE)


@pytest.mark.parametrize(
    ("lcm_state", "history", "success", "failure"),
    [
        (L.PROLOG, FIRST_DEPLOY, E.PROLOG_SUCCESS, E.PROLOG_FAILURE),
        (L.BOOT, FIRST_DEPLOY, E.DEPLOY_SUCCESS, E.DEPLOY_FAILURE),
        (L.BOOT, AFTER_SUSPEND, E.RESTORE_SUCCESS, E.RESTORE_FAILURE),
        (L.SHUTDOWN, FIRST_DEPLOY, E.SHUTDOWN_SUCCESS, E.SHUTDOWN_FAILURE),
        (L.EPILOG_STOP, FIRST_DEPLOY, E.EPILOG_SUCCESS, E.EPILOG_FAILURE),
        (L.SAVE_MIGRATE, LIVE_MIGRATED, E.SAVE_SUCCESS, E.SAVE_FAILURE),
        (L.MIGRATE, LIVE_MIGRATED, E.MIGRATE_SUCCESS, E.MIGRATE_FAILURE),
    ],
)
def test_recover_stands_for_the_reply_of_the_request_in_flight(
    lcm_state, history, success, failure
):
    """--success and --failure are the two replies the state waits for."""
    vm = V(lcm_state, history)
    assert (reconcile.recover_event(vm, True), reconcile.recover_event(vm, False)) == (
        success,
        failure,
    )


@pytest.mark.parametrize("lcm_state", list(reconcile.TRANSIENT))
def test_every_recover_event_has_a_row_in_the_lifecycle_table(lcm_state):
    """Forcing an outcome never meets a state that ignores it."""
    vm = V(lcm_state, AFTER_SUSPEND if lcm_state == L.BOOT else FIRST_DEPLOY)
    for success in (True, False):
        event = reconcile.recover_event(vm, success)
        assert event is not None and lc.allowed(VmState.ACTIVE, lcm_state, event)
    poll = reconcile.TRANSIENT[lcm_state].poll
    for event in (poll.running, poll.deleted, poll.otherwise) if poll else ():
        assert lc.allowed(VmState.ACTIVE, lcm_state, event)
