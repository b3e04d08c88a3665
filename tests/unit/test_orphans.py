"""The instances a cloud's monitoring lists (oned/orphans.py): parsed strictly, taken out of
the host's attributes."""

from oned.orphans import listed_instances
from oned.template import parse


def test_listed_instances_are_taken_out_and_malformed_ones_skipped():
    template = parse(
        'HYPERVISOR = ec2\nVM = [ ID = "7", DEPLOY_ID = "i-0abc" ]\n'
        'VM = [ ID = "x", DEPLOY_ID = "i-1" ]\nVM = [ ID = "8", DEPLOY_ID = "a b" ]\n'
        'VM = "9"\nVM = [ ID = "10", DEPLOY_ID = "i-10" ]\n'
    )
    assert listed_instances(template) == [(7, "i-0abc"), (10, "i-10")]
    assert template.get_all("VM") == [] and template.get_str("HYPERVISOR") == "ec2"
