"""EC2 Query requests: the action, the API version and the parameters, with EC2's numbered
lists (`InstanceId.1`, `Filter.1.Value.2`, `TagSpecification.1.Tag.1.Key`) rebuilt into Python
lists and dicts (ec2.md §1.1), and instance and image ids checked (`i-%08x`, `ami-%08x`).

Pure. The signature fields (SigV2's and presigned SigV4's) are not parameters of the action and
are dropped here; verifying them is `econe.signature`'s job and happens first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from econe.errors import Ec2Error
from econe.request import HttpRequest

ACTIONS = frozenset(
    {
        "RunInstances", "DescribeInstances", "TerminateInstances", "RebootInstances",
        "StopInstances", "StartInstances", "DescribeImages", "RegisterImage",
        "DeregisterImage", "CreateKeyPair", "ImportKeyPair", "DescribeKeyPairs",
        "DeleteKeyPair", "CreateTags", "DeleteTags", "DescribeTags", "AllocateAddress",
        "AssociateAddress", "DisassociateAddress", "ReleaseAddress", "DescribeAddresses",
        "DescribeRegions", "DescribeAvailabilityZones", "DescribeInstanceTypes",
    }
)  # fmt: skip
# Real EC2 actions econe does not run: UnsupportedOperation (400), as for a feature a region
# lacks, rather than InvalidAction, which says the client misspelt the action.
NOT_RUN = frozenset(
    {
        "DescribeVolumes", "CreateVolume", "DeleteVolume", "AttachVolume", "DetachVolume",
        "DescribeSnapshots", "CreateSnapshot", "DeleteSnapshot", "CreateImage", "CopyImage",
        "DescribeSecurityGroups", "CreateSecurityGroup", "DeleteSecurityGroup",
        "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "DescribeVpcs",
        "DescribeSubnets", "DescribeInstanceStatus", "DescribeInstanceAttribute",
        "ModifyInstanceAttribute", "GetConsoleOutput", "MonitorInstances",
        "RequestSpotInstances", "DescribeSpotInstanceRequests",
    }
)  # fmt: skip
# NOTE: 2008-12-01 is what OpenNebula's econe tools sent, 2014-10-01 boto 2; 2016-11-15 is the
# version of every current SDK. Requests older than EC2's first public API are refused.
OLDEST_VERSION = "2006-06-26"
NEWEST_VERSION = "2016-11-15"
MAX_BODY = 256 * 1024  # RunInstances' UserData may be 16 KiB, base64-encoded
MAX_PARAMS = 1000
MAX_INDEX = 1000
SIGNATURE_FIELDS = frozenset(
    {"AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "Timestamp", "Expires"}
)
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\Z")
ID_PATTERN = {
    "i": re.compile(r"i-([0-9a-f]{8,16})\Z"),
    "ami": re.compile(r"ami-([0-9a-f]{8,16})\Z"),
}
MALFORMED = {"i": "InvalidInstanceID.Malformed", "ami": "InvalidAMIID.Malformed"}
# Parameters that hold ids, checked while parsing: (parameter, id kind).
ID_PARAMS = (("InstanceId", "i"), ("ImageId", "ami"))


@dataclass(frozen=True)
class QueryRequest:
    """An EC2 Query call: `params` nested as the client flattened them, minus the signature."""

    action: str
    version: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return str(self.params.get("DryRun", "false")).lower() == "true"


def parse(request: HttpRequest, max_body: int = MAX_BODY) -> QueryRequest:
    """The call a GET query or POST form carries; `Ec2Error` (4xx) for anything malformed."""
    if len(request.body) > max_body:
        raise Ec2Error("RequestEntityTooLarge", f"the request body is over {max_body} bytes")
    pairs = request.params()
    if len(pairs) > MAX_PARAMS:
        raise Ec2Error("InvalidParameterValue", f"more than {MAX_PARAMS} parameters")
    flat = _flat(pairs)
    action = flat.pop("Action", "")
    if not action:
        raise Ec2Error("MissingAction", "the request has no Action")
    if action in NOT_RUN:
        raise Ec2Error("UnsupportedOperation", f"{action} is not supported by this cloud")
    if action not in ACTIONS:
        raise Ec2Error("InvalidAction", f"the action {action[:64]!r} is not valid for this service")
    version = flat.pop("Version", "")
    check_version(version)
    params = nest(flat)
    _check_ids(params)
    return QueryRequest(action, version, params)


def check_version(version: str) -> None:
    if not version:
        raise Ec2Error("MissingParameter", "the request must contain the parameter Version")
    if not _VERSION.match(version) or not OLDEST_VERSION <= version <= NEWEST_VERSION:
        raise Ec2Error("NoSuchVersion", f"the requested version ({version[:20]}) does not exist")


def _flat(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Name -> value, the signature fields dropped; a name given twice is refused."""
    flat: dict[str, str] = {}
    for name, value in pairs:
        if name in SIGNATURE_FIELDS or name.startswith("X-Amz-"):
            continue
        if name in flat:
            raise Ec2Error("InvalidParameterValue", f"the parameter {name[:64]} is given twice")
        flat[name] = value
    return flat


