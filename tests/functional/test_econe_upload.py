"""`econe-upload FILE` (the installed console script) sends the bytes through econe's S3
endpoint (multipart past 64 MB, a progress bar on stderr) into the bucket `images`, which it
creates, then RegisterImage of `images/FILE` and the wait for `available`, against
`econe-server start` with the default `s3_dir` (<var>/econe-s3) in oned's SAFE_DIRS, as the
operator sets it."""

from __future__ import annotations

import hashlib
import os

import boto3
import pyone
import pytest

from tests.functional.econe_setup import configure_econe
from tests.functional.oned_process import OnedProcess
from tests.functional.test_econe_tools import run

USER, PASSWORD = "consegui01", "consegui2010"
AS_USER = ("-K", USER, "-S", PASSWORD)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("upload")
    location = tmp / "one"
    oned = OnedProcess(location, conf_extra=f'SAFE_DIRS = "{location / "var" / "econe-s3"}"')
    oned.start()
    try:
        pyone.OneServer(oned.endpoint, session="oneadmin:onecloud").user.allocate(USER, PASSWORD)
        port = configure_econe(oned, f"{USER} {PASSWORD}\n")
        env = {**oned.env, "EC2_URL": f"http://127.0.0.1:{port}/"}
        done = run(env, "econe-server", "start")
        assert done.returncode == 0, done.stderr
        yield env, tmp, oned
        run(env, "econe-server", "stop")
    finally:
        oned.stop()


def test_econe_upload_sends_the_file_through_s3_and_registers_it(cloud):
    env, tmp, oned = cloud
    image = tmp / "ttylinux.img"
    data = os.urandom(70 * 2**20)  # over the tool's 64 MB multipart threshold: two parts
    image.write_bytes(data)
    done = run(env, "econe-upload", str(image), *AS_USER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Success: ImageId ami-")
    ami = done.stdout.split()[-1]
    assert "[" + "#" * 40 + "] 100%  70.0 MB / 70.0 MB" in done.stderr
    s3 = boto3.client("s3", endpoint_url=env["EC2_URL"], region_name="one",
                      aws_access_key_id=USER, aws_secret_access_key=PASSWORD)  # fmt: skip
    head = s3.head_object(Bucket="images", Key="ttylinux.img")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-2"')
    images = run(env, "econe-describe-images", *AS_USER).stdout
    assert images.split()[:3] == [USER, ami, "available"]
    admin = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
    source = admin.image.info(int(ami[4:], 16)).SOURCE
    with open(source, "rb") as f:
        assert hashlib.md5(f.read()).digest() == hashlib.md5(data).digest()


def test_a_second_upload_of_the_same_name_is_refused_and_says_why(cloud):
    env, tmp, _ = cloud
    image = tmp / "small.img"
    image.write_bytes(b"\1" * 4096)
    assert run(env, "econe-upload", str(image), *AS_USER).returncode == 0
    done = run(env, "econe-upload", str(image), *AS_USER)
    assert done.returncode == 1
    assert "InvalidAMIName.Duplicate" in done.stderr
