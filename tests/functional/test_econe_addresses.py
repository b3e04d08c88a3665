"""Elastic addresses through econe-server in front of a real oned, driven by boto3, awscli and
the econe-* address tools: each address a lease of the public network held in oned, associated
through the operator's command (a script here that records its argv), two users apart, the
per-user limit, a failing command undone, and the book reconciled with oned at a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

import boto3
import botocore.exceptions
import pyone
import pytest
from botocore.config import Config

from tests.functional.oned_process import OnedProcess
from tests.functional.test_econe_server import EconeProcess

ROOT = Path(__file__).resolve().parents[2]
USERS = {"alice": "alicepw", "bob": "bobpw"}
PUBLIC = 'NAME = "Public EC2"\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.20.0.0\n'
PRIVATE = "NAME = private\nTYPE = RANGED\nBRIDGE = br1\nNETWORK_ADDRESS = 192.168.50.0\n"
MAX_ADDRESSES = 4
RECORDER = """#!/bin/sh
if [ -e "{fail}" ]; then echo "no NAT today" >&2; exit 3; fi
echo "$@" >> "{record}"
"""


class Cloud:
    def __init__(self, oned: OnedProcess, econe: EconeProcess, tmp: Path) -> None:
        self.oned, self.econe, self.tmp = oned, econe, tmp
        self.admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        self.record, self.fail = tmp / "nat.log", tmp / "fail"
        self.book = oned.location / "var" / "econe-addresses.json"
        uid = next(u.ID for u in self.admin.userpool.info().USER if u.NAME == "alice")
        self.alice_key = tuple(self.admin.user.ec2keycreate(uid))

    def ec2(self, user: str = "alice"):
        return boto3.client(
            "ec2",
            endpoint_url=self.econe.url,
            region_name="one",
            aws_access_key_id=user,
            aws_secret_access_key=USERS[user],
            config=Config(retries={"max_attempts": 1}),
        )

    def vm(self, user: str = "alice") -> tuple[str, str]:
        """A VM of ``user`` with a NIC on the private network: (instance id, private IP)."""
        client = pyone.OneServer(self.oned.endpoint, session=f"{user}:{USERS[user]}")
        vid = client.vm.allocate('NAME = vm\nMEMORY = 64\nNIC = [ NETWORK = "private" ]')
        return f"i-{vid:08x}", self.admin.vm.info(vid).TEMPLATE["NIC"]["IP"]

    def nat_calls(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []

    def held(self) -> list[str]:
        """The public network's leases on hold (USED 1, VID -1) as oned shows them."""
        with xmlrpc.client.ServerProxy(self.oned.endpoint) as proxy:
            answer = proxy.one.vn.info("oneadmin:onecloud", 0)
        leases = ET.fromstring(answer[1]).iterfind("LEASES/LEASE")
        return [e.findtext("IP", "") for e in leases if e.findtext("VID") == "-1"]

    def elastic_ip(self, instance: str) -> str | None:
        found = self.admin.vm.info(int(instance[2:], 16)).USER_TEMPLATE.get("EC2_ELASTIC_IP")
        return found or None


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("addresses")
    oned = OnedProcess(tmp / "one").start()
    econe = None
    try:
        admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        for user, password in USERS.items():
            admin.user.allocate(user, password)
        admin.vn.allocate(PUBLIC + "NETWORK_SIZE = 6\n")  # 10.20.0.1 - 10.20.0.6
        admin.vn.allocate(PRIVATE + "NETWORK_SIZE = 30\n")
        econe = EconeProcess(
            tmp / "one",
            one_xmlrpc=oned.endpoint,
            server_auth=str(_private(tmp / "server_auth", "oneadmin:onecloud\n")),
            public_network="Public EC2",
            associate_command=[str(tmp / "nat"), "--as-configured"],
            max_addresses=MAX_ADDRESSES,
        )
        _private(
            econe.location / "etc" / "econe_keys", "".join(f"{u} {p}\n" for u, p in USERS.items())
        )
        nat = tmp / "nat"
        nat.write_text(RECORDER.format(fail=tmp / "fail", record=tmp / "nat.log"))
        nat.chmod(0o755)
        econe.start()
        yield Cloud(oned, econe, tmp)
    finally:
        if econe is not None:
            econe.stop()
        oned.stop()


