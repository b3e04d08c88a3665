"""one_vmm_ec2 as a real process on the line protocol, against moto's EC2 server: idempotent
deploys (re-issued, and after a driver restart), one DescribeInstances for a cycle of POLLs,
ELASTICIP, stop/start, cancel of a VM whose deploy never answered, and the start-up report."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.functional.moto_region import KNOWN_AMI, MotoRegion

ROOT = Path(__file__).resolve().parents[2]


class Driver:
    """A driver child process: send request lines, read its replies with a deadline."""

    def __init__(self, location: Path, *argv: str) -> None:
        env = {**os.environ, "ONE_LOCATION": str(location), "PYTHONPATH": str(ROOT)}
        self.stderr = location / "var" / "driver.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *argv],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr.open("a"),
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ask("INIT") == "INIT SUCCESS - -"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = 30) -> str:
        """The next line that is not a LOG line."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if not line.startswith("LOG "):
                return line

    def ask(self, line: str) -> str:
        self.send(line)
        return self.reply()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.send("FINALIZE")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def region():
    with MotoRegion() as moto:
        yield moto


@pytest.fixture
def location(tmp_path, region):
    """An install with vmm_ec2.conf pointing at moto (5 m1.small) and an empty var/."""
    (tmp_path / "etc" / "vmm_ec2").mkdir(parents=True)
    (tmp_path / "var").mkdir()
    creds = tmp_path / "etc" / "creds.yaml"
    creds.write_text("access_key_id: testing\nsecret_access_key: testing\n")
    creds.chmod(0o600)
    cloud = f"d{time.monotonic_ns() % 10**9}"
    (tmp_path / "etc" / "vmm_ec2" / "vmm_ec2.conf").write_text(
        f"SMALL_INSTANCES=5\nENDPOINT={region.endpoint}\nCREDENTIALS=creds.yaml\n"
        f"CLOUD_ID={cloud}\nWAIT_TIMEOUT=20\nPOLL_WINDOW=0.3\nPOLL_CACHE=2\n"
    )
    return tmp_path


@pytest.fixture
def driver(location):
    started: list[Driver] = []

    def start() -> Driver:
        started.append(Driver(location, "drivers.vmm_ec2", "vmm_ec2/vmm_ec2.conf"))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def deployment(location: Path, vid: int, ec2: str, seq: int = 0) -> str:
    """oned's deployment file for VM ``vid`` and the DEPLOY request naming it."""
    folder = location / "var" / str(vid)
    folder.mkdir(exist_ok=True)
    (folder / f"deployment.{seq}").write_text(
        f"<VM><ID>{vid}</ID><NAME>vm{vid}</NAME><TEMPLATE><EC2>{ec2}</EC2></TEMPLATE></VM>"
    )
    return f"DEPLOY {vid} ec2 /srv/one/var/{vid}/images/deployment.{seq} -"


def test_a_reissued_deploy_and_one_after_a_restart_answer_the_same_instance(
    location, driver, region
):
    request = deployment(location, 1, f"<AMI>{KNOWN_AMI}</AMI>")
    first = driver()
    before = region.calls()["RunInstances"]
    reply = first.ask(request)
    assert reply.startswith("DEPLOY SUCCESS 1 i-")
    assert first.ask(request) == reply
    first.stop()
    assert driver().ask(request) == reply
    assert region.calls()["RunInstances"] - before == 1
    assert (
        "live instances: " + reply.split()[-1] + " (VM 1)"
        in (location / "var" / "driver.log").read_text()
    )


def test_the_polls_of_a_cycle_share_one_describe_instances(location, driver, region):
    one = driver()
    ids = [
        one.ask(deployment(location, vid, f"<AMI>{KNOWN_AMI}</AMI>")).split()[-1]
        for vid in range(5)
    ]
    time.sleep(2.5)  # past POLL_CACHE: the next POLLs need a new listing
    before = region.calls()["DescribeInstances"]
    for _ in range(4):
        for vid, iid in enumerate(ids):
            one.send(f"POLL {vid} ec2 {iid} -")
        replies = sorted(one.reply() for _ in ids)
        assert all("STATE=a" in r and "IP=" in r for r in replies), replies
    assert region.calls()["DescribeInstances"] - before == 1


def test_elasticip_is_associated_and_save_restore_are_stop_and_start(location, driver, region):
    ec2 = region.client()
    address = ec2.allocate_address(Domain="vpc")
    one = driver()
    ec2_section = f"<AMI>{KNOWN_AMI}</AMI><ELASTICIP>{address['AllocationId']}</ELASTICIP>"
    iid = one.ask(deployment(location, 7, ec2_section)).split()[-1]
    found = ec2.describe_addresses(AllocationIds=[address["AllocationId"]])["Addresses"][0]
    assert found["InstanceId"] == iid
    assert one.ask(f"SAVE 7 ec2 {iid} /srv/one/var/7/images/checkpoint") == "SAVE SUCCESS 7 -"
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "stopped"
    assert (
        one.ask(f"RESTORE 7 ec2 {iid} /srv/one/var/7/images/checkpoint")
        == f"RESTORE SUCCESS 7 {iid}"
    )
    assert one.ask(f"MIGRATE 7 ec2 {iid} other") == (
        "MIGRATE FAILURE 7 Action not implemented by driver EC2Driver"
    )


def test_cancel_without_a_deploy_id_terminates_the_vms_tagged_instance(location, driver, region):
    """A DEPLOY oned gave up on (no deploy id): CANCEL finds the instance by its tag."""
    one = driver()
    iid = one.ask(deployment(location, 9, f"<AMI>{KNOWN_AMI}</AMI>")).split()[-1]
    assert one.ask("CANCEL 9 ec2 - -") == "CANCEL SUCCESS 9 -"
    answer = region.client().describe_instances(InstanceIds=[iid])
    assert answer["Reservations"][0]["Instances"][0]["State"]["Name"] in (
        "shutting-down",
        "terminated",
    )
    assert one.ask(f"POLL 9 ec2 {iid} -").endswith("STATE=d")


def test_a_failed_elasticip_fails_the_deploy_and_leaves_no_instance(location, driver, region):
    one = driver()
    ec2_section = f"<AMI>{KNOWN_AMI}</AMI><ELASTICIP>eipalloc-00000000</ELASTICIP>"
    reply = one.ask(deployment(location, 11, ec2_section))
    assert reply.startswith("DEPLOY FAILURE 11 EC2 ELASTICIP eipalloc-00000000: AssociateAddress: ")
    filters = [{"Name": "tag:one:vmid", "Values": ["11"]}]
    answer = region.client().describe_instances(Filters=filters)
    states = {i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}
    assert states and states <= {"shutting-down", "terminated"}
