"""EC2 regions in placement (issue 14): a VM goes to an EC2 host only with a section meant for
it, and never beyond the instance limits the region reports as EC2_FREE_<TYPE>."""

import xml.etree.ElementTree as ET

import pytest

from scheduler import ec2
from scheduler.ec2 import Section
from scheduler.pools import PendingVm, vm_from_xml
from tests.unit.test_placement import GB, host, plan_of, where


def region(hid=9, name="ec2", limits=None, **free):
    """An EC2 host as im_ec2 monitors it: 5 m1.small (TCPU 500, 8.5 GB) unless told."""
    counts = {f"EC2_FREE_{k.upper()}": v for k, v in (free or {"m1_small": 5}).items()}
    counts |= {f"EC2_LIMIT_{k.upper()}": v for k, v in (limits or {}).items()}
    return host(hid, name, cpu=500, mem=8912896, HYPERVISOR="ec2", **counts)


def ec2_vm(vid, *sections, cpu=0.5, memory=256, requirements=""):
    parts = tuple(Section(*s) for s in sections)
    return PendingVm(vid, 0, f"vm{vid}", cpu, memory, requirements, "", parts)


@pytest.mark.parametrize(
    ("sections", "host_name", "chosen"),
    [
        ((("ec2", "m1.small"),), "ec2", ("ec2", "m1.small")),
        ((("EC2", "m1.small"),), "ec2", ("EC2", "m1.small")),  # CLOUD is case-insensitive
        ((("", "m1.large"),), "ec2", ("", "m1.large")),  # a lone section without CLOUD
        ((("us", "m1.small"), ("eu", "m1.large")), "eu", ("eu", "m1.large")),
        ((("us", "m1.small"),), "eu", None),  # meant for another region
        ((("", "m1.small"), ("", "m1.large")), "eu", None),  # which one? vmm_ec2 refuses too
        ((), "ec2", None),
    ],
)
def test_the_section_for_a_host_is_the_one_vmm_ec2_uses(sections, host_name, chosen):
    found = ec2.section_for(tuple(Section(*s) for s in sections), host_name)
    assert (found and (found.cloud, found.instance_type)) == (chosen and tuple(chosen))


def test_a_vm_without_a_section_for_the_region_is_never_placed_there():
    plan = plan_of([ec2_vm(1)], [region()])
    assert not plan.placements
    assert "ec2: no EC2 section for this host" in plan.reasons[1]


def test_hosts_that_are_not_ec2_ignore_the_sections():
    plan = plan_of([ec2_vm(1, ("ec2", "m1.small"))], [host(1)])
    assert where(plan) == {1: "host01"}


def test_no_more_instances_of_a_type_than_the_region_offers_in_one_round():
    """Five m1.small left: CPU 0.1 each would let 50 fit by TOTALCPU, the limit lets 5."""
    vms = [ec2_vm(i, ("ec2", "m1.small"), cpu=0.1, memory=64) for i in range(8)]
    plan = plan_of(vms, [region()], max_host=100, max_dispatch=100)
    assert len(plan.placements) == 5
    assert all("no m1.small instance left" in plan.reasons[i] for i in range(5, 8))


def test_the_count_is_per_type_and_what_the_region_already_runs_is_not_offered():
    vms = [ec2_vm(1, ("ec2", "m1.small")), ec2_vm(2, ("ec2", "m1.large"))]
    plan = plan_of(vms, [region(m1_small=0, m1_large=1)], max_host=10)
    assert where(plan) == {2: "ec2"}
    assert "no m1.small instance left" in plan.reasons[1]


def test_a_type_the_region_does_not_offer_is_named():
    plan = plan_of([ec2_vm(1, ("ec2", "t2.micro"))], [region()])
    assert "instance type t2.micro is not offered (no EC2_FREE_T2_MICRO)" in plan.reasons[1]


def test_a_template_with_a_local_disk_and_a_section_may_go_either_way():
    """Full region: the local host takes it; a VM forced to ec2 by REQUIREMENTS waits."""
    local = ec2_vm(1, ("ec2", "m1.small"))
    forced = ec2_vm(2, ("ec2", "m1.small"), requirements='HOSTNAME = "ec2"')
    plan = plan_of([local, forced], [region(m1_small=0), host(1, mem=16 * GB)], max_host=10)
    assert where(plan) == {1: "host01"}
    assert "no m1.small instance left" in plan.reasons[2]


def test_sections_are_read_from_the_pool_document():
    vm = ET.fromstring(
        "<VM><ID>4</ID><UID>0</UID><NAME>t</NAME><TEMPLATE><CPU>0.5</CPU><MEMORY>64</MEMORY>"
        "<EC2><AMI>ami-1</AMI><CLOUD>ec2</CLOUD><INSTANCETYPE>m1.small</INSTANCETYPE></EC2>"
        "<EC2><AMI>ami-2</AMI><CLOUD>eu</CLOUD></EC2></TEMPLATE></VM>"
    )
    assert vm_from_xml(vm).ec2 == (Section("ec2", "m1.small"), Section("eu", ""))


def test_vms_oned_runs_there_count_against_the_limit_before_monitoring_sees_them():
    """EC2_FREE still says 5 (monitored before the last round's deploys) but oned runs four
    m1.small there: only one more fits."""
    from collections import Counter

    from scheduler.placement import Limits, place
    from tests.unit.test_placement import NOW

    vms = [ec2_vm(i, ("ec2", "m1.small"), cpu=0.1, memory=64) for i in range(3)]
    hosts = [region(m1_small=5, limits={"m1_small": 5})]
    limits = Limits(max_host=10, hypervisor_mem=0.0)
    plan = place(vms, hosts, limits, NOW, {9: Counter({"m1.small": 4})})
    assert where(plan) == {0: "ec2"}
    assert "no m1.small instance left" in plan.reasons[1]
    assert len(place(vms, hosts, limits, NOW).placements) == 3  # without the count


def test_the_instances_oned_runs_are_counted_per_host_and_type_from_the_pool():
    pool = ET.fromstring(
        "<VM_POOL>"
        "<VM><ID>1</ID><TEMPLATE><EC2><CLOUD>ec2</CLOUD><INSTANCETYPE>m1.small</INSTANCETYPE>"
        "</EC2><EC2><CLOUD>eu</CLOUD><INSTANCETYPE>m1.large</INSTANCETYPE></EC2></TEMPLATE>"
        "<HISTORY_RECORDS><HISTORY><HID>9</HID></HISTORY></HISTORY_RECORDS>"
        "<HISTORY><HOSTNAME>ec2</HOSTNAME></HISTORY></VM>"
        "<VM><ID>2</ID><TEMPLATE><EC2><CLOUD>eu</CLOUD><INSTANCETYPE>m1.large</INSTANCETYPE>"
        "</EC2></TEMPLATE><HISTORY_RECORDS><HISTORY><HID>3</HID></HISTORY></HISTORY_RECORDS>"
        "<HISTORY><HOSTNAME>eu</HOSTNAME></HISTORY></VM>"
        "<VM><ID>3</ID><TEMPLATE><DISK><IMAGE>x</IMAGE></DISK></TEMPLATE>"
        "<HISTORY_RECORDS><HISTORY><HID>1</HID></HISTORY></HISTORY_RECORDS>"
        "<HISTORY><HOSTNAME>host01</HOSTNAME></HISTORY></VM>"
        "</VM_POOL>"
    )
    assert ec2.active_instances(pool) == {9: {"m1.small": 1}, 3: {"m1.large": 1}}
