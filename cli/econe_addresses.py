"""The econe-* tools of elastic addresses on boto3, the tool chosen by the program's name.

econe-allocate-address, econe-describe-addresses, econe-associate-address,
econe-disassociate-address, econe-release-address. Flags and credentials as the other econe-*
tools (`cli.econe_tools`: `-K/-S/-U/-H`, `EC2_ACCESS_KEY`/`EC2_SECRET_KEY`, ONE_AUTH,
`EC2_URL`). An address is named by its public IP or by its id (`eipalloc-…`, and for
disassociate `eipassoc-…`); an instance by its id or the seed's plain number.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.econe_tools import ec2_id, run_tool, table

TOOLS = (
    "allocate-address", "describe-addresses", "associate-address", "disassociate-address",
    "release-address",
)  # fmt: skip


def _address(value: str, id_prefix: str, id_param: str) -> dict[str, str]:
    """`{PublicIp: …}` for an address, `{id_param: …}` for an `eipalloc-`/`eipassoc-` id."""
    return {id_param: value} if value.startswith(id_prefix) else {"PublicIp": value}


def allocate_address(ec2: Any, args: argparse.Namespace) -> None:
    answer = ec2.allocate_address(Domain=args.domain)
    allocation = f" AllocationId {answer['AllocationId']}" if answer.get("AllocationId") else ""
    print(f"Success: PublicIp {answer['PublicIp']} ({answer['Domain']}){allocation}")


def describe_addresses(ec2: Any, args: argparse.Namespace) -> None:
    ips = [a for a in args.addresses if not a.startswith("eipalloc-")]
    allocations = [a for a in args.addresses if a.startswith("eipalloc-")]
    found = ec2.describe_addresses(PublicIps=ips, AllocationIds=allocations)["Addresses"]
    rows = [
        [a["PublicIp"], a.get("InstanceId", ""), a.get("Domain", ""),
         a.get("AllocationId", ""), a.get("AssociationId", "")]
        for a in found
    ]  # fmt: skip
    header = ["PublicIp", "InstanceId", "Domain", "AllocationId", "AssociationId"]
    table(rows, header if args.headers else None)


def associate_address(ec2: Any, args: argparse.Namespace) -> None:
    instance = ec2_id(args.instance, "i")
    params: dict[str, Any] = _address(args.address, "eipalloc-", "AllocationId")
    if args.allow_reassociation:
        params["AllowReassociation"] = True
    answer = ec2.associate_address(InstanceId=instance, **params)
    association = f" ({answer['AssociationId']})" if answer.get("AssociationId") else ""
    print(f"Success: Associated {args.address} with {instance}{association}")


def disassociate_address(ec2: Any, args: argparse.Namespace) -> None:
    ec2.disassociate_address(**_address(args.address, "eipassoc-", "AssociationId"))
    print(f"Success: Disassociated {args.address}")


def release_address(ec2: Any, args: argparse.Namespace) -> None:
    ec2.release_address(**_address(args.address, "eipalloc-", "AllocationId"))
    print(f"Success: Released {args.address}")


RUNNERS = {
    "allocate-address": allocate_address,
    "describe-addresses": describe_addresses,
    "associate-address": associate_address,
    "disassociate-address": disassociate_address,
    "release-address": release_address,
}


def parser(tool: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"econe-{tool}", description=__doc__.splitlines()[0])
    p.add_argument("-K", "--access-key", help="access key (the seed: the user name)")
    p.add_argument("-S", "--secret-key", help="secret key (the seed: the password)")
    p.add_argument("-U", "--url", help="econe's URL (default: $EC2_URL, else localhost:4567)")
    p.add_argument("--region", help="region SigV4 names (default: $EC2_REGION, else one)")
    p.add_argument("-H", "--headers", action="store_true", help="print a header line")
    if tool == "allocate-address":
        p.add_argument("-d", "--domain", choices=("standard", "vpc"), default="standard")
    elif tool == "describe-addresses":
        p.add_argument("addresses", nargs="*", help="public IPs or eipalloc- ids (default: all)")
    else:
        kind = "eipassoc-" if tool == "disassociate-address" else "eipalloc-"
        p.add_argument("address", help=f"the public IP or its {kind} id")
    if tool == "associate-address":
        p.add_argument("-i", "--instance", required=True, help="instance id or number")
        p.add_argument(
            "--allow-reassociation", action="store_true", help="move a vpc address in use"
        )
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """`econe-<tool>`: 0, or 1 with `econe-<tool>: Code: message` on stderr."""
    return run_tool("econe address tools", TOOLS, RUNNERS, parser, argv, prog)


if __name__ == "__main__":
    sys.exit(main())
