"""one_vmm_ec2's REBOOT and RESET against moto's EC2 server: both are RebootInstances on the
VM's instance (EC2 has no hard reboot), and an instance EC2 does not know fails the action."""

from __future__ import annotations

from tests.functional import test_ec2_driver as ec2_driver
from tests.functional.moto_region import KNOWN_AMI

region, location, driver = ec2_driver.region, ec2_driver.location, ec2_driver.driver  # fixtures


def state_of(ec2, instance: str) -> str:
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return found["State"]["Name"]


def test_reboot_and_reset_are_reboot_instances_of_the_vms_instance(location, driver, region):
    """Each is one RebootInstances that reaches the instance: moto marks a rebooted instance
    running, so one stopped behind the driver's back comes back (real EC2 would not; here it
    tells which instance the call named)."""
    ec2, one = region.client(), driver()
    iid = one.ask(ec2_driver.deployment(location, 7, f"<AMI>{KNOWN_AMI}</AMI>")).split()[-1]
    for action in ("REBOOT", "RESET"):
        ec2.stop_instances(InstanceIds=[iid])
        assert state_of(ec2, iid) == "stopped"
        before = region.calls()["RebootInstances"]
        assert one.ask(f"{action} 7 ec2 {iid} -") == f"{action} SUCCESS 7 -"
        assert region.calls()["RebootInstances"] - before == 1
        assert state_of(ec2, iid) == "running"


def test_a_reboot_of_an_instance_ec2_does_not_know_fails_with_ec2s_code(driver):
    assert driver().ask("REBOOT 8 ec2 i-0123456789abcdef0 -") == (
        "REBOOT FAILURE 8 RebootInstances: InvalidInstanceID.NotFound: "
        "The instance ID 'i-0123456789abcdef0' does not exist"
    )
