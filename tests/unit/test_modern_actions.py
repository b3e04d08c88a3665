"""Modern OpenNebula's action rules in the one lifecycle table (issue 12, findings 1 and 6)."""

from __future__ import annotations

import pytest

from oned.api.vm_actions import ACTIONS
from oned.errors import ActionNotAllowed, AllocateError, TemplateParseError
from oned.lifecycle import (
    AddCapacity,
    At,
    Event,
    HostRef,
    Outcome,
    ReleaseLeases,
    RunHooks,
    TmTransfer,
    check,
    state_name,
    step,
)
from oned.records import History, Vm
from oned.states import HistoryReason
from oned.template import Template

E = Event
HOST = HostRef(1, "host02", "vmm_kvm", "tm_ssh", "/srv/cloud/one/var")
ADD, LEASES, DONE = AddCapacity(), ReleaseLeases(), RunHooks("DONE")

# (source, event, after a stop, target, effects): the rows modern OpenNebula added to 1.4's;
# tests/unit/test_lifecycle.py counts them in its "whole table" check.
MODERN_ROWS = [
    (At.HOLD, E.DEPLOY, False, At.PROLOG, (ADD, TmTransfer("prolog"))),
    (At.HOLD, E.DEPLOY, True, At.PROLOG_RESUME, (ADD, TmTransfer("resume"))),
    (At.STOPPED, E.DEPLOY, True, At.PROLOG_RESUME, (ADD, TmTransfer("resume"))),
    (At.PENDING, E.SHUTDOWN, False, At.DONE, (LEASES, DONE)),
    (At.HOLD, E.SHUTDOWN, False, At.DONE, (LEASES, DONE)),
    (At.STOPPED, E.SHUTDOWN, True, At.DONE, (LEASES, DONE)),
    (At.PENDING, E.CANCEL, False, At.DONE, (LEASES, DONE)),
    (At.HOLD, E.CANCEL, False, At.DONE, (LEASES, DONE)),
    (At.STOPPED, E.CANCEL, True, At.DONE, (LEASES, DONE)),
]


def vm_at(pair, after_stop=False):
    reason = HistoryReason.STOP_RESUME if after_stop else HistoryReason.NONE
    history = [History(7, 0, "host01", 0, "/srv/cloud/one/var", "vmm_kvm", "tm_ssh", reason=reason)]
    return Vm(7, 0, "ttylinux", Template(), state=pair[0], lcm_state=pair[1], history=history)


@pytest.mark.parametrize(
    ("source", "event", "after_stop", "target", "effects"),
    MODERN_ROWS,
    ids=[f"{state_name(*r[0])}-{r[1]}{'-after-stop' if r[2] else ''}" for r in MODERN_ROWS],
)
def test_modern_rows_move_the_vm_as_opennebula_6_does(source, event, after_stop, target, effects):
    """Findings 1 and 6: deploy from HOLD/STOPPED, terminate(-hard) of a VM on no host."""
    out = step(vm_at(source, after_stop), event, now=500, host=HOST)
    assert isinstance(out, Outcome)
    assert ((out.state, out.lcm_state), out.effects) == (target, effects)


def test_a_held_vm_can_be_deployed_by_hand():
    """Finding 1: `onevm create --hold` then `onevm deploy` was refused ("allowed in PENDING")."""
    check(*At.HOLD, E.DEPLOY, 7, "one.vm.deploy")


@pytest.mark.parametrize("name", ["terminate", "terminate-hard", "shutdown", "cancel"])
@pytest.mark.parametrize("pair", [At.PENDING, At.HOLD])
def test_terminate_ends_a_pending_or_held_vm(name, pair):
    """Finding 6: terminate of a PENDING VM was refused ("cancel is allowed in ACTIVE/RUNNING")."""
    out = step(vm_at(pair), ACTIONS[name], now=500)
    assert isinstance(out, Outcome) and (out.state, out.lcm_state) == At.DONE


def test_1_4_rules_stay_where_modern_ones_agree():
    """A running VM's shutdown still goes through SHUTDOWN; hold still wants PENDING."""
    out = step(vm_at(At.RUNNING), ACTIONS["terminate"], now=500)
    assert isinstance(out, Outcome) and (out.state, out.lcm_state) == At.SHUTDOWN
    with pytest.raises(ActionNotAllowed, match="hold is allowed in PENDING"):
        check(*At.STOPPED, E.HOLD, 7)


def test_error_codes_are_opennebulas_for_the_same_mistakes():
    """Finding 6: a failed allocate (a name taken) and a template that does not parse are
    INTERNAL (0x2000) in OpenNebula's RequestManagerAllocate; ours said 0x4000 and 0x1000."""
    assert AllocateError.code == 0x2000 and TemplateParseError.code == 0x2000
