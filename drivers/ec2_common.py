"""What both EC2 drivers (im_ec2, vmm_ec2) share beside their configuration (drivers/ec2_conf.py):
the account's credentials, the boto3 client with bounded retries and timeouts, EC2's errors as
one line (and as an action's FAILURE), this cloud's identity and its instances.

Credentials come from a YAML file only its owner may read, or from boto3's own chain
(``~/.aws``, PROFILE); never from a VM template, and never logged.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from drivers.ec2_conf import CLOUD_ID, ConfError, Settings
from drivers.protocol import DriverFailure

ID_FILE = "ec2_cloud_id"
PAGE = 1000  # DescribeInstances's largest MaxResults: a cycle is one call up to 1000 instances


# --- credentials and the client --------------------------------------------------------------


def load_credentials(path: str) -> dict[str, str]:
    """boto3's key arguments from a YAML file that only its owner may read; ConfError naming
    the file (never its content) when it is missing, readable by others or incomplete."""
    import yaml

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as err:
        raise ConfError(f"cannot read the EC2 credentials {path}: {err.strerror}") from None
    with os.fdopen(fd) as creds:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise ConfError(
                f"the EC2 credentials {path} are readable by others (mode {mode:04o}): "
                f"chmod 600 {path}"
            )
        try:
            data = yaml.safe_load(creds)
        except yaml.YAMLError:
            raise ConfError(f"the EC2 credentials {path} are not YAML") from None
    if not isinstance(data, Mapping):
        raise ConfError(f"the EC2 credentials {path} must map access_key_id, secret_access_key")
    found = {str(k).lower().removeprefix("aws_"): str(v) for k, v in data.items() if v}
    missing = [k for k in ("access_key_id", "secret_access_key") if k not in found]
    if missing:
        raise ConfError(f"the EC2 credentials {path} lack {', '.join(missing)}")
    keys = {f"aws_{k}": found[k] for k in ("access_key_id", "secret_access_key")}
    if "session_token" in found:
        keys["aws_session_token"] = found["session_token"]
    return keys


def make_client(settings: Settings) -> Any:
    """An EC2 client for the settings' account and region: retries with back-off (botocore's
    standard or adaptive mode, bounded attempts) and a timeout on every connection and read."""
    import boto3
    from botocore.config import Config

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # no 1 s IMDS probe per start
    keys = load_credentials(settings.credentials) if settings.credentials else {}
    session = boto3.session.Session(profile_name=settings.profile, **keys)
    config = Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        user_agent_extra="onecloud",
    )
    return session.client("ec2", endpoint_url=settings.endpoint, config=config)


class Client:
    """The driver's EC2 client, made at first use and again when the credentials file changes
    (an operator's fix applies without a restart); a ConfError is raised at each use until then."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: Any = None
        self._stamp: tuple[int, int] | None = None

    def __call__(self) -> Any:
        stamp = self._credentials_stamp()
        with self._lock:
            if self._client is None or stamp != self._stamp:
                self._client, self._stamp = make_client(self.settings), stamp
            return self._client

    def _credentials_stamp(self) -> tuple[int, int] | None:
        if not self.settings.credentials:
            return None
        try:
            st = os.stat(self.settings.credentials)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_mode)


