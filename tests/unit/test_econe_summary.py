"""The VM summary (`one.vmpool.info`, the change feed's VMs) carries what econe reads of an
instance (the ECONE vector, EC2_TAGS): a row made from it is the row the full VM gives."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from econe import instances
from oned import template, views
from oned.records import Vm

TEXT = """NAME = "eco-vm"
MEMORY = 64
CPU = 0.1
DISK = [ IMAGE_ID = 3, SOURCE = "/srv/images/3" ]
NIC = [ NETWORK = "public", IP = "10.0.0.5", MODEL = "virtio" ]
CONTEXT = [ SSH_PUBLIC_KEY = "ssh-ed25519 AAAA me@x", USER_DATA = "aGk=" ]
EC2_TAGS = "Name=web%20%26%20db&role=front"
ECONE = [ INSTANCE_TYPE = "m1.small", IMAGE_ID = "ami-00000003", KEY_NAME = "k",
  CLIENT_TOKEN = "tok-1", RESERVATION = "r-00000009", LAUNCH_INDEX = "1" ]
"""


def test_the_summary_carries_the_econe_vector_and_ec2_tags():
    vm = Vm(9, 7, "eco-vm", template.parse(TEXT), state=3, lcm_state=3, stime=100)
    short = ET.fromstring(views.vm_short_xml(vm, "alice"))
    assert short.findtext("TEMPLATE/ECONE/CLIENT_TOKEN") == "tok-1"
    assert short.findtext("TEMPLATE/EC2_TAGS") == "Name=web%20%26%20db&role=front"
    assert short.find("TEMPLATE/CONTEXT") is None  # the rest stays out of the summary
    assert short.find("TEMPLATE/DISK/SOURCE") is None
    full = ET.fromstring(views.vm_xml(vm, "alice"))
    assert instances._row(short) == instances._row(full)
    assert instances._row(short)["tags"] == {"Name": "web & db", "role": "front"}
