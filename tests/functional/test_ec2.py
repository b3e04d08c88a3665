"""The seed's hybrid cloud (part IV) on a real oned with the real EC2 drivers and moto's EC2
server as the region; every instance is checked through boto3, independently of the drivers.

moto runs with AMI validation and IAM authentication on (``INITIAL_NO_AUTH_ACTION_COUNT``):
its first three calls make the account's user and key, and any other key is refused with
EC2's AuthFailure, as Amazon does.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pyone
import pytest

from tests.functional.moto_region import KNOWN_AMI, MotoRegion, free_port
from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for

RUNNING, DONE, FAILED, ERROR = (3, 3), 6, 7, 3
WRONG = "wrong-secret-5c1d0e"
SEED_STANZAS = """
IM_MAD = [ name = "im_ec2", executable = "one_im_ec2", arguments = "im_ec2/im_ec2.conf" ]
VM_MAD = [ name = "vmm_ec2", executable = "one_vmm_ec2", arguments = "vmm_ec2/vmm_ec2.conf",
           type = "xml" ]
IM_MAD = [ name = "im_ec2_bad", executable = "one_im_ec2",
           arguments = "im_ec2/im_ec2.conf --credentials ec2/wrong.yaml" ]
IM_MAD = [ name = "im_ec2_down", executable = "one_im_ec2",
           arguments = "im_ec2/im_ec2.conf --endpoint http://127.0.0.1:{closed}" ]