def _private(path: Path, content: str) -> Path:
    path.write_text(content)
    path.chmod(0o600)
    return path


@pytest.fixture
def clean(cloud):
    """Every test starts and ends with no address and no failing command."""
    yield cloud
    cloud.fail.unlink(missing_ok=True)
    for user in USERS:
        ec2 = cloud.ec2(user)
        for address in ec2.describe_addresses()["Addresses"]:
            if "AllocationId" in address:
                ec2.release_address(AllocationId=address["AllocationId"])
            else:
                ec2.release_address(PublicIp=address["PublicIp"])
    assert cloud.held() == []


def error_of(call, *args, **kwargs) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(*args, **kwargs)
    answer = info.value.response
    return answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]


def test_an_address_is_a_held_lease_natted_by_the_operators_command(clean):
    """Allocate holds a lease of the public network; associate writes EC2_ELASTIC_IP and runs
    `CMD associate PUBLIC PRIVATE VID`; a vpc address moved onto the same VM disassociates the
    first; a vpc address in use is not released, a standard one is (disassociated first)."""
    cloud, ec2 = clean, clean.ec2()
    standard = ec2.allocate_address(Domain="standard")
    ip = standard["PublicIp"]
    assert (ip, standard["Domain"], "AllocationId" in standard) == ("10.20.0.1", "standard", False)
    assert cloud.held() == [ip]
    assert cloud.book.stat().st_mode & 0o777 == 0o600
    instance, private = cloud.vm()
    vid = int(instance[2:], 16)
    first = ec2.associate_address(InstanceId=instance, PublicIp=ip)["AssociationId"]
    assert first.startswith("eipassoc-")
    assert cloud.nat_calls() == [f"--as-configured associate {ip} {private} {vid}"]
    assert cloud.elastic_ip(instance) == ip
    again = ec2.associate_address(InstanceId=instance, PublicIp=ip)  # already there: same answer
    assert again["AssociationId"] == first and len(cloud.nat_calls()) == 1
    (listed,) = ec2.describe_addresses()["Addresses"]
    assert (listed["InstanceId"], listed["PrivateIpAddress"], listed["Domain"]) == (
        instance,
        private,
        "standard",
    )
    vpc = ec2.allocate_address(Domain="vpc")
    assert vpc["AllocationId"].startswith("eipalloc-") and len(vpc["AllocationId"]) == 17
    moved = ec2.associate_address(InstanceId=instance, AllocationId=vpc["AllocationId"])
    assert cloud.nat_calls()[1:] == [
        f"--as-configured disassociate {ip} {private} {vid}",
        f"--as-configured associate {vpc['PublicIp']} {private} {vid}",
    ]
    assert cloud.elastic_ip(instance) == vpc["PublicIp"]
    (described,) = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"]
    assert (described["PublicIpAddress"], described["PrivateIpAddress"]) == (
        vpc["PublicIp"],
        private,
    )
    found = ec2.describe_instances(Filters=[{"Name": "ip-address", "Values": [vpc["PublicIp"]]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [instance]
    on_vm = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [instance]}])
    assert [a["PublicIp"] for a in on_vm["Addresses"]] == [vpc["PublicIp"]]
    standard_only = ec2.describe_addresses(Filters=[{"Name": "domain", "Values": ["standard"]}])
    assert [a.get("InstanceId") for a in standard_only["Addresses"]] == [None]
    assert error_of(ec2.release_address, AllocationId=vpc["AllocationId"]) == (
        "InvalidIPAddress.InUse",
        400,
    )
    ec2.disassociate_address(AssociationId=moved["AssociationId"])
    assert cloud.elastic_ip(instance) is None
    ec2.release_address(AllocationId=vpc["AllocationId"])
    assert cloud.held() == [ip]
    ec2.associate_address(InstanceId=instance, PublicIp=ip)
    ec2.release_address(PublicIp=ip)  # standard: disassociated by the release
    assert cloud.nat_calls()[-1] == f"--as-configured disassociate {ip} {private} {vid}"
    assert cloud.held() == [] and ec2.describe_addresses()["Addresses"] == []


