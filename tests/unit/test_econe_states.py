"""The state tables are total: every onecloud VM state (and LCM state) and image state has an
EC2 name with its code (OpenNebula 1.4's econe had two that mapped to nothing)."""

from __future__ import annotations

import itertools

import botocore.session
import pytest

from econe import states
from oned.states import ImageState, LcmState, VmState

EC2 = botocore.session.get_session().get_service_model("ec2")


@pytest.mark.parametrize("state, lcm", list(itertools.product(VmState, LcmState)))
def test_every_state_and_lcm_state_pair_maps_to_an_ec2_state(state, lcm):
    name, code = states.instance_state(state, lcm)
    assert states.INSTANCE_CODES[name] == code


def test_the_tables_name_every_member_explicitly():
    """The fallback is for numbers added later, not for states forgotten now."""
    assert set(states.VM_STATES) == set(VmState) - {VmState.ACTIVE}
    assert set(states.LCM_STATES) == set(LcmState)
    assert set(states.IMAGE_STATES) == set(ImageState)


def test_the_names_are_the_models_own():
    assert set(states.INSTANCE_CODES) == set(EC2.shape_for("InstanceStateName").enum)
    assert set(states.IMAGE_STATES.values()) <= set(EC2.shape_for("ImageState").enum)


@pytest.mark.parametrize(
    "state, lcm, expected",
    [
        (VmState.PENDING, 0, ("pending", 0)),
        (VmState.HOLD, 0, ("pending", 0)),
        (VmState.ACTIVE, LcmState.PROLOG, ("pending", 0)),
        (VmState.ACTIVE, LcmState.BOOT, ("pending", 0)),
        (VmState.ACTIVE, LcmState.RUNNING, ("running", 16)),
        (VmState.ACTIVE, LcmState.MIGRATE, ("running", 16)),
        (VmState.ACTIVE, LcmState.SAVE_STOP, ("stopping", 64)),
        (VmState.ACTIVE, LcmState.EPILOG, ("shutting-down", 32)),
        (VmState.ACTIVE, LcmState.SHUTDOWN, ("shutting-down", 32)),
        (VmState.ACTIVE, LcmState.UNKNOWN, ("stopped", 80)),
        (VmState.STOPPED, 0, ("stopped", 80)),
        (VmState.SUSPENDED, 0, ("stopped", 80)),
        (VmState.POWEROFF, 0, ("stopped", 80)),
        (VmState.DONE, 0, ("terminated", 48)),
        (VmState.FAILED, 0, ("terminated", 48)),
    ],
)
def test_the_states_a_client_waits_on(state, lcm, expected):
    assert states.instance_state(state, lcm) == expected


def test_numbers_not_known_yet_still_map():
    assert states.instance_state(99, 0) == ("pending", 0)
    assert states.instance_state(VmState.ACTIVE, 99) == ("pending", 0)
    assert states.image_state(99) == "transient"


@pytest.mark.parametrize(
    "state, expected",
    [
        (ImageState.READY, "available"),
        (ImageState.USED, "available"),
        (ImageState.INIT, "pending"),
        (ImageState.LOCKED, "pending"),
        (ImageState.ERROR, "failed"),
        (ImageState.DISABLED, "disabled"),
        (ImageState.DELETE, "deregistered"),
    ],
)
def test_image_states(state, expected):
    assert states.image_state(state) == expected
