"""The EC2 drivers' configuration and credentials (drivers/ec2_common.py), and im_ec2's
MONITOR answer from the limits: pure parsing, literal text in, values out."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest

from drivers.ec2_common import describe_error, load_credentials
from drivers.ec2_conf import GB, ConfError, Limit, conf_path, load_settings, parse_conf
from drivers.im_ec2 import host_info, used_types
from drivers.protocol import parse_request

SEED = "SMALL_INSTANCES=5\nLARGE_INSTANCES=\nEXTRALARGE_INSTANCES=\n"


def test_the_seeds_limits_give_tcpu_500_and_tmem_8912896():
    """Reference §11.1: 5 m1.small, empty large and extra-large."""
    settings = parse_conf(SEED)
    assert settings.limits["m1.small"].count == 5
    assert settings.limits["m1.large"].count == 0
    info = host_info("ec2", settings.limits, Counter(), "us-east-1")
    assert info.startswith(
        "HOSTNAME=ec2 HYPERVISOR=ec2 TOTALMEMORY=8912896 TOTALCPU=500 CPUSPEED=1000 "
        "FREEMEMORY=8912896 FREECPU=500 "
    )
    assert "EC2_FREE_M1_SMALL=5" in info and "EC2_FREE_M1_LARGE=0" in info
    assert "EC2_LIMIT_M1_SMALL=5" in info


def test_running_instances_take_their_types_share_of_the_free_capacity():
    limits = parse_conf("SMALL_INSTANCES=5\nm5.large=2\n").limits
    instances = [
        {"InstanceType": "m1.small", "State": {"Name": "running"}},
        {"InstanceType": "m5.large", "State": {"Name": "pending"}},
        {"InstanceType": "m5.large", "State": {"Name": "terminated"}},
    ]
    info = dict(p.split("=") for p in host_info("ec2", limits, used_types(instances), "r").split())
    assert info["TOTALCPU"] == "900" and info["FREECPU"] == "600"
    assert int(info["FREEMEMORY"]) == round(4 * 1.7 * GB + 8 * GB)
    assert info["EC2_FREE_M5_LARGE"] == "1" and info["EC2_INSTANCES"] == "2"


def test_modern_types_take_a_count_or_count_cpu_and_memory():
    settings = parse_conf("t3.micro=10\nc7g.large=3:200:4096  # graviton\n")
    assert settings.limits["t3.micro"] == Limit(10, 200, 1.0 * GB)
    assert settings.limits["c7g.large"] == Limit(3, 200, 4096 * 1024.0)


@pytest.mark.parametrize(
    "text, named",
    [
        ("c7g.large=3\n", "c7g.large: unknown instance type"),
        ("SMALL_INSTANCES=five\n", "m1.small='five'"),
        ("WHATEVER=1\n", "unknown attribute WHATEVER"),
        ("just words\n", "not NAME=value"),
        ("READ_TIMEOUT=-1\n", "READ_TIMEOUT must be positive"),
        ("RETRY_MODE=sometimes\n", "RETRY_MODE"),
        ("CLOUD_ID=Has Spaces\n", "CLOUD_ID"),
    ],
)
def test_a_wrong_line_is_refused_naming_the_file_line_and_attribute(text, named):
    with pytest.raises(ConfError) as err:
        parse_conf("# comment\n" + text, "im_ec2.conf")
    assert "im_ec2.conf:2" in str(err.value) and named in str(err.value)


def test_settings_and_template_defaults_are_read_in_shell_form():
    settings = parse_conf(
        'export REGION="eu-west-1"\nENDPOINT=http://127.0.0.1:5000\nKEYPAIR=mykey\n'
        "AUTHORIZED_PORTS=22\nMAX_ATTEMPTS=7\nPROFILE=\n"
    )
    assert (settings.region, settings.endpoint, settings.max_attempts) == (
        "eu-west-1",
        "http://127.0.0.1:5000",
        7,
    )
    assert settings.profile is None
    assert settings.defaults == {"KEYPAIR": "mykey", "AUTHORIZEDPORTS": "22"}


def test_opennebula_14s_xml_vmm_conf_gives_the_defaults():
    text = (
        "<TEMPLATE><EC2><KEYPAIR>gsg</KEYPAIR><AUTHORIZEDPORTS/>"
        "<INSTANCETYPE>m1.small</INSTANCETYPE></EC2></TEMPLATE>"
    )
    assert parse_conf(text).defaults == {"KEYPAIR": "gsg", "INSTANCETYPE": "m1.small"}


def test_the_shipped_files_parse(tmp_path):
    from pathlib import Path

    share = Path(__file__).resolve().parents[2] / "share" / "etc"
    im = parse_conf((share / "im_ec2" / "im_ec2.conf").read_text())
    vmm = parse_conf((share / "vmm_ec2" / "vmm_ec2.conf").read_text())
    assert im.limits["m1.small"].count == 5 and im.credentials is None
    assert vmm.limits_file == "im_ec2/im_ec2.conf" and vmm.defaults == {"INSTANCETYPE": "m1.small"}


def test_relative_paths_are_under_etc_and_arguments_override_the_file(tmp_path):
    env = {"ONE_LOCATION": str(tmp_path)}
    (tmp_path / "etc" / "im_ec2").mkdir(parents=True)
    (tmp_path / "etc" / "im_ec2" / "im_ec2.conf").write_text(
        "REGION=us-east-1\nCREDENTIALS=ec2/c.yaml\n"
    )
    args = parse_request("X 0 im_ec2/im_ec2.conf --region eu-west-3").args
    from drivers.ec2_conf import ec2_parser

    ns = ec2_parser("one_im_ec2", "doc", 1).parse_args(list(args))
    settings = load_settings(ns, env)
    assert settings.region == "eu-west-3"
    assert settings.credentials == str(tmp_path / "etc" / "ec2" / "c.yaml")
    assert conf_path("/abs/file", env) == "/abs/file"
    assert conf_path("x.conf", {}) == "/etc/one/x.conf"


def test_a_missing_conf_is_refused_naming_its_path(tmp_path):
    ns = argparse.Namespace(
        conf="im_ec2/im_ec2.conf", region=None, endpoint=None, credentials=None, profile=None
    )
    with pytest.raises(ConfError, match=r"im_ec2/im_ec2\.conf: No such file"):
        load_settings(ns, {"ONE_LOCATION": str(tmp_path)})


def test_credentials_readable_by_others_are_refused_and_never_shown(tmp_path):
    creds = tmp_path / "c.yaml"
    creds.write_text("access_key_id: AKIA1\nsecret_access_key: s3cr3t-value\n")
    creds.chmod(0o644)
    with pytest.raises(ConfError) as err:
        load_credentials(str(creds))
    assert "mode 0644" in str(err.value) and "chmod 600" in str(err.value)
    assert "s3cr3t" not in str(err.value)
    creds.chmod(0o600)
    assert load_credentials(str(creds)) == {
        "aws_access_key_id": "AKIA1",
        "aws_secret_access_key": "s3cr3t-value",
    }


@pytest.mark.parametrize(
    "text, named",
    [
        ("access_key_id: A\n", "lack secret_access_key"),
        ("- a\n", "must map"),
        ("a: [\n", "not YAML"),
    ],
)
def test_incomplete_credentials_are_refused_naming_what_lacks(tmp_path, text, named):
    creds = tmp_path / "c.yaml"
    creds.write_text(text)
    creds.chmod(0o600)
    with pytest.raises(ConfError, match=named):
        load_credentials(str(creds))


def test_ec2_errors_read_as_code_and_message():
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    error = {
        "Error": {
            "Code": "InvalidAMIID.NotFound",
            "Message": "The image id '[ami-1]' does not exist",
        }
    }
    assert describe_error(ClientError(error, "RunInstances")) == (
        "InvalidAMIID.NotFound: The image id '[ami-1]' does not exist"
    )
    assert describe_error(NoCredentialsError()).startswith("no EC2 credentials")
    assert "cannot reach" in describe_error(EndpointConnectionError(endpoint_url="http://x"))


def test_an_install_without_the_file_in_etc_reads_the_shipped_one_under_share(tmp_path):
    """install.sh copies share/ (with share/etc/im_ec2/im_ec2.conf) but nothing into etc/."""
    env = {"ONE_LOCATION": str(tmp_path)}
    shipped = tmp_path / "share" / "etc" / "im_ec2" / "im_ec2.conf"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("SMALL_INSTANCES=5\n")
    assert conf_path("im_ec2/im_ec2.conf", env) == str(shipped)
    mine = tmp_path / "etc" / "im_ec2" / "im_ec2.conf"
    mine.parent.mkdir(parents=True)
    mine.write_text("SMALL_INSTANCES=1\n")
    assert conf_path("im_ec2/im_ec2.conf", env) == str(mine)
