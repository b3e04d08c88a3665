"""econe-server with oned's per-user EC2 keys (`one.user.ec2keysecret` as econe.conf's
`server_auth` user): boto3 signs with a key `one.user.ec2keycreate` made, the actions run as
that key's user, an unknown key is AuthFailure and an oned that is gone is 503 Unavailable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from oned.client import OneClient
from tests.functional.test_econe_cloud import dummy_cloud
from tests.functional.test_econe_server import EconeProcess

USERS = {"carol": "carolpw", "dave": "davepw"}


@pytest.fixture
def cloud(tmp_path):
    oned, sched = dummy_cloud(tmp_path, USERS)
    auth = tmp_path / "one" / "etc" / "econe_server_auth"
    auth.write_text("oneadmin:onecloud\n")
    auth.chmod(0o600)
    econe = EconeProcess(
        tmp_path / "one", one_xmlrpc=oned.endpoint, keys_file=None, server_auth=str(auth)
    ).start()
    yield oned, econe
    econe.stop()
    sched.terminate()
    sched.wait(15)
    oned.stop()


def ec2(econe: EconeProcess, key: str, secret: str):
    return boto3.client(
        "ec2",
        endpoint_url=econe.url,
        region_name="one",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def new_key(oned, user: str) -> tuple[str, str]:
    key, secret = OneClient(oned.endpoint, f"{user}:{USERS[user]}").call(
        "one.user.ec2keycreate", -1
    )
    return key, secret


def code_of(call) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    answer = info.value.response
    return answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]


def test_users_sign_with_their_own_ec2_keys_and_act_as_themselves(cloud, tmp_path):
    oned, econe = cloud
    carol, dave = ec2(econe, *new_key(oned, "carol")), ec2(econe, *new_key(oned, "dave"))
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    ami = carol.register_image(ImageLocation=str(image), Name="disk")["ImageId"]
    assert carol.describe_images(ImageIds=[ami])["Images"][0]["ImageOwnerAlias"] == "carol"
    assert code_of(lambda: dave.describe_images(ImageIds=[ami]))[0] == "InvalidAMIID.NotFound"
    carol.create_key_pair(KeyName="mine")
    assert dave.describe_key_pairs()["KeyPairs"] == []
    key, secret = new_key(oned, "carol")
    assert code_of(ec2(econe, key, "forged").describe_instances) == ("AuthFailure", 401)
    assert code_of(ec2(econe, "AKOCNOSUCHKEY0000000", secret).describe_instances) == (
        "AuthFailure",
        401,
    )


def test_an_unreachable_oned_is_unavailable_not_an_auth_failure(cloud):
    oned, econe = cloud
    key, secret = new_key(oned, "carol")
    oned.stop()
    assert code_of(ec2(econe, key, secret).describe_instances) == ("Unavailable", 503)


def test_the_tools_trade_a_name_and_password_for_the_users_ec2_key(cloud, tmp_path):
    oned, econe = cloud
    env = {**os.environ, "HOME": str(tmp_path), "EC2_URL": econe.url}
    env.pop("ONE_AUTH", None)
    tool = [str(Path(sys.executable).parent / "econe-describe-instances"), "-K", "carol"]
    for _ in range(2):
        done = subprocess.run([*tool, "-S", "carolpw"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    kept = tmp_path / ".one" / "ec2_credentials"
    assert kept.stat().st_mode & 0o777 == 0o600
    key, secret = json.loads(kept.read_text())[f"carol@{econe.url}"]
    keys = OneClient(oned.endpoint, "carol:carolpw").call("one.user.ec2keyinfo", -1)
    assert keys.count("<EC2_KEY>") == 1 and key in keys  # made once, then reused
    assert ec2(econe, key, secret).describe_instances()["Reservations"] == []
    kept.unlink()
    done = subprocess.run([*tool, "-S", "wrong"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "refused carol's name and password" in done.stderr
