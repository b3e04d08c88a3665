"""A real guest started through econe: `aws ec2 run-instances` boots the test guest on a
namespace host (libvirt/QEMU), its CONTEXT carries the key pair's public key and the user
data into the guest (printed on its serial console by a context init.sh), and `aws ec2
terminate-instances` ends it until its domain is gone.

The AMI is the test guest's disk put into the repository with `oneimage create --wait` by the
user (as test_guest_from_image.py); the instance type is an e2e-only template written here
(the guest's kernel and initrd, the context script), given to econe-server by econe.conf.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pyone
import pytest

from tests.e2e.cloud_fixtures import guest_oned, monitored_host
from tests.e2e.guest_fixtures import ConsoleLog
from tests.functional.oned_process import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
USER, PASSWORD = "alice", "alicepw"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@x"
USER_DATA = "#!/bin/sh\necho hello from econe\n"
INIT_SH = """#!/bin/sh
. ./context.sh
echo "ONECLOUD KEY=$SSH_PUBLIC_KEY"
echo "ONECLOUD USER_DATA=$USER_DATA"
"""
TINY = """NAME   = "eco-vm"
CPU    = 0.1
VCPU   = 1
MEMORY = 128
OS = [ KERNEL = "{kernel}", INITRD = "{initrd}", KERNEL_CMD = "console=ttyS0" ]
DISK = [ IMAGE_ID = {{{{ image_id }}}} ]
CONTEXT = [ HOSTNAME = "eco-vm", FILES = "{init}", TARGET = "hdc"{{% if public_key %}},
  SSH_PUBLIC_KEY = {{{{ public_key | quote }}}}{{% endif %}}{{% if user_data %}},
  USER_DATA = {{{{ user_data | quote }}}}{{% endif %}} ]
"""


@pytest.fixture
def cloud(libvirt_uri, test_guest, run_dir, test_hosts, domain_type, tmp_path):
    """oned (`one start`, SAFE_DIRS: the guest's files and tmp), one monitored namespace host,
    the user, and econe-server with the e2e.tiny instance type."""
    oned = guest_oned(run_dir, domain_type)
    oned.set(SAFE_DIRS=f'"{run_dir} {tmp_path}"')
    started = oned.run_cli("one", "start")
    assert started.returncode == 0, started.stderr
    env = {**oned.env, "HOME": str(tmp_path)}
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        one.user.allocate(USER, PASSWORD)
        monitored_host(one, test_hosts[1][1])
        port = econe_for(oned, test_guest, tmp_path)
        done = subprocess.run([str(BIN / "econe-server"), "start"], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        socket.create_connection(("127.0.0.1", port), 5).close()
        yield oned, one, f"http://127.0.0.1:{port}/"
    finally:
        subprocess.run([str(BIN / "econe-server"), "stop"], env=env, capture_output=True,
                       timeout=60)  # fmt: skip
        for vm in one.vmpool.info(-2, -1, -1, -1).VM:
            one.vm.action("finalize", vm.ID)
        oned.run_cli("one", "stop")


def econe_for(oned, test_guest, tmp_path: Path) -> int:
    """econe.conf with a static key for the user and the e2e-only instance type."""
    etc = oned.location / "etc"
    (etc / "econe").mkdir(parents=True, exist_ok=True)
    keys = etc / "econe_keys"
    keys.write_text(f"{USER} {PASSWORD}\n")
    keys.chmod(0o600)
    types = tmp_path / "types"
    types.mkdir()
    init = tmp_path / "init.sh"
    init.write_text(INIT_SH)
    (types / "e2e.tiny.one.j2").write_text(
        TINY.format(kernel=test_guest.kernel, initrd=test_guest.initrd, init=init)
    )
    port = free_port()
    conf = {"port": port, "one_xmlrpc": oned.endpoint, "keys_file": str(keys),
            "templates_dir": str(types)}  # fmt: skip
    (etc / "econe" / "econe.conf").write_text(json.dumps(conf))
    return port


def aws(url: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": USER, "AWS_SECRET_ACCESS_KEY": PASSWORD,
            "AWS_DEFAULT_REGION": "one", "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": ""}  # fmt: skip
    done = subprocess.run(
        [str(BIN / "aws"), "--endpoint-url", url, *args, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def domain_exists(uri: str, name: str) -> bool:
    conn = libvirt.open(uri)
    try:
        return name in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()


def test_run_instances_boots_the_guest_with_the_key_and_user_data(
    cloud, test_guest, tmp_path, libvirt_uri
):
    """The namespace hosts share this machine's libvirtd (`libvirt_uri`)."""
    oned, one, url = cloud
    (tmp_path / "guest.one").write_text(f'NAME = guest\nTYPE = OS\nPATH = "{test_guest.disk}"\n')
    created = oned.run_cli(
        "oneimage", "create", str(tmp_path / "guest.one"), "--wait",
        env={**oned.env, "ONE_AUTH": str(auth_file(tmp_path))},
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    ami = f"ami-{one.imagepool.info(-2, -1, -1).IMAGE[0].ID:08x}"
    (tmp_path / "mine.pub").write_text(PUBLIC_KEY + "\n")
    aws(url, "ec2", "import-key-pair", "--key-name", "mine",
        "--public-key-material", f"fileb://{tmp_path / 'mine.pub'}")  # fmt: skip
    started = time.monotonic()
    run = aws(url, "ec2", "run-instances", "--image-id", ami, "--instance-type", "e2e.tiny",
              "--key-name", "mine", "--user-data", USER_DATA)  # fmt: skip
    instance = run["Instances"][0]["InstanceId"]
    vid = int(instance[2:], 16)
    console = ConsoleLog(oned.location / "vms" / str(vid) / "console.log")
    key = console.wait_for(r"ONECLOUD KEY=(.*)\r?\n", 180)
    assert key.group(1).strip() == PUBLIC_KEY
    data = console.wait_for(r"ONECLOUD USER_DATA=(\S*)", 30)
    assert base64.b64decode(data.group(1)).decode() == USER_DATA
    console.wait_for(r"ONECLOUD BOOTED", 60)

    def state() -> str:
        found = aws(url, "ec2", "describe-instances", "--instance-ids", instance)
        return found["Reservations"][0]["Instances"][0]["State"]["Name"]

    wait_for(lambda: state() == "running", 60, step=0.5)
    booted = time.monotonic() - started
    domain = f"one-{vid}"
    assert domain_exists(libvirt_uri, domain)
    ended = aws(url, "ec2", "terminate-instances", "--instance-ids", instance)
    assert ended["TerminatingInstances"][0]["CurrentState"]["Name"] == "shutting-down"
    wait_for(lambda: state() == "terminated", 120, step=0.5)
    assert not domain_exists(libvirt_uri, domain)
    print(f"run-instances to running: {booted:.1f} s")


def auth_file(tmp_path: Path) -> Path:
    path = tmp_path / "alice_auth"
    path.write_text(f"{USER}:{PASSWORD}\n")
    return path
