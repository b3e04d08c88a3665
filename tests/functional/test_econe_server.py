"""A real econe-server process answered by real boto3 (SigV4 and SigV2) and awscli, over HTTP
and HTTPS; forged, wrong-region, malformed and oversize requests get EC2's 4xx errors and a
slow client does not hold the others up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import urllib3
from botocore.config import Config

from tests.functional.oned_process import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "AKIDECONETEST", "econe-test-secret"


class EconeProcess:
    """econe-server in the foreground under a temporary ONE_LOCATION."""

    def __init__(self, location: Path, **conf: object) -> None:
        self.location = location
        self.port = free_port()
        (location / "etc").mkdir(parents=True, exist_ok=True)
        keys = location / "etc" / "econe_keys"
        keys.write_text(f"# access key, secret\n{KEY} {SECRET}\n")
        keys.chmod(0o600)
        settings = {"host": "127.0.0.1", "port": self.port, "region": "one"}
        settings |= {"zones": ["one", "two"], "keys_file": str(keys), **conf}
        self.conf = location / "etc" / "econe.conf"
        self.conf.write_text(json.dumps(settings))  # JSON is YAML
        self.log = location / "var" / "econe-server.log"
        scheme = "https" if "ssl_cert" in conf else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def start(self) -> EconeProcess:
        env = {**os.environ, "ONE_LOCATION": str(self.location)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "econe.server", "-c", str(self.conf)], cwd=ROOT, env=env
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "econe-server exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("econe-server did not listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(10) == 0

    def client(self, secret=SECRET, region="one", **config):
        return boto3.client(
            "ec2",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=KEY,
            aws_secret_access_key=secret,
            verify=False,
            config=Config(retries={"max_attempts": 1}, **config),
        )


@pytest.fixture
def econe(tmp_path):
    process = EconeProcess(tmp_path / "one").start()
    yield process
    process.stop()


def error_of(call) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    answer = info.value.response
    return answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]


def test_boto3_describes_the_region_and_its_zones(econe):
    ec2 = econe.client()
    regions = ec2.describe_regions()["Regions"]
    assert regions == [
        {"RegionName": "one", "Endpoint": econe.url, "OptInStatus": "opt-in-not-required"}
    ]
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["State"], z["RegionName"]) for z in zones] == [
        ("one", "available", "one"),
        ("two", "available", "one"),
    ]
    picked = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["t*"]}])
    assert [z["ZoneName"] for z in picked["AvailabilityZones"]] == ["two"]
    assert "DescribeAvailabilityZones AKIDECONETEST 200" in econe.log.read_text()


def test_boto3_with_signature_v2_is_answered(econe):
    """What the old econe-* tools signed with."""
    ec2 = econe.client(signature_version="v2")
    assert ec2.describe_regions()["Regions"][0]["RegionName"] == "one"


def test_forged_and_misdirected_signatures_are_auth_failures(econe):
    assert error_of(econe.client(secret="wrong").describe_regions) == ("AuthFailure", 401)
    assert error_of(econe.client(region="eu-west-1").describe_regions) == ("AuthFailure", 401)
    v2 = econe.client(secret="wrong", signature_version="v2")
    assert error_of(v2.describe_regions) == ("AuthFailure", 401)
    assert SECRET not in econe.log.read_text()


def test_client_mistakes_are_4xx_with_ec2_codes(econe):
    ec2 = econe.client()
    assert error_of(lambda: ec2.describe_regions(DryRun=True)) == ("DryRunOperation", 412)
    assert error_of(lambda: ec2.describe_regions(RegionNames=["mars"]))[1] == 400
    assert error_of(ec2.describe_volumes) == ("UnsupportedOperation", 400)
    assert error_of(ec2.describe_instances) == ("Unavailable", 503)  # no oned behind it
    bad = ec2.describe_availability_zones
    assert error_of(lambda: bad(Filters=[{"Name": "colour", "Values": ["x"]}]))[1] == 400
    assert error_of(lambda: ec2.describe_instances(InstanceIds=["i-1"])) == (
        "InvalidInstanceID.Malformed",
        400,
    )


def raw_post(econe, body: bytes, headers: dict | None = None) -> urllib3.BaseHTTPResponse:
    return urllib3.PoolManager(cert_reqs="CERT_NONE").request(
        "POST", econe.url, body=body, headers=headers or {}, retries=False
    )


def test_unsigned_unknown_and_oversize_requests_are_refused(econe):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = raw_post(econe, b"Action=LaunchMissiles&Version=2016-11-15", form)
    assert answer.status == 403 and b"MissingAuthenticationToken" in answer.data
    answer = raw_post(econe, b"Action=DescribeRegions&Version=2016-11-15&x=" + b"a" * 300_000, form)
    assert answer.status == 413 and b"<Code>RequestEntityTooLarge</Code>" in answer.data
    ec2 = econe.client()
    assert ec2.describe_regions()["Regions"]  # still serving


def test_an_unknown_action_signed_correctly_is_invalid_action(econe):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = "Action=LaunchMissiles&Version=2016-11-15"
    aws = AWSRequest(
        "POST", econe.url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    SigV4Auth(Credentials(KEY, SECRET), "ec2", "one").add_auth(aws)
    answer = raw_post(econe, body.encode(), dict(aws.headers))
    assert answer.status == 400 and b"<Code>InvalidAction</Code>" in answer.data


def test_a_slow_client_does_not_hold_up_the_others(econe):
    with socket.create_connection(("127.0.0.1", econe.port)) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nAction=")
        assert econe.client().describe_regions()["Regions"]


def aws(econe, *args: str, secret: str = SECRET) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "one",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
    }
    cmd = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", econe.url, "--no-verify-ssl"]
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=60)


def test_awscli_describes_zones_and_exits_255_on_a_forged_signature(econe):
    done = aws(econe, "ec2", "describe-availability-zones", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert [z["ZoneName"] for z in json.loads(done.stdout)["AvailabilityZones"]] == ["one", "two"]
    done = aws(econe, "ec2", "describe-regions", secret="forged")
    assert done.returncode == 255
    assert "(AuthFailure)" in done.stderr


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(key, certificate) for 127.0.0.1, made by openssl."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_https_with_a_self_signed_certificate(tmp_path):
    key, cert = self_signed(tmp_path)
    econe = EconeProcess(tmp_path / "one", ssl_cert=str(cert), ssl_key=str(key)).start()
    try:
        urllib3.disable_warnings()
        assert econe.url.startswith("https://")
        assert econe.client().describe_regions()["Regions"][0]["Endpoint"] == econe.url
        done = aws(econe, "ec2", "describe-regions", "--output", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["Regions"][0]["RegionName"] == "one"
    finally:
        econe.stop()


def test_a_bad_config_or_a_keys_file_others_can_read_stops_the_start(tmp_path):
    econe = EconeProcess(tmp_path / "one")
    (econe.location / "etc" / "econe_keys").chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "econe.server", "-c", str(econe.conf)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1 and "chmod 600" in done.stderr
    econe.conf.write_text("colour: blue\n")
    done = subprocess.run(
        [sys.executable, "-m", "econe.server", "-c", str(econe.conf)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1 and "unknown setting 'colour'" in done.stderr
