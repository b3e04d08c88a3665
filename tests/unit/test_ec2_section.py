"""vmm_ec2's pure parts (drivers/ec2_section.py): the EC2 section chosen for a host, the
RunInstances arguments made from it, and EC2 states as POLL states."""

from __future__ import annotations

import pytest

from drivers.ec2_conf import parse_conf
from drivers.ec2_section import (
    STATES,
    SectionError,
    choose_section,
    client_token,
    instance_tags,
    instance_type,
    merged,
    parse_ports,
    parse_tags,
    parse_vm,
    poll_info,
    run_arguments,
    security_groups,
)

VM_XML = """<VM><ID>17</ID><NAME>ttylinux</NAME><TEMPLATE><CPU><![CDATA[0.5]]></CPU>
<EC2><AMI><![CDATA[ami-ccf615a5]]></AMI><AUTHORIZED_PORTS>22</AUTHORIZED_PORTS>
<INSTANCETYPE>m1.small</INSTANCETYPE><KEYPAIR>keypair</KEYPAIR></EC2>
<EC2><AMI>ami-0000eu01</AMI><CLOUD>EC2-Europe</CLOUD></EC2></TEMPLATE></VM>"""
LIMITS = parse_conf("SMALL_INSTANCES=5\nLARGE_INSTANCES=\n").limits


def test_the_vms_xml_gives_its_id_name_and_every_ec2_section():
    vm = parse_vm(VM_XML)
    assert (vm.id, vm.name, len(vm.sections)) == ("17", "ttylinux", 2)
    assert vm.sections[0]["AMI"] == "ami-ccf615a5"


@pytest.mark.parametrize(
    "host, ami",
    [("ec2-europe", "ami-0000eu01"), ("EC2-EUROPE", "ami-0000eu01")],
)
def test_the_section_whose_cloud_is_the_host_wins_case_insensitively(host, ami):
    assert choose_section(parse_vm(VM_XML).sections, host)["AMI"] == ami


def test_a_lone_section_without_cloud_serves_any_ec2_host():
    assert choose_section(({"AMI": "ami-1"},), "ec2")["AMI"] == "ami-1"


@pytest.mark.parametrize(
    "sections",
    [(), ({"AMI": "ami-1", "CLOUD": "elsewhere"},), ({"AMI": "a"}, {"AMI": "b"})],
)
def test_no_section_for_the_host_fails_naming_ec2_cloud(sections):
    with pytest.raises(SectionError, match="EC2"):
        choose_section(sections, "ec2")


def test_the_section_overrides_the_drivers_defaults_and_authorized_ports_is_20s_name():
    values = merged(
        {"AUTHORIZED_PORTS": "22", "KEYPAIR": ""},
        {"KEYPAIR": "default", "INSTANCETYPE": "m1.small"},
    )
    assert values == {"KEYPAIR": "default", "INSTANCETYPE": "m1.small", "AUTHORIZEDPORTS": "22"}


def test_run_arguments_carry_every_attribute_the_token_and_tags():
    values = {"AMI": "ami-ccf615a5", "KEYPAIR": "kp", "SUBNETID": "subnet-0123abcd",
              "AVAILABILITYZONE": "us-east-1a", "USERDATA": "#!/bin/sh\necho hi\n"}  # fmt: skip
    token = client_token("c0ffee", "17", "0")
    tags = instance_tags("c0ffee", parse_vm(VM_XML), "17", token, {"team": "web"})
    args = run_arguments(values, "m1.small", token, tags)
    assert args["ImageId"] == "ami-ccf615a5" and args["InstanceType"] == "m1.small"
    assert (args["MinCount"], args["MaxCount"], args["ClientToken"]) == (1, 1, "one-c0ffee-17-0")
    assert args["KeyName"] == "kp" and args["SubnetId"] == "subnet-0123abcd"
    assert args["Placement"] == {"AvailabilityZone": "us-east-1a"}
    assert args["UserData"].startswith("#!/bin/sh")
    pairs = {t["Key"]: t["Value"] for t in args["TagSpecifications"][0]["Tags"]}
    assert pairs == {"team": "web", "Name": "ttylinux", "one:vmid": "17", "one:cloud": "c0ffee",
                     "one:token": "one-c0ffee-17-0"}  # fmt: skip


def test_tokens_differ_by_cloud_vm_and_history_record():
    tokens = {client_token(c, v, s) for c in ("a", "b") for v in ("1", "2") for s in ("0", "1")}
    assert len(tokens) == 8 and all(len(t) <= 64 for t in tokens)


@pytest.mark.parametrize(
    "values, named",
    [
        ({}, "EC2 AMI: missing"),
        ({"AMI": "ami-1 --x"}, "EC2 AMI"),
        ({"AMI": "ami-1", "SUBNETID": "subnet 1"}, "EC2 SUBNETID"),
        ({"AMI": "ami-1", "USERDATA": "x" * 20000}, "EC2 USERDATA"),
    ],
)
def test_bad_values_fail_naming_the_attribute(values, named):
    with pytest.raises(SectionError, match=named):
        run_arguments(values, "m1.small", "t", {})


def test_instance_types_must_have_a_limit_above_zero():
    assert instance_type({}, LIMITS) == "m1.small"
    with pytest.raises(SectionError, match=r"INSTANCETYPE: the limit of m1\.large instances is 0"):
        instance_type({"INSTANCETYPE": "m1.large"}, LIMITS)
    with pytest.raises(SectionError, match=r"INSTANCETYPE: 'x9\.huge' has no limit here"):
        instance_type({"INSTANCETYPE": "x9.huge"}, LIMITS)


def test_ports_tags_and_groups_parse_and_refuse_naming_the_attribute():
    assert parse_ports("80, 22,8000-8080,22") == ((22, 22), (80, 80), (8000, 8080))
    for bad in ("0", "70000", "30-20", "ssh"):
        with pytest.raises(SectionError, match="AUTHORIZED_PORTS"):
            parse_ports(bad)
    assert parse_tags("team=web, env=prod") == {"team": "web", "env": "prod"}
    for bad in ("novalue", "one:vmid=3", "aws:x=1"):
        with pytest.raises(SectionError, match="EC2 TAGS"):
            parse_tags(bad)
    assert security_groups("sg-0a1b, web ,default") == (["sg-0a1b"], ["web", "default"])


def test_every_ec2_instance_state_maps_to_a_poll_state():
    """HOUSE-STYLE shape 8: the table is total over botocore's own InstanceStateName enum."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    assert set(model.shape_for("InstanceStateName").enum) == set(STATES)
    assert set(STATES.values()) <= {"a", "p", "e", "d", "-"}


def test_poll_info_is_the_14_drivers_with_the_ip_of_a_running_instance():
    running = {
        "State": {"Name": "running"},
        "PublicDnsName": "ec2-72-44-62-194.compute-1.amazonaws.com",
    }
    assert poll_info(running) == (
        "USEDMEMORY=0 USEDCPU=0 NETTX=0 NETRX=0 STATE=a IP=ec2-72-44-62-194.compute-1.amazonaws.com"
    )
    assert poll_info({"State": {"Name": "pending"}}).endswith("STATE=a")
    assert poll_info({"State": {"Name": "stopped"}}).endswith("STATE=p")
    assert poll_info({"State": {"Name": "terminated"}}).endswith("STATE=d")
    assert poll_info({"State": {"Name": "new-state"}}).endswith("STATE=-")
    assert poll_info(None).endswith("STATE=d")
    assert "IP=10.0.0.5" in poll_info(
        {"State": {"Name": "running"}, "PrivateIpAddress": "10.0.0.5"}
    )