def test_a_user_sees_and_changes_only_their_own_addresses(clean):
    """bob's calls on alice's address are NotFound in EC2's words; alice's VM is not bob's."""
    cloud, alice, bob = clean, clean.ec2("alice"), clean.ec2("bob")
    hers = alice.allocate_address(Domain="vpc")
    assert bob.describe_addresses()["Addresses"] == []
    not_found = ("InvalidAddress.NotFound", 400)
    assert error_of(bob.describe_addresses, PublicIps=[hers["PublicIp"]]) == not_found
    assert error_of(bob.release_address, PublicIp=hers["PublicIp"]) == not_found
    no_allocation = ("InvalidAllocationID.NotFound", 400)
    assert error_of(bob.describe_addresses, AllocationIds=[hers["AllocationId"]]) == no_allocation
    assert error_of(bob.release_address, AllocationId=hers["AllocationId"]) == no_allocation
    bobs_vm, _ = cloud.vm("bob")
    assert (
        error_of(bob.associate_address, InstanceId=bobs_vm, AllocationId=hers["AllocationId"])
        == no_allocation
    )
    his = bob.allocate_address()
    alices_vm, _ = cloud.vm("alice")
    code, status = error_of(bob.associate_address, InstanceId=alices_vm, PublicIp=his["PublicIp"])
    assert (code, status) == ("UnauthorizedOperation", 403) and cloud.elastic_ip(alices_vm) is None
    assert [a["PublicIp"] for a in alice.describe_addresses()["Addresses"]] == [hers["PublicIp"]]
    assert error_of(alice.describe_addresses, PublicIps=["10.20.0.99"]) == not_found
    assert error_of(alice.release_address, PublicIp="not an address") == not_found


def test_the_per_user_limit_and_a_full_network(clean):
    """max_addresses per user (AddressLimitExceeded), then the 6 addresses of the network
    (InsufficientAddressCapacity)."""
    alice, bob = clean.ec2("alice"), clean.ec2("bob")
    for _ in range(MAX_ADDRESSES):
        alice.allocate_address()
    assert error_of(alice.allocate_address) == ("AddressLimitExceeded", 400)
    bob.allocate_address()
    bob.allocate_address()
    assert error_of(bob.allocate_address) == ("InsufficientAddressCapacity", 400)
    assert len(clean.held()) == 6
    assert error_of(alice.allocate_address, Domain="nowhere") == ("InvalidParameterValue", 400)


def test_a_failing_associate_command_changes_nothing(clean):
    """The command exits 3: InternalError, EC2_ELASTIC_IP put back, the address unassociated;
    the reason is in econe's log. The same call works once the command does."""
    cloud, ec2 = clean, clean.ec2()
    ip = ec2.allocate_address()["PublicIp"]
    instance, _ = cloud.vm()
    cloud.fail.touch()
    assert error_of(ec2.associate_address, InstanceId=instance, PublicIp=ip) == (
        "InternalError",
        500,
    )
    assert cloud.elastic_ip(instance) is None
    assert "InstanceId" not in ec2.describe_addresses()["Addresses"][0]
    assert "exit status 3 ['no NAT today']" in cloud.econe.log.read_text()
    cloud.fail.unlink()
    ec2.associate_address(InstanceId=instance, PublicIp=ip)
    assert cloud.elastic_ip(instance) == ip


def test_an_address_of_a_terminated_instance_is_disassociated(clean):
    """Once its VM is gone the address is free to use again, its NAT undone."""
    cloud, ec2 = clean, clean.ec2()
    ip = ec2.allocate_address()["PublicIp"]
    instance, private = cloud.vm()
    ec2.associate_address(InstanceId=instance, PublicIp=ip)
    cloud.admin.vm.action("finalize", int(instance[2:], 16))
    assert "InstanceId" not in ec2.describe_addresses()["Addresses"][0]
    assert (
        cloud.nat_calls()[-1]
        == f"--as-configured disassociate {ip} {private} {int(instance[2:], 16)}"
    )


