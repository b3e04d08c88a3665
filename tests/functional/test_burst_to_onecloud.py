"""Bursting into another onecloud (issue 15 item 7): cloud A's EC2 hybrid drivers (im_ec2,
vmm_ec2) pointed at cloud B's econe-server with the EC2 key of one of B's users, set up as
share/doc/econe.md ("Bursting into another onecloud") tells an operator.

Both clouds are real: B is oned + mm_sched + econe-server (dummy drivers, one host), A is `one
start` (oned + mm_sched) with the EC2 drivers. A's EC2 host is monitored through econe, a VM with
an EC2 section is scheduled to it and runs in B as a VM of B's user; shutdown in A terminates
it in B, and an instance A's VM left behind in B (a lost terminate) is cancelled by A's oned.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pyone
import pytest
from botocore.config import Config

from tests.functional.oned_process import OnedProcess
from tests.functional.test_econe_cloud import dummy_cloud
from tests.functional.test_econe_seed_part_v import certificate
from tests.functional.test_econe_server import EconeProcess
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
RUNNING, DONE, SUSPENDED = (3, 3), 6, 5
CLOUD_A = "cloud-a"
STANZAS = """
IM_MAD = [ name = "im_onecloud_b", executable = "one_im_ec2",
           arguments = "im_ec2/onecloud-b.conf" ]
VM_MAD = [ name = "vmm_onecloud_b", executable = "one_vmm_ec2",
           arguments = "vmm_ec2/onecloud-b.conf", type = "xml" ]