def describe_error(err: BaseException) -> str:
    """EC2's own ``Code: message`` for an API error, or a one-line reason for the others."""
    from botocore import exceptions as bx

    if isinstance(err, bx.ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    if isinstance(err, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no EC2 credentials: set CREDENTIALS in the driver's configuration or an AWS profile"
    if isinstance(err, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return f"cannot reach the EC2 endpoint: {err}"
    if isinstance(err, bx.ReadTimeoutError):
        return f"the EC2 endpoint did not answer in time: {err}"
    if isinstance(err, ConfError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def is_api_error(err: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(err, ClientError | BotoCoreError | ConfError)


def error_code(err: BaseException) -> str:
    from botocore.exceptions import ClientError

    return err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""


# --- this cloud's identity -------------------------------------------------------------------


def cloud_identity(settings: Settings, var: str) -> str:
    """CLOUD_ID, else a random id made once per install (``var/ec2_cloud_id``): it is in every
    client token and tag, so two onecloud installs sharing an account never take each other's
    instances."""
    if settings.cloud_id:
        return settings.cloud_id
    path = os.path.join(var, ID_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(6) + "\n")
    for _ in range(50):  # another driver may be writing it this very moment
        with open(path) as made:
            found = made.read().strip()
        if CLOUD_ID.fullmatch(found):
            return found
        time.sleep(0.02)
    raise ConfError(f"{path}: not a cloud id; remove it or set CLOUD_ID")


def cloud_filters(cloud: str) -> list[dict[str, Any]]:
    """The DescribeInstances filter of this cloud's instances."""
    return [{"Name": "tag:one:cloud", "Values": [cloud]}]


def describe_all(client: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every instance the filters match (all pages), flattened out of the reservations."""
    found: list[dict[str, Any]] = []
    pages = client.get_paginator("describe_instances").paginate(
        Filters=filters, PaginationConfig={"PageSize": PAGE}
    )
    for page in pages:
        for reservation in page.get("Reservations", ()):
            found.extend(reservation.get("Instances", ()))
    return found


def ec2_call(what: str, call: Callable[[], Any]) -> Any:
    """``call()``, its EC2 error (``Code: message``) raised as the action's FAILURE."""
    try:
        return call()
    except Exception as err:
        fail_with(what, err)


def fail_with(what: str, err: Exception) -> NoReturn:
    """The action's FAILURE for an EC2 error; any other exception goes on (a bug: traceback)."""
    if not is_api_error(err):
        raise err
    raise DriverFailure(f"{what}: {describe_error(err)}") from None


class SecurityGroups:
    """This cloud's security groups, one per set of AUTHORIZED_PORTS (and VPC), each opening
    its TCP ports to anywhere; made at first use (or found, after a restart) and remembered."""

    def __init__(self, client: Client, cloud: str) -> None:
        self._client, self._cloud = client, cloud
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], str] = {}

    def for_ports(self, ports: tuple[tuple[int, int], ...], subnet: str | None) -> str:
        """The id of the group opening ``ports`` in the VPC of ``subnet`` (the default one)."""
        spec = "_".join(str(a) if a == b else f"{a}-{b}" for a, b in ports)
        name = f"onecloud-{self._cloud}-ports-{spec}"[:255]
        client = self._client()
        vpc = ""
        if subnet:
            found = ec2_call("DescribeSubnets", lambda: client.describe_subnets(SubnetIds=[subnet]))
            vpc = found["Subnets"][0]["VpcId"]
        with self._lock:
            if (name, vpc) in self._known:
                return self._known[(name, vpc)]
        group = self._find_or_create(client, name, vpc, f"onecloud {self._cloud}: TCP {spec}")
        for low, high in ports:
            permission = {"IpProtocol": "tcp", "FromPort": low, "ToPort": high,
                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}  # fmt: skip
            try:
                client.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
            except Exception as err:
                if error_code(err) != "InvalidPermission.Duplicate":
                    fail_with("AuthorizeSecurityGroupIngress", err)
        with self._lock:
            self._known[(name, vpc)] = group
        return group

    @staticmethod
    def _find_or_create(client: Any, name: str, vpc: str, description: str) -> str:
        extra = {"VpcId": vpc} if vpc else {}
        try:
            made = client.create_security_group(GroupName=name, Description=description, **extra)
            return str(made["GroupId"])
        except Exception as err:
            if error_code(err) != "InvalidGroup.Duplicate":
                fail_with("CreateSecurityGroup", err)
        filters = [{"Name": "group-name", "Values": [name]}]
        filters += [{"Name": "vpc-id", "Values": [vpc]}] if vpc else []
        found = ec2_call(
            "DescribeSecurityGroups", lambda: client.describe_security_groups(Filters=filters)
        )
        return str(found["SecurityGroups"][0]["GroupId"])