def test_the_book_is_reconciled_with_oned_at_a_restart(clean):
    """An address held in oned that the book lost is released; one the book has but oned does
    not hold is dropped; both are logged."""
    cloud, ec2 = clean, clean.ec2()
    kept = ec2.allocate_address()["PublicIp"]
    lost = ec2.allocate_address()["PublicIp"]
    cloud.econe.stop()
    book = json.loads(cloud.book.read_text())
    ghost = dict(book["addresses"].pop(lost))
    book["addresses"]["10.20.0.6"] = ghost
    cloud.book.write_text(json.dumps(book))
    cloud.econe.start()
    assert [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]] == [kept]
    assert cloud.held() == [kept]
    log = cloud.econe.log.read_text()
    assert f"address {lost}: held on Public EC2 but owned by nobody: released" in log
    assert "address 10.20.0.6 of user" in log and "no longer held in oned: dropped" in log


def test_awscli_allocates_describes_and_releases(clean):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "alice",
        "AWS_SECRET_ACCESS_KEY": USERS["alice"],
        "AWS_DEFAULT_REGION": "one",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> dict:
        cmd = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", clean.econe.url]
        done = subprocess.run(
            [*cmd, "ec2", *args, "--output", "json"], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout or "{}")

    allocated = aws("allocate-address", "--domain", "vpc")
    listed = aws("describe-addresses", "--allocation-ids", allocated["AllocationId"])
    assert [a["PublicIp"] for a in listed["Addresses"]] == [allocated["PublicIp"]]
    aws("release-address", "--allocation-id", allocated["AllocationId"])
    assert aws("describe-addresses")["Addresses"] == []


def tool(cloud: Cloud, name: str, *args: str) -> subprocess.CompletedProcess:
    """The tool as alice, signing with an EC2 key of hers from oned (oneuser ec2key create)."""
    code = "import sys, cli.econe_addresses as m; sys.exit(m.main(sys.argv[2:], sys.argv[1]))"
    argv = [sys.executable, "-c", code, f"econe-{name}", *args, "-U", cloud.econe.url]
    env = {**os.environ, "HOME": str(cloud.tmp)}
    env["EC2_ACCESS_KEY"], env["EC2_SECRET_KEY"] = cloud.alice_key
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_econe_address_tools(clean):
    """allocate (vpc), describe -H, associate by the seed's VM number, disassociate, release."""
    instance, _ = clean.vm()
    done = tool(clean, "allocate-address", "-d", "vpc")
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    ip, allocation = words[2], words[-1]
    assert done.stdout.startswith(f"Success: PublicIp {ip} (vpc) AllocationId eipalloc-")
    number = str(int(instance[2:], 16))
    done = tool(clean, "associate-address", "-i", number, allocation)
    assert done.returncode == 0, done.stderr
    association = done.stdout.split()[-1].strip("()")
    assert done.stdout.startswith(f"Success: Associated {allocation} with {instance}")
    lines = tool(clean, "describe-addresses", "-H").stdout.splitlines()
    assert lines[0].split() == ["PublicIp", "InstanceId", "Domain", "AllocationId", "AssociationId"]
    assert lines[2].split() == [ip, instance, "vpc", allocation, association]
    assert tool(clean, "disassociate-address", association).stdout == (
        f"Success: Disassociated {association}\n"
    )
    assert tool(clean, "release-address", allocation).returncode == 0
    refused = tool(clean, "release-address", allocation)
    assert refused.returncode == 1
    assert refused.stderr.startswith("econe-release-address: InvalidAllocationID.NotFound:")


def test_without_server_auth_and_public_network_there_are_no_addresses(tmp_path):
    """A clear 400, not a 5xx clients would retry."""
    econe = EconeProcess(tmp_path / "one").start()
    try:
        ec2 = econe.client()
        for call in (ec2.allocate_address, ec2.describe_addresses):
            assert error_of(call) == ("UnsupportedOperation", 400)
    finally:
        econe.stop()
