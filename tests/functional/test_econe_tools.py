"""The seed's part V session with the econe-* tools (the installed console scripts) against
`econe-server start` (detached, pid file, log) in front of a real oned: upload, describe the
images, run, describe and terminate, with credentials from flags, EC2_* and ONE_AUTH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.oned_process import free_port
from tests.functional.test_econe_cloud import dummy_cloud
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """oned + mm_sched + `econe-server start` with econe.conf at its installed place."""
    tmp = tmp_path_factory.mktemp("tools")
    oned, sched = dummy_cloud(tmp, {"consegui01": "consegui2010"})
    etc = oned.location / "etc"
    (etc / "econe").mkdir()
    keys = etc / "econe_keys"
    keys.write_text("consegui01 consegui2010\n")
    keys.chmod(0o600)
    port = free_port()
    conf = {"port": port, "one_xmlrpc": oned.endpoint, "keys_file": str(keys)}
    conf["templates_dir"] = str(ROOT / "templates" / "ec2query")
    conf["s3_dir"] = str(tmp / "s3")  # in SAFE_DIRS: oned copies uploaded images from there
    (etc / "econe" / "econe.conf").write_text(json.dumps(conf))
    env = {**oned.env, "EC2_URL": f"http://127.0.0.1:{port}/"}
    done = run(env, "econe-server", "start")
    assert done.returncode == 0, done.stderr
    image = tmp / "ttylinux.img"
    image.write_bytes(b"\1" * 65536)
    yield env, image, oned
    run(env, "econe-server", "stop")
    sched.terminate()
    sched.wait(15)
    oned.stop()


def run(env: dict[str, str], tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / tool), *args], env=env, capture_output=True, text=True, timeout=120
    )


AS_USER = ("-K", "consegui01", "-S", "consegui2010")


def test_the_seeds_session(cloud):
    env, image, oned = cloud
    done = run(env, "econe-upload", str(image), *AS_USER)
    assert done.returncode == 0, done.stderr
    ami = done.stdout.split()[-1]
    assert done.stdout.startswith("Success: ImageId ami-")
    done = run(env, "econe-describe-images", "-H", *AS_USER)
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["Owner", "ImageId", "Status", "Visibility", "Location"]
    assert lines[1].startswith("-----")
    assert lines[2].split()[:3] == ["consegui01", ami, "available"]
    done = run(env, "econe-run-instances", str(int(ami[4:], 16)), *AS_USER)  # the seed's number
    assert done.returncode == 0, done.stderr
    owner, image_id, instance, kind = done.stdout.split()
    assert (image_id, kind) == (ami, "m1.small") and instance.startswith("i-")
    wait_for(lambda: "running" in run(env, "econe-describe-instances", *AS_USER).stdout, timeout=60)
    done = run(env, "econe-describe-instances", "-H", *AS_USER)
    assert done.stdout.splitlines()[0].split() == ["Owner", "Id", "ImageId", "State", "IP", "Type"]
    assert done.stdout.splitlines()[2].split()[1:4] == [instance, ami, "running"]
    done = run(env, "econe-terminate-instances", instance, *AS_USER)
    assert done.stdout.strip() == f"Success: Terminating {instance} in shutting-down state"
    log = (oned.location / "var" / "econe-server.log").read_text()
    assert "RunInstances consegui01 200" in log


def test_credentials_from_the_environment_and_one_auth(cloud, tmp_path):
    env, _, _ = cloud
    by_env = {**env, "EC2_ACCESS_KEY": "consegui01", "EC2_SECRET_KEY": "consegui2010"}
    assert run(by_env, "econe-describe-images").returncode == 0
    auth = tmp_path / "one_auth"
    auth.write_text("consegui01:consegui2010\n")
    by_file = {**env, "ONE_AUTH": str(auth)}
    by_file.pop("EC2_ACCESS_KEY", None)
    assert run(by_file, "econe-describe-instances").returncode == 0
    done = run(env, "econe-describe-images", "-K", "consegui01", "-S", "wrong")
    assert done.returncode == 1 and "AuthFailure" in done.stderr
    done = run(env, "econe-terminate-instances", "i-zz", *AS_USER)
    assert done.returncode == 1 and "InvalidInstanceID.Malformed" in done.stderr


def test_econe_server_start_twice_and_stop(cloud):
    env, _, oned = cloud
    pid_file = oned.location / "var" / "econe-server.pid"
    pid = int(pid_file.read_text())
    done = run(env, "econe-server", "start")
    assert done.returncode == 1 and f"already running (PID {pid})" in done.stderr
    assert run(env, "econe-server", "stop").returncode == 0
    assert not pid_file.exists()
    assert not os.path.exists(f"/proc/{pid}") or "econe" not in Path(
        f"/proc/{pid}/cmdline"
    ).read_text(errors="replace")
    done = run(env, "econe-server", "stop")
    assert done.returncode == 1 and "not running" in done.stderr
    assert run(env, "econe-server", "start").returncode == 0
