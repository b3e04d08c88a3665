"""The seed's part V ("Building your Public Cloud") as written, then the same cloud over HTTPS.

One walk, as an operator and a workshop user would do it: econe.conf (the seed's USER/PASSWORD,
ONE_XMLRPC, SERVER/PORT and VM_TYPE in econe.conf's YAML), the m1.small type prepared as the
seed says (ttylinux's kernel, the "one-td" network owned by oneadmin), `econe-server start`,
its log, and the econe-* session with the seed's output; oneadmin's local view (`onevm
list`). Then the operator gives econe-server a certificate (self-signed, made here) and the
same cloud is driven unchanged over HTTPS by the seed's tools (EC2_URL=https://...), `aws ec2
run-instances / describe-instances / terminate-instances` with `--ca-bundle`, and a boto3
script with `verify=<cafile>`; a client that does not trust the certificate is refused.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.oned_process import free_port
from tests.functional.test_econe_cloud import dummy_cloud
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
USER, PASSWORD = "consegui01", "consegui2010"
AS_USER = ("-K", USER, "-S", PASSWORD)
ONE_TD = 'NAME = "one-td"\nTYPE = FIXED\nBRIDGE = br0\n' + "".join(
    f'LEASES = [ IP = "192.168.169.{n}" ]\n' for n in range(5, 9)
)
BOTO3_SCRIPT = """
import sys, time, boto3
url, key, secret, ami, cafile = sys.argv[1:]
ec2 = boto3.client("ec2", endpoint_url=url, region_name="one", aws_access_key_id=key,
                   aws_secret_access_key=secret, verify=cafile)
iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                        InstanceType="m1.small")["Instances"][0]["InstanceId"]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    found = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    if found["State"]["Name"] == "running":
        break
    time.sleep(0.2)
else:
    sys.exit(f"{iid} is still {found['State']['Name']}")
change = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
print(iid, found["State"]["Name"], change["CurrentState"]["Name"])
"""


def certificate(folder: Path) -> tuple[Path, Path]:
    """(key, certificate) for 127.0.0.1, self-signed; the address in subjectAltName, which
    clients check (Python's ssl no longer reads the CN)."""
    key, cert = folder / "econe.key", folder / "econe.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


def econe_conf(etc: Path, endpoint: str, port: int, tls: str = "") -> None:
    """The seed's econe.conf, in econe.conf's YAML."""
    (etc / "econe" / "econe.conf").write_text(
        "# OpenNebula administrator user, the one_auth contents (the seed's USER, PASSWORD)\n"
        "server_auth: econe/server_auth\n"
        "# OpenNebula server contact information\n"
        f"one_xmlrpc: {endpoint}\n"
        "# Host and port where econe server will run\n"
        f"host: 127.0.0.1\nport: {port}\n"
        "# VM types allowed and their template files (etc/templates/ec2query)\n"
        "instance_types: {m1.small: {template: m1.small.one.j2}}\n"
        "# the network of public VMs (the seed's NIC in m1.small.erb)\n"
        "public_network: one-td\n"
        "# the S3 endpoint's objects (econe-upload), in oned's SAFE_DIRS: oned copies them\n"
        f"s3_dir: {etc.parent.parent}/s3\n" + tls
    )


def m1_small(etc: Path, kernel: Path) -> None:
    """The shipped m1.small, prepared as the seed's slide says: ttylinux's kernel and initrd."""
    types = etc / "templates" / "ec2query"
    types.mkdir(parents=True)
    shipped = (ROOT / "templates" / "ec2query" / "m1.small.one.j2").read_text()
    os_line = f'OS = [ KERNEL = "{kernel}/vmlinuz-xen", INITRD = "{kernel}/initrd.gz" ]\n'
    (types / "m1.small.one.j2").write_text(shipped.replace("\nDISK", f"\n{os_line}DISK", 1))


def tool(env: dict[str, str], name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / name), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cloud(tmp_path):
    oned, sched = dummy_cloud(tmp_path, {USER: PASSWORD})
    env = {**oned.env, "HOME": str(tmp_path)}
    env.pop("EC2_URL", None)  # the seed: unset EC2_URL; econe-server start
    try:
        yield oned, env
    finally:
        tool(env, "econe-server", "stop")
        sched.terminate()
        sched.wait(15)
        oned.stop()


def test_the_seeds_part_v_then_the_same_cloud_over_https(cloud, tmp_path):
    oned, env = cloud
    etc = oned.location / "etc"
    (etc / "econe").mkdir()
    auth = etc / "econe" / "server_auth"
    auth.write_text("oneadmin:onecloud\n")
    auth.chmod(0o600)
    port = free_port()
    econe_conf(etc, oned.endpoint, port)
    kernel = tmp_path / "ttylinux-xen"
    kernel.mkdir()
    for name in ("vmlinuz-xen", "initrd.gz"):
        (kernel / name).write_bytes(b"\0")
    m1_small(etc, kernel)
    (tmp_path / "one-td.net").write_text(ONE_TD)
    for command in (("create", str(tmp_path / "one-td.net")), ("publish", "one-td")):
        done = oned.run_cli("onevnet", *command)
        assert done.returncode == 0, done.stderr

    done = tool(env, "econe-server", "start")
    assert done.returncode == 0, done.stderr
    socket.create_connection(("127.0.0.1", port), 5).close()  # the seed's `lsof -i`
    log = (oned.location / "var" / "econe-server.log").read_text()
    assert "listening on http://127.0.0.1" in log and "[E]" not in log

    env["EC2_URL"] = f"http://127.0.0.1:{port}/"
    image = tmp_path / "ttylinux.img"
    image.write_bytes(b"\1" * 65536)
    done = tool(env, "econe-upload", str(image), *AS_USER)
    assert done.returncode == 0, done.stderr
    ami = done.stdout.split()[-1]
    done = tool(env, "econe-describe-images", "-H", *AS_USER)
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["Owner", "ImageId", "Status", "Visibility", "Location"]
    assert lines[1].startswith("-----") and lines[2].split()[:3] == [USER, ami, "available"]
    done = tool(env, "econe-run-instances", str(int(ami[4:], 16)), *AS_USER)  # `... 1 -K ...`
    assert done.returncode == 0, done.stderr
    owner, image_id, instance, kind = done.stdout.split()
    assert (owner, image_id, kind) == (USER, ami, "m1.small") and instance.startswith("i-")
    done = tool(env, "econe-describe-instances", *AS_USER)
    row = done.stdout.split()
    assert row[:3] == [USER, instance, ami] and row[3] in ("pending", "running"), done.stdout
    assert row[4:] == ["192.168.169.5", "m1.small"]
    vid = int(instance[2:], 16)
    wait_for(lambda: local_view(oned, vid)[2:4] == ["eco-vm", "runn"], timeout=60)
    assert USER.startswith(local_view(oned, vid)[1])  # `onevm list` cuts USER to 8

    key, cert = certificate(tmp_path)
    assert tool(env, "econe-server", "stop").returncode == 0
    econe_conf(etc, oned.endpoint, port, f"ssl_cert: {cert}\nssl_key: {key}\n")
    done = tool(env, "econe-server", "start")
    assert done.returncode == 0, done.stderr
    url = f"https://127.0.0.1:{port}/"
    https = {**env, "EC2_URL": url, "AWS_CA_BUNDLE": str(cert)}  # the tools and the exchange
    done = tool(https, "econe-describe-instances", *AS_USER)
    assert done.stdout.split()[1:5] == [instance, ami, "running", "192.168.169.5"], done.stderr

    made = oned.run_cli("oneuser", "ec2key", "create", USER).stdout.split()
    access_key = next(w for w in made if w.startswith("AKOC"))
    secret = next(w for w in made[made.index(access_key) + 1 :] if len(w) == 40)
    aws_env = aws_environment(env, access_key, secret)
    answer = aws(aws_env, url, "--ca-bundle", str(cert), "ec2", "run-instances",
                 "--image-id", ami, "--instance-type", "m1.small", "--count", "1")  # fmt: skip
    other = answer["Instances"][0]["InstanceId"]
    listed = aws(aws_env, url, "--ca-bundle", str(cert), "ec2", "describe-instances")
    seen = {i["InstanceId"]: i for r in listed["Reservations"] for i in r["Instances"]}
    assert {instance, other} <= set(seen) and seen[instance]["PrivateIpAddress"] == "192.168.169.5"
    ended = aws(aws_env, url, "--ca-bundle", str(cert), "ec2", "terminate-instances",
                "--instance-ids", other)  # fmt: skip
    assert ended["TerminatingInstances"][0]["InstanceId"] == other
    untrusted = subprocess.run(
        [str(BIN / "aws"), "--endpoint-url", url, "ec2", "describe-instances"],
        env=aws_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert untrusted.returncode == 255 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr

    script = tmp_path / "burst.py"
    script.write_text(BOTO3_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), url, access_key, secret, ami, str(cert)],
        env=aws_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == ["running", "shutting-down"]
    done = tool(https, "econe-terminate-instances", instance, *AS_USER)
    assert done.stdout.strip() == f"Success: Terminating {instance} in shutting-down state"


def local_view(oned, vid: int) -> list[str]:
    """The row of `onevm list` (oneadmin) for the VM."""
    rows = oned.run_cli("onevm", "list").stdout.splitlines()
    return next((r.split() for r in rows if r.split()[:1] == [str(vid)]), [])


def aws_environment(env: dict[str, str], key: str, secret: str) -> dict[str, str]:
    clean = {k: v for k, v in env.items() if not k.startswith(("AWS_", "SSL_CERT"))}
    return clean | {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "one",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
    }


def aws(env: dict[str, str], url: str, *args: str) -> dict:
    done = subprocess.run(
        [str(BIN / "aws"), "--endpoint-url", url, *args, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