"""


class CloudB:
    """oned + mm_sched + econe-server (oned's EC2 keys through `server_auth`); the user
    `burst` with an EC2 key and an AMI."""

    def __init__(self, tmp: Path, tls: bool = False) -> None:
        self.oned, self.sched = dummy_cloud(tmp, {"burst": "burstpw"})
        self.econe: EconeProcess | None = None
        auth = tmp / "one" / "etc" / "econe_server_auth"
        auth.write_text("oneadmin:onecloud\n")
        auth.chmod(0o600)
        self.cert: Path | None = None
        https = {}
        if tls:
            key, self.cert = certificate(tmp)
            https = {"ssl_cert": str(self.cert), "ssl_key": str(key)}
        self.econe = EconeProcess(
            tmp / "one",
            one_xmlrpc=self.oned.endpoint,
            keys_file=None,
            server_auth=str(auth),
            templates_dir=str(ROOT / "templates" / "ec2query"),
            zones=["one"],
            **https,
        ).start()
        made = self.oned.run_cli("oneuser", "ec2key", "create", "burst")
        assert made.returncode == 0, made.stderr
        self.key, self.secret = ec2key_of(made.stdout)
        image = tmp / "burst.img"
        image.write_bytes(b"\0" * 65536)
        ec2 = self.ec2()
        self.ami = ec2.register_image(ImageLocation=str(image), Name="burst")["ImageId"]
        wait_for(lambda: ec2.describe_images(ImageIds=[self.ami])["Images"][0]["State"]
                 == "available")  # fmt: skip

    def ec2(self):
        return boto3.client(
            "ec2",
            endpoint_url=self.econe.url,
            region_name="one",
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            verify=str(self.cert) if self.cert else None,
            config=Config(retries={"max_attempts": 1}),
        )

    def instances(self) -> dict[str, dict]:
        answer = self.ec2().describe_instances()["Reservations"]
        return {i["InstanceId"]: i for r in answer for i in r["Instances"]}

    def state(self, instance: str) -> str:
        found = self.instances().get(instance)
        return found["State"]["Name"] if found else "absent"

    def stop(self) -> None:
        if self.econe:
            self.econe.stop()
        self.sched.terminate()
        self.sched.wait(15)
        self.oned.stop()


def ec2key_of(printed: str) -> tuple[str, str]:
    """(access key id, secret) from `oneuser ec2key create`'s lines."""
    words = printed.split()
    key = next(w for w in words if w.startswith("AKOC"))
    after = words[words.index(key) + 1 :]
    secret = next(w for w in after if len(w) == 40)
    return key, secret


def write_driver_confs(etc: Path, b: CloudB, home: Path) -> None:
    """What the operator of A writes (share/doc/econe.md): B's econe as the endpoint, B's
    region name, the key of B's user, the limits B's user was granted."""
    account = (
        f"REGION=one\nENDPOINT={b.econe.url}\nCREDENTIALS=ec2/onecloud-b.yaml\n"
        f"CLOUD_ID={CLOUD_A}\nCONNECT_TIMEOUT=2\nREAD_TIMEOUT=20\nMAX_ATTEMPTS=2\n"
    )
    for folder in ("im_ec2", "vmm_ec2", "ec2"):
        (etc / folder).mkdir(parents=True, exist_ok=True)
    (etc / "im_ec2" / "onecloud-b.conf").write_text("SMALL_INSTANCES=2\n" + account)
    (etc / "vmm_ec2" / "onecloud-b.conf").write_text(
        "SMALL_INSTANCES=2\nINSTANCETYPE=m1.small\nWAIT_TIMEOUT=60\n" + account
    )
    creds = etc / "ec2" / "onecloud-b.yaml"
    creds.write_text(f"access_key_id: {b.key}\nsecret_access_key: {b.secret}\n")
    creds.chmod(0o600)
    if b.cert:  # B's own certificate: the drivers' boto3 reads ca_bundle from ~/.aws/config
        aws = home / ".aws"
        aws.mkdir(exist_ok=True)
        (aws / "config").write_text(f"[default]\nca_bundle = {b.cert}\n")


@pytest.fixture
def clouds(tmp_path, monkeypatch, request):
    """B over HTTP, or over HTTPS with a self-signed certificate (``https``)."""
    monkeypatch.setenv("HOME", str(tmp_path))  # the drivers get no ~/.aws of the tester
    b = CloudB(tmp_path / "b", tls=getattr(request, "param", "http") == "https")
    a = OnedProcess(tmp_path / "a" / "one", conf_extra=STANZAS)
    try:
        a.set(HOST_MONITORING_INTERVAL=2, VM_POLLING_INTERVAL=1)
        write_driver_confs(a.location / "etc", b, tmp_path)
        started = a.run_cli("one", "start")
        assert started.returncode == 0, started.stderr + started.stdout
        yield a, b
    finally:
        a.run_cli("one", "stop")
        a.cleanup()
        b.stop()


@pytest.mark.parametrize("clouds", ["http", "https"], indirect=True)
def test_a_vm_bursts_into_another_onecloud_and_ends_there(clouds, tmp_path):
    a, b = clouds
    one = pyone.OneServer(a.endpoint, session="oneadmin:onecloud")
    made = a.run_cli("onehost", "create", "cloudb", "im_onecloud_b", "vmm_onecloud_b", "tm_dummy")
    assert made.returncode == 0, made.stderr
    wait_for(lambda: one.host.info(0).STATE == 2, timeout=30)  # MONITORED, through econe
    host = one.host.info(0)
    assert host.TEMPLATE["HYPERVISOR"] == "ec2" and host.TEMPLATE["EC2_REGION"] == "one"
    assert int(host.HOST_SHARE.MAX_CPU) == 200
    template = tmp_path / "burst.one"
    template.write_text(
        "NAME = burst\nCPU = 0.5\nMEMORY = 64\n"
        f'EC2 = [ AMI = "{b.ami}", INSTANCETYPE = "m1.small", TAGS = "team=web" ]\n'
        'REQUIREMENTS = "HOSTNAME = \\"cloudb\\""\n'
    )
    created = a.run_cli("onevm", "create", str(template))
    assert created.returncode == 0, created.stderr
    vid = 0
    wait_for(lambda: (one.vm.info(vid).STATE, one.vm.info(vid).LCM_STATE) == RUNNING, 60)
    instance = one.vm.info(vid).DEPLOY_ID
    assert instance.startswith("i-")
    wait_for(lambda: b.state(instance) == "running", timeout=60)
    seen = b.instances()[instance]
    tags = {t["Key"]: t["Value"] for t in seen["Tags"]}
    assert tags["one:vmid"] == str(vid) and tags["one:cloud"] == CLOUD_A
    assert (tags["Name"], tags["team"], seen["ImageId"]) == ("burst", "web", b.ami)
    b_admin = pyone.OneServer(b.oned.endpoint, session="oneadmin:onecloud")
    in_b = b_admin.vm.info(int(instance[2:], 16))
    assert in_b.UNAME == "burst" and in_b.LCM_STATE == 3
    assert a.run_cli("onevm", "suspend", str(vid)).returncode == 0  # StopInstances in B
    wait_for(lambda: one.vm.info(vid).STATE == SUSPENDED, timeout=90)
    assert b.state(instance) == "stopped"
    assert a.run_cli("onevm", "resume", str(vid)).returncode == 0  # StartInstances in B
    wait_for(lambda: (one.vm.info(vid).STATE, one.vm.info(vid).LCM_STATE) == RUNNING, 90)
    wait_for(lambda: b.state(instance) == "running", timeout=60)
    assert a.run_cli("onevm", "shutdown", str(vid)).returncode == 0
    wait_for(lambda: one.vm.info(vid).STATE == DONE, timeout=60)
    wait_for(lambda: b.state(instance) == "terminated", timeout=30)
    assert b_admin.vm.info(int(instance[2:], 16)).STATE == DONE


def test_an_instance_left_behind_by_a_finished_vm_is_cancelled(clouds):
    """A terminate lost on the way (here: B's user starts the instance tagged as A's VM 0,
    which is DONE): A's monitoring of B finds it and A's oned cancels it."""
    a, b = clouds
    one = pyone.OneServer(a.endpoint, session="oneadmin:onecloud")
    vid = one.vm.allocate("NAME = gone\nCPU = 0.1\nMEMORY = 16")
    one.vm.action("finalize", vid)
    assert one.vm.info(vid).STATE == DONE
    tags = [{"Key": "one:cloud", "Value": CLOUD_A}, {"Key": "one:vmid", "Value": str(vid)}]
    run = b.ec2().run_instances(
        ImageId=b.ami, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )  # fmt: skip
    orphan = run["Instances"][0]["InstanceId"]
    wait_for(lambda: b.state(orphan) == "running", timeout=60)
    made = a.run_cli("onehost", "create", "cloudb", "im_onecloud_b", "vmm_onecloud_b", "tm_dummy")
    assert made.returncode == 0, made.stderr
    wait_for(lambda: b.state(orphan) == "terminated", timeout=60)
    wait_for(lambda: f"{orphan} still runs for VM {vid}" in a.log, timeout=10)