IM_MAD = [ name = "im_ec2_none", executable = "one_im_ec2", arguments = "im_ec2/none.conf" ]
"""


@pytest.fixture(scope="module")
def region():
    """moto with AMI validation and authentication; ``region.keys`` are the account's key."""
    env = {"MOTO_ENABLE_AMI_VALIDATION": "true", "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with MotoRegion(env) as moto:
        iam = moto.client("iam")
        iam.create_user(UserName="oneadmin")
        policy = (
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
        )
        iam.put_user_policy(UserName="oneadmin", PolicyName="all", PolicyDocument=policy)
        key = iam.create_access_key(UserName="oneadmin")["AccessKey"]
        moto.keys = {"aws_access_key_id": key["AccessKeyId"],
                     "aws_secret_access_key": key["SecretAccessKey"]}  # fmt: skip
        yield moto


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def write_confs(etc: Path, region: MotoRegion, limits: str = "SMALL_INSTANCES=5\n") -> str:
    """The drivers' files under etc/ (the seed's paths); returns this cloud's CLOUD_ID."""
    cloud = "t" + secrets.token_hex(4)  # moto keeps every test's instances: each its own cloud
    account = f"REGION=us-east-1\nENDPOINT={region.endpoint}\nCREDENTIALS=ec2/credentials.yaml\n"
    account += "CONNECT_TIMEOUT=1\nREAD_TIMEOUT=10\nMAX_ATTEMPTS=2\n"
    (etc / "im_ec2").mkdir(parents=True, exist_ok=True)
    (etc / "vmm_ec2").mkdir(parents=True, exist_ok=True)
    (etc / "im_ec2" / "im_ec2.conf").write_text(
        f"{limits}LARGE_INSTANCES=\nCLOUD_ID={cloud}\n{account}"
    )
    (etc / "im_ec2" / "none.conf").write_text(limits + f"ENDPOINT={region.endpoint}\n")
    (etc / "vmm_ec2" / "vmm_ec2.conf").write_text(
        f"KEYPAIR=\nINSTANCETYPE=m1.small\nCLOUD_ID={cloud}\nWAIT_TIMEOUT=30\n{account}"
    )
    keys = region.keys
    write_private(
        etc / "ec2" / "credentials.yaml",
        f"access_key_id: {keys['aws_access_key_id']}\n"
        f"secret_access_key: {keys['aws_secret_access_key']}\n",
    )
    write_private(
        etc / "ec2" / "wrong.yaml", f"access_key_id: AKIAWRONG\nsecret_access_key: {WRONG}\n"
    )
    return cloud


@pytest.fixture
def cloud(tmp_path, region, monkeypatch):
    """oned and mm_sched (`one start`) with the seed's EC2 stanzas; the drivers' HOME has no
    ~/.aws (oned passes them HOME and no AWS_* variables)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    extra = SEED_STANZAS.format(closed=free_port())
    oned = OnedProcess(tmp_path / "one", conf_extra=extra)
    oned.set(HOST_MONITORING_INTERVAL=2, VM_POLLING_INTERVAL=1)
    oned.cloud_id = write_confs(oned.location / "etc", region)
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        yield oned, pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    finally:
        oned.run_cli("one", "stop")


def instances_of(region: MotoRegion, vid: int, cloud: str) -> list[dict]:
    filters = [{"Name": "tag:one:vmid", "Values": [str(vid)]},
               {"Name": "tag:one:cloud", "Values": [cloud]}]  # fmt: skip
    answer = region.client(**region.keys).describe_instances(Filters=filters)
    return [i for r in answer["Reservations"] for i in r["Instances"]]


def host_row(oned: OnedProcess, name: str) -> list[str]:
    listing = oned.run_cli("onehost", "list").stdout.splitlines()
    return next(row.split() for row in listing if f" {name} " in f" {row} ")


def test_the_seed_part_iv_runs_against_the_local_ec2_region(cloud, region, tmp_path):
    """onehost create ec2 ... shows the limits; ttylinux runs in EC2 with its IP in onevm show;
    shutdown terminates the instance; a disabled ec2 host leaves new VMs local."""
    oned, one = cloud
    seed_log = ("Loading driver: vmm_ec2 (XML)", "Driver vmm_ec2 loaded.", "Driver im_ec2 loaded.")
    for line in seed_log:  # `one start`'s log, as the seed's
        wait_for(lambda line=line: line in oned.log, 10)
    assert oned.run_cli("onehost", "create", "ec2", "im_ec2", "vmm_ec2", "tm_dummy").returncode == 0
    assert (
        oned.run_cli("onehost", "create", "host01", "im_dummy", "vmm_dummy", "tm_dummy").returncode
        == 0
    )
    wait_for(lambda: one.host.info(0).STATE == 2 and one.host.info(1).STATE == 2, timeout=30)
    row = host_row(oned, "ec2")
    assert row[2:] == ["0", "500", "500", "500", "8912896", "8912896", "on"], row
    template = tmp_path / "ttylinux.one"
    template.write_text(
        "NAME = ttylinux\nCPU = 0.5\nMEMORY = 64\n"
        f'EC2 = [ AMI="{KNOWN_AMI}", KEYPAIR="", AUTHORIZED_PORTS="22", INSTANCETYPE=m1.small ]\n'
        'REQUIREMENTS = "HOSTNAME = \\"ec2\\""\n'
    )
    created = oned.run_cli("onevm", "create", str(template))
    assert created.returncode == 0, created.stderr
    vid = 0
    wait_for(lambda: (one.vm.info(vid).STATE, one.vm.info(vid).LCM_STATE) == RUNNING, timeout=60)
    [instance] = instances_of(region, vid, oned.cloud_id)
    assert instance["InstanceId"] == one.vm.info(vid).DEPLOY_ID
    assert instance["InstanceType"] == "m1.small" and instance["ImageId"] == KNOWN_AMI
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["Name"] == "ttylinux" and tags["one:vmid"] == "0"
    ec2 = region.client(**region.keys)
    group = ec2.describe_security_groups(GroupIds=[instance["SecurityGroups"][0]["GroupId"]])
    assert group["SecurityGroups"][0]["IpPermissions"][0]["FromPort"] == 22
    show = wait_for(lambda: "IP=" in (s := oned.run_cli("onevm", "show", str(vid)).stdout) and s)
    assert f"IP={instance['PublicDnsName']}" in show.replace(" ", "").replace('"', "")
    assert oned.run_cli("onevm", "shutdown", str(vid)).returncode == 0
    wait_for(lambda: one.vm.info(vid).STATE == DONE, timeout=30)
    [gone] = instances_of(region, vid, oned.cloud_id)
    assert gone["State"]["Name"] in ("shutting-down", "terminated")
    assert oned.run_cli("onehost", "disable", "ec2").returncode == 0
    local = one.vm.allocate("NAME = local\nCPU = 0.5\nMEMORY = 64")
    wait_for(lambda: one.vm.info(local).LCM_STATE == 3, timeout=60)
    assert one.vm.info(local).HISTORY_RECORDS.HISTORY[-1].HOSTNAME == "host01"


def test_a_vm_ec2_refuses_fails_with_ec2s_code_and_message(cloud, region):
    """An unknown AMI: FAILED, `onevm show` names InvalidAMIID.NotFound; no instance left."""
    oned, one = cloud
    one.host.allocate("ec2", "im_ec2", "vmm_ec2", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == 2, timeout=30)
    vid = one.vm.allocate('CPU = 1\nMEMORY = 64\nEC2 = [ AMI = "ami-00000bad" ]')
    one.vm.deploy(vid, 0)
    wait_for(lambda: one.vm.info(vid).STATE == FAILED, timeout=30)
    show = oned.run_cli("onevm", "show", str(vid)).stdout
    assert "InvalidAMIID.NotFound" in show, show
    assert instances_of(region, vid, oned.cloud_id) == []


@pytest.mark.parametrize(
    "section, named",
    [
        ('EC2 = [ KEYPAIR = "k" ]', "EC2 AMI"),
        (f'EC2 = [ AMI = "{KNOWN_AMI}", INSTANCETYPE = "m1.large" ]', "EC2 INSTANCETYPE"),
        (f'EC2 = [ AMI = "{KNOWN_AMI}", CLOUD = "elsewhere" ]', "EC2 CLOUD"),
        (f'EC2 = [ AMI = "{KNOWN_AMI}", AUTHORIZED_PORTS = "22,99999" ]', "EC2 AUTHORIZED_PORTS"),
    ],
)
def test_bad_ec2_sections_fail_naming_the_attribute(cloud, region, section, named):
    oned, one = cloud
    one.host.allocate("ec2", "im_ec2", "vmm_ec2", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == 2, timeout=30)
    vid = one.vm.allocate(f"CPU = 1\nMEMORY = 64\n{section}")
    one.vm.deploy(vid, 0)
    wait_for(lambda: one.vm.info(vid).STATE == FAILED, timeout=30)
    assert named in oned.run_cli("onevm", "show", str(vid)).stdout
    assert instances_of(region, vid, oned.cloud_id) == []


def test_wrong_missing_or_unreachable_credentials_put_the_host_in_err(cloud):
    """AuthFailure from EC2, no credentials at all (no CREDENTIALS, an empty HOME) and a
    refused connection are host errors with the reason; the good region stays on; the secret
    is in no log."""
    oned, one = cloud
    hosts = (("ec2", "im_ec2"), ("ec2bad", "im_ec2_bad"), ("ec2down", "im_ec2_down"),
             ("ec2none", "im_ec2_none"))  # fmt: skip
    for name, im in hosts:
        one.host.allocate(name, im, "vmm_ec2", "tm_dummy")
    states = [2, ERROR, ERROR, ERROR]
    wait_for(lambda: [one.host.info(h).STATE for h in range(4)] == states, timeout=30)
    assert "AuthFailure" in one.host.info(1).TEMPLATE["ERROR"]["MESSAGE"]
    assert "cannot reach the EC2 endpoint" in one.host.info(2).TEMPLATE["ERROR"]["MESSAGE"]
    assert "no EC2 credentials: set CREDENTIALS" in one.host.info(3).TEMPLATE["ERROR"]["MESSAGE"]
    assert host_row(oned, "ec2bad")[-1] == "err"
    creds = (oned.location / "etc" / "ec2" / "credentials.yaml").read_text()
    secret = creds.split("secret_access_key: ")[1].strip()
    logs = {p.name: p.read_text() for p in (oned.location / "var").rglob("*.log")}
    assert {"oned.log", "im_ec2.log", "im_ec2_bad.log"} <= set(logs)
    assert not [name for name, text in logs.items() if secret in text or WRONG in text]


def test_a_group_readable_credentials_file_is_refused_naming_it(cloud):
    oned, one = cloud
    (oned.location / "etc" / "ec2" / "credentials.yaml").chmod(0o640)
    one.host.allocate("ec2", "im_ec2", "vmm_ec2", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == ERROR, timeout=30)
    message = one.host.info(0).TEMPLATE["ERROR"]["MESSAGE"]
    assert "credentials.yaml are readable by others (mode 0640)" in message


def test_the_instance_limit_is_never_exceeded(cloud, region):
    """SMALL_INSTANCES=5: five VMs forced onto ec2 run, the sixth fails naming the limit."""
    oned, one = cloud
    one.host.allocate("ec2", "im_ec2", "vmm_ec2", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == 2, timeout=30)
    vids = [
        one.vm.allocate(f'CPU = 0.1\nMEMORY = 64\nEC2 = [ AMI = "{KNOWN_AMI}" ]') for _ in range(6)
    ]
    for vid in vids:
        one.vm.deploy(vid, 0)
    # RUNNING is ACTIVE (3) with LCM_STATE RUNNING (3): ACTIVE alone also holds PROLOG and BOOT,
    # where the sixth VM waits for its DEPLOY_FAILURE on a loaded machine
    settled = lambda v: one.vm.info(v).STATE == FAILED or one.vm.info(v).LCM_STATE == 3  # noqa: E731
    wait_for(lambda: all(settled(v) for v in vids), timeout=60)
    states = [one.vm.info(v).STATE for v in vids]
    assert sorted(states) == [3] * 5 + [FAILED]
    failed = vids[states.index(FAILED)]
    assert "limit of 5 m1.small" in oned.run_cli("onevm", "show", str(failed)).stdout
    live = [i for v in vids for i in instances_of(region, v, oned.cloud_id)]
    # Launches are counted by ClientToken, as EC2 counts them: botocore retries a RunInstances
    # whose answer timed out (seen once at load ~30), and moto, unlike EC2, does not make a
    # retried token the same instance.
    assert len({i["ClientToken"] for i in live}) == 5


def test_the_scheduler_sends_no_more_instances_than_the_limit_and_says_why(cloud, region):
    """SMALL_INSTANCES=5 and seven VMs of CPU 0.1 forced onto ec2 by REQUIREMENTS: TOTALCPU
    would take 50 of them; mm_sched places five, the other two stay pending with the reason,
    and a VM without an EC2 section is never sent to the region."""
    oned, one = cloud
    one.host.allocate("ec2", "im_ec2", "vmm_ec2", "tm_dummy")
    wait_for(lambda: one.host.info(0).STATE == 2, timeout=30)
    forced = 'REQUIREMENTS = "HOSTNAME = \\"ec2\\""\n'
    section = f'EC2 = [ AMI = "{KNOWN_AMI}", INSTANCETYPE = "m1.small" ]\n'
    vids = [one.vm.allocate(f"CPU = 0.1\nMEMORY = 64\n{section}{forced}") for _ in range(7)]
    local = one.vm.allocate(f"CPU = 0.1\nMEMORY = 64\n{forced}")
    wait_for(lambda: sum(one.vm.info(v).STATE == 3 for v in vids) == 5, timeout=90)
    waiting = [v for v in vids if one.vm.info(v).STATE == 1]
    assert len(waiting) == 2
    sched = lambda vid: one.vm.info(vid).USER_TEMPLATE.get("SCHED_MESSAGE") or ""  # noqa: E731
    wait_for(lambda: "no m1.small instance left" in sched(waiting[0]), 30)
    assert one.vm.info(local).STATE == 1
    assert "no EC2 section for this host" in sched(local)
    live = [i for v in vids for i in instances_of(region, v, oned.cloud_id)]
    assert len(live) == 5


def test_an_instance_left_running_for_a_finished_vm_is_terminated_by_tag(cloud, region):
    """An instance of this cloud tagged with a VM that oned finished (a crash between EC2
    starting it and oned recording it) is cancelled at the next monitoring; one tagged with a
    VM oned still has is left alone, and the listing is no host attribute."""
    oned, one = cloud
    one.host.allocate("ec2", "im_ec2", "vmm_ec2", "tm_dummy")
    gone = one.vm.allocate("CPU = 0.1\nMEMORY = 64", True)
    one.vm.action("finalize", gone)  # DONE, as a VM whose deploy oned never recorded
    held = one.vm.allocate("CPU = 0.1\nMEMORY = 64", True)  # HOLD: oned still has it
    ec2 = region.client(**region.keys)

    def started(vid: int) -> str:
        tags = [{"Key": "one:cloud", "Value": oned.cloud_id}]
        tags.append({"Key": "one:vmid", "Value": str(vid)})
        reply = ec2.run_instances(
            ImageId=KNOWN_AMI, MinCount=1, MaxCount=1, InstanceType="m1.small",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )  # fmt: skip
        return reply["Instances"][0]["InstanceId"]

    orphan, kept = started(gone), started(held)

    def state(iid: str) -> str:
        answer = ec2.describe_instances(InstanceIds=[iid])
        return answer["Reservations"][0]["Instances"][0]["State"]["Name"]

    wait_for(lambda: state(orphan) in ("shutting-down", "terminated"), timeout=60)
    wait_for(lambda: f"{orphan} of finished VM {gone} cancelled" in oned.log, timeout=30)
    assert state(kept) == "running"
    assert f"{kept}" not in oned.log
    assert "DEPLOY_ID" not in oned.run_cli("onehost", "show", "ec2").stdout