def nest(flat: dict[str, str]) -> dict[str, Any]:
    """`Filter.1.Value.2=x` -> `{"Filter": [{"Value": [..., "x"]}]}`: numbered levels become
    lists in index order (gaps closed, as EC2 does), named levels dicts."""
    tree: dict[Any, Any] = {}
    for name, value in flat.items():
        if not _KEY.match(name):
            raise Ec2Error("InvalidParameterValue", f"malformed parameter name {name[:64]!r}")
        *path, last = [_segment(s, name) for s in name.split(".")]
        node = tree
        for seg in path:
            node = node.setdefault(seg, {})
            if not isinstance(node, dict):
                raise _conflict(name)
        if last in node:
            raise _conflict(name)
        node[last] = value
    return _listify(tree)


def _segment(seg: str, name: str) -> str | int:
    if not seg.isdigit():
        return seg
    index = int(seg)
    if not 1 <= index <= MAX_INDEX:
        raise Ec2Error("InvalidParameterValue", f"index out of 1..{MAX_INDEX} in {name[:64]}")
    return index


def _conflict(name: str) -> Ec2Error:
    return Ec2Error("InvalidParameterValue", f"the parameter {name[:64]} conflicts with another")


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    kinds = {isinstance(k, int) for k in node}
    if kinds == {True}:
        return [_listify(node[k]) for k in sorted(node)]
    if True in kinds:
        raise Ec2Error("InvalidParameterValue", "a parameter mixes numbered and named members")
    return {k: _listify(v) for k, v in node.items()}


def _check_ids(params: dict[str, Any]) -> None:
    for name, kind in ID_PARAMS:
        value = params.get(name)
        for item in value if isinstance(value, list) else [value] if value is not None else []:
            parse_id(item, kind)


def parse_id(text: Any, kind: str) -> int:
    """The number of an `i-…`/`ami-…` id; `Invalid…ID.Malformed` unless it has that shape."""
    match = ID_PATTERN[kind].match(text) if isinstance(text, str) else None
    if match is None:
        shown = text[:40] if isinstance(text, str) else "a structure"
        raise Ec2Error(MALFORMED[kind], f"invalid id: {shown!r} (expecting {kind}-%08x)")
    return int(match.group(1), 16)


def format_id(number: int, kind: str) -> str:
    """`i-0000002a` for VM 42; ids grow past eight hex digits rather than wrap."""
    return f"{kind}-{number:08x}"


def as_list(params: dict[str, Any], name: str) -> list[Any]:
    """A list parameter (`InstanceId.N`), empty when absent; a lone `InstanceId=x` counts as
    a list of one, as econe accepted it."""
    value = params.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def required(params: dict[str, Any], name: str) -> Any:
    """A parameter the action cannot run without: `MissingParameter` when absent or blank."""
    value = params.get(name)
    if value is None or value == "":
        raise Ec2Error("MissingParameter", f"the request must contain the parameter {name}")
    return value
