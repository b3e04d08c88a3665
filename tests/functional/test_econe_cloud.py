"""econe-server over HTTPS (a self-signed certificate) in front of a real oned (dummy drivers,
one dummy host, mm_sched placing the VMs), driven by real boto3 and awscli: images registered
and described, instances run (pending, then running) and terminated, key pairs, tags (also at
launch), ClientToken idempotency, each user seeing only their own, and bad ids answered with
EC2's 4xx codes."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.exceptions
import pyone
import pytest
import urllib3
from botocore.config import Config

from tests.functional.oned_process import OnedProcess
from tests.functional.test_econe_server import EconeProcess, self_signed
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
USERS = {"alice": "alicepw", "bob": "bobpw"}
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@x"


class Cloud:
    def __init__(self, oned: OnedProcess, econe: EconeProcess, image_file: Path) -> None:
        self.oned, self.econe, self.image_file = oned, econe, image_file
        self.admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")

    def ec2(self, user: str = "alice", secret: str | None = None):
        return boto3.client(
            "ec2",
            endpoint_url=self.econe.url,
            region_name="one",
            aws_access_key_id=user,
            aws_secret_access_key=secret or USERS[user],
            verify=False,  # the test's self-signed certificate
            config=Config(retries={"max_attempts": 1}),
        )


def dummy_cloud(tmp: Path, users: dict[str, str]) -> tuple[OnedProcess, subprocess.Popen]:
    """oned (SAFE_DIRS: `tmp`) with a monitored dummy host, `users`, and mm_sched placing VMs
    every second."""
    oned = OnedProcess(tmp / "one", conf_extra=f'SAFE_DIRS = "{tmp}"')
    oned.set(VM_POLLING_INTERVAL=1).start()
    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    admin.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
    for user, password in users.items():
        admin.user.allocate(user, password)
    wait_for(lambda: admin.host.info(0).STATE == 2)
    sched = subprocess.Popen([sys.executable, "-m", "scheduler", "-t", "1"], env=oned.env)
    return oned, sched


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("econe")
    oned, sched = dummy_cloud(tmp, USERS)
    key, cert = self_signed(tmp)
    urllib3.disable_warnings()
    econe = EconeProcess(
        tmp / "one",
        ssl_cert=str(cert),
        ssl_key=str(key),
        one_xmlrpc=oned.endpoint,
        templates_dir=str(ROOT / "templates" / "ec2query"),
        terminated_expiration=3600,
    )
    keys = econe.location / "etc" / "econe_keys"
    keys.write_text("".join(f"{u} {p}\n" for u, p in USERS.items()))
    econe.start()
    image_file = tmp / "ttylinux.img"
    image_file.write_bytes(b"\0" * 1024 * 1024)
    yield Cloud(oned, econe, image_file)
    econe.stop()
    sched.terminate()
    sched.wait(15)
    oned.stop()


def error_of(call) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    answer = info.value.response
    return answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]


NAMES = itertools.count()


def registered(cloud: Cloud, user: str = "alice", name: str = "") -> str:
    ec2 = cloud.ec2(user)
    name = name or f"ttylinux-{next(NAMES)}"
    ami = ec2.register_image(ImageLocation=str(cloud.image_file), Name=name)["ImageId"]
    wait_for(lambda: ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "available")
    return ami


def states(ec2, ids: list[str]) -> list[str]:
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    found = {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}
    return [found[i] for i in ids]


def test_images_are_registered_described_and_deregistered(cloud):
    ec2 = cloud.ec2()
    ami = registered(cloud, name="ttylinux")
    assert ami.startswith("ami-") and len(ami) == 12
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert (image["Name"], image["State"], image["ImageOwnerAlias"]) == (
        "ttylinux",
        "available",
        "alice",
    )
    assert ami in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert ec2.register_image(ImageLocation=ami, Name="again")["ImageId"] == ami
    same_name = {"ImageLocation": str(cloud.image_file), "Name": "ttylinux"}
    assert error_of(lambda: ec2.register_image(**same_name)) == ("InvalidAMIName.Duplicate", 400)
    other = registered(cloud, name="scratch")
    ec2.deregister_image(ImageId=other)
    wait_for(lambda: other not in [i["ImageId"] for i in ec2.describe_images()["Images"]])
    assert error_of(lambda: ec2.deregister_image(ImageId="ami-0000ffff")) == (
        "InvalidAMIID.NotFound",
        400,
    )


def test_run_describe_and_terminate_with_a_key_and_user_data(cloud):
    ec2 = cloud.ec2()
    ami = registered(cloud)
    ec2.import_key_pair(KeyName="mykey", PublicKeyMaterial=PUBLIC_KEY.encode())
    answer = ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=2, InstanceType="m1.small", KeyName="mykey",
        UserData="#!/bin/sh\necho hello\n",
    )  # fmt: skip
    ids = [i["InstanceId"] for i in answer["Instances"]]
    assert len(ids) == 2 and answer["Instances"][0]["State"]["Name"] == "pending"
    assert {i["ImageId"] for i in answer["Instances"]} == {ami}
    assert {i["KeyName"] for i in answer["Instances"]} == {"mykey"}
    vm = cloud.admin.vm.info(int(ids[0][2:], 16))
    context = vm.TEMPLATE["CONTEXT"]
    assert context["SSH_PUBLIC_KEY"] == PUBLIC_KEY
    assert base64.b64decode(context["USER_DATA"]) == b"#!/bin/sh\necho hello\n"
    wait_for(lambda: states(ec2, ids) == ["running", "running"], timeout=60)
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    assert len(reservations) == 1 and reservations[0]["ReservationId"] == answer["ReservationId"]
    assert reservations[0]["Instances"][0]["InstanceType"] == "m1.small"
    changes = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert [c["PreviousState"]["Name"] for c in changes] == ["running", "running"]
    assert [c["CurrentState"]["Name"] for c in changes] == ["shutting-down"] * 2
    wait_for(lambda: states(ec2, ids) == ["terminated", "terminated"], timeout=60)
    picked = ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}]
    )
    assert set(ids) <= {i["InstanceId"] for r in picked["Reservations"] for i in r["Instances"]}


def test_a_client_token_is_answered_again_not_run_again(cloud):
    ec2 = cloud.ec2()
    ami = registered(cloud)
    first = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="token-1")
    again = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="token-1")
    assert [i["InstanceId"] for i in first["Instances"]] == [
        i["InstanceId"] for i in again["Instances"]
    ]
    mine = cloud.admin.vmpool.info(-2, -1, -1, -1).VM
    assert sum(1 for vm in mine if vm.NAME == "eco-vm") == len(
        {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
         if i["State"]["Name"] != "terminated"}
    )  # fmt: skip
    ec2.terminate_instances(InstanceIds=[first["Instances"][0]["InstanceId"]])


def test_a_user_sees_only_their_own(cloud):
    alice, bob = cloud.ec2("alice"), cloud.ec2("bob")
    ami = registered(cloud)
    vid = alice.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    alice.create_key_pair(KeyName="alices")
    seen = {
        i["InstanceId"] for r in bob.describe_instances()["Reservations"] for i in r["Instances"]
    }
    assert vid not in seen
    assert error_of(lambda: bob.terminate_instances(InstanceIds=[vid])) == (
        "InvalidInstanceID.NotFound",
        400,
    )
    assert error_of(lambda: bob.describe_images(ImageIds=[ami]))[0] == "InvalidAMIID.NotFound"
    assert error_of(lambda: bob.run_instances(ImageId=ami, MinCount=1, MaxCount=1))[1] in (400, 403)
    assert "alices" not in [k["KeyName"] for k in bob.describe_key_pairs()["KeyPairs"]]
    assert error_of(lambda: bob.create_tags(Resources=[vid], Tags=[{"Key": "a", "Value": "b"}]))[
        1
    ] in (400, 403)
    alice.terminate_instances(InstanceIds=[vid])


def test_key_pairs_are_created_imported_listed_and_deleted(cloud):
    ec2 = cloud.ec2("bob")
    created = ec2.create_key_pair(KeyName="k1")
    assert created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert len(created["KeyFingerprint"].split(":")) == 20  # SHA-1, as EC2 for created keys
    imported = ec2.import_key_pair(KeyName="k2", PublicKeyMaterial=PUBLIC_KEY.encode())
    assert len(imported["KeyFingerprint"].split(":")) == 16  # MD5, as EC2 for imported keys
    names = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    assert names == ["k1", "k2"]
    assert error_of(lambda: ec2.create_key_pair(KeyName="k1")) == ("InvalidKeyPair.Duplicate", 400)
    assert error_of(lambda: ec2.import_key_pair(KeyName="k3", PublicKeyMaterial=b"junk"))[0] == (
        "InvalidKey.Format"
    )
    ec2.delete_key_pair(KeyName="k1")
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["k2"]
    assert error_of(lambda: ec2.describe_key_pairs(KeyNames=["k1"]))[0] == "InvalidKeyPair.NotFound"
    without = {"ImageId": "ami-00000000", "MinCount": 1, "MaxCount": 1, "KeyName": "k1"}
    assert error_of(lambda: ec2.run_instances(**without))[0] == "InvalidKeyPair.NotFound"


def test_tags_on_instances_and_images(cloud):
    ec2 = cloud.ec2()
    ami = registered(cloud)
    launch = [{"ResourceType": "instance", "Tags": [{"Key": "stage", "Value": "1"}]}]
    run = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=launch)
    vid = run["Instances"][0]["InstanceId"]
    assert run["Instances"][0]["Tags"] == [{"Key": "stage", "Value": "1"}]
    ec2.create_tags(Resources=[vid, ami], Tags=[{"Key": "Name", "Value": "web & db"}])
    ec2.create_tags(Resources=[vid], Tags=[{"Key": "env", "Value": "prod"}])
    picked = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web*"]}])
    instances = [i for r in picked["Reservations"] for i in r["Instances"]]
    assert [i["InstanceId"] for i in instances] == [vid]
    assert sorted((t["Key"], t["Value"]) for t in instances[0]["Tags"]) == [
        ("Name", "web & db"),
        ("env", "prod"),
        ("stage", "1"),
    ]
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid, ami]}])["Tags"]
    assert sorted((t["ResourceType"], t["Key"]) for t in tags) == [
        ("image", "Name"),
        ("instance", "Name"),
        ("instance", "env"),
        ("instance", "stage"),
    ]
    ec2.delete_tags(Resources=[vid], Tags=[{"Key": "env", "Value": "other"}])  # value differs
    ec2.delete_tags(Resources=[vid], Tags=[{"Key": "Name"}])
    left = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in left] == [("env", "prod"), ("stage", "1")]
    ec2.terminate_instances(InstanceIds=[vid])


def test_bad_ids_and_parameters_are_ec2_4xx_errors(cloud):
    ec2 = cloud.ec2()
    assert error_of(lambda: ec2.terminate_instances(InstanceIds=["i-1"])) == (
        "InvalidInstanceID.Malformed",
        400,
    )
    assert error_of(lambda: ec2.describe_instances(InstanceIds=["i-0000ffff"])) == (
        "InvalidInstanceID.NotFound",
        400,
    )
    run = ec2.run_instances
    assert error_of(lambda: run(ImageId="ami-0000ffff", MinCount=1, MaxCount=1)) == (
        "InvalidAMIID.NotFound",
        400,
    )
    assert error_of(lambda: run(ImageId="ami-xyz", MinCount=1, MaxCount=1)) == (
        "InvalidAMIID.Malformed",
        400,
    )
    ami = registered(cloud)
    assert error_of(lambda: run(ImageId=ami, MinCount=2, MaxCount=1))[0] == "InvalidParameterValue"
    assert error_of(lambda: run(ImageId=ami, MinCount=50, MaxCount=50)) == (
        "InstanceLimitExceeded",
        400,
    )
    assert error_of(lambda: run(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="m9.huge"))[
        0
    ] == ("InvalidParameterValue")
    assert error_of(lambda: cloud.ec2("alice", "wrong").describe_instances()) == (
        "AuthFailure",
        401,
    )


def test_instance_types_come_from_the_templates(cloud):
    types = cloud.ec2().describe_instance_types()["InstanceTypes"]
    table = {
        t["InstanceType"]: (t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"])
        for t in types
    }
    assert table == {"m1.small": (1, 64), "m1.large": (2, 256), "m1.xlarge": (4, 512)}


def test_awscli_runs_describes_and_terminates(cloud):
    ami = registered(cloud)
    done = aws_as(cloud, "alice", "ec2", "run-instances", "--image-id", ami, "--count", "1")
    assert done.returncode == 0, done.stderr
    vid = json.loads(done.stdout)["Instances"][0]["InstanceId"]
    done = aws_as(cloud, "alice", "ec2", "describe-instances", "--instance-ids", vid)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Reservations"][0]["Instances"][0]["InstanceId"] == vid
    done = aws_as(cloud, "alice", "ec2", "terminate-instances", "--instance-ids", vid)
    assert done.returncode == 0, done.stderr
    done = aws_as(cloud, "alice", "ec2", "terminate-instances", "--instance-ids", "i-nothex")
    assert done.returncode == 255 and "InvalidInstanceID.Malformed" in done.stderr


def aws_as(cloud: Cloud, user: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": user,
        "AWS_SECRET_ACCESS_KEY": USERS[user],
        "AWS_DEFAULT_REGION": "one",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
    }
    cmd = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", cloud.econe.url]
    cmd.append("--no-verify-ssl")
    return subprocess.run(
        [*cmd, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60
    )


def test_stop_start_and_reboot_and_a_refused_state(cloud):
    ec2 = cloud.ec2("bob")
    ami = registered(cloud, "bob")
    vid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_for(lambda: states(ec2, [vid]) == ["running"], timeout=60)
    # a running instance reboots in place (oned's reboot): still running, vm.log says so
    ec2.reboot_instances(InstanceIds=[vid])
    log = cloud.oned.location / "var" / str(int(vid[2:], 16)) / "vm.log"
    wait_for(lambda: "VM successfully rebooted." in log.read_text(), timeout=30)
    assert states(ec2, [vid]) == ["running"]
    stopping = ec2.stop_instances(InstanceIds=[vid])["StoppingInstances"][0]
    assert (stopping["PreviousState"]["Name"], stopping["CurrentState"]["Name"]) == (
        "running",
        "stopping",
    )
    wait_for(lambda: states(ec2, [vid]) == ["stopped"], timeout=60)
    assert error_of(lambda: ec2.stop_instances(InstanceIds=[vid])) == (
        "IncorrectInstanceState",
        400,
    )
    starting = ec2.start_instances(InstanceIds=[vid])["StartingInstances"][0]
    assert starting["CurrentState"]["Name"] == "pending"
    wait_for(lambda: states(ec2, [vid]) == ["running"], timeout=60)
    ec2.terminate_instances(InstanceIds=[vid])


def test_the_old_tools_signature_v2_drives_instances_too(cloud):
    ec2 = boto3.client(
        "ec2",
        endpoint_url=cloud.econe.url,
        region_name="one",
        aws_access_key_id="alice",
        aws_secret_access_key=USERS["alice"],
        verify=False,
        config=Config(signature_version="v2", retries={"max_attempts": 1}),
    )
    ami = registered(cloud)
    vid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert states(ec2, [vid]) in (["pending"], ["running"])
    ec2.terminate_instances(InstanceIds=[vid])
