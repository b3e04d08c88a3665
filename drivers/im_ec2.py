"""IM (information manager) driver of an EC2 region: ``one_im_ec2 "im_ec2/im_ec2.conf [--region R]
[--endpoint URL] [--credentials FILE] [--profile P]"``.

The region is one host (OpenNebula 1.4's im_ec2, reference §11.1) whose capacity is the instance
limits of the configuration: each allowed instance adds its type's CPU and memory to TOTALCPU
and TOTALMEMORY (5 m1.small: 500 and 8912896 KB, as the seed shows). Every MONITOR asks EC2 for
this cloud's instances (one DescribeInstances, all pages), so wrong credentials or an unreachable
endpoint put the host in ERROR with EC2's reason; FREECPU and FREEMEMORY are the limits less what
those instances take, ``EC2_FREE_<TYPE>`` says how many more of each type may start and
``EC2_LIMIT_<TYPE>`` how many may run (the scheduler counts oned's own VMs against it, since
EC2_FREE is only as fresh as the last MONITOR). Each live instance is listed as ``VM = [ ID =
<one:vmid tag>, DEPLOY_ID = <instance id> ]``, so that oned cancels those of VMs it has
finished (oned/orphans.py).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

from drivers.ec2_common import (
    Client,
    cloud_filters,
    cloud_identity,
    describe_all,
    describe_error,
    is_api_error,
)
from drivers.ec2_conf import ConfError, Limit, Settings, load_settings, parse_ec2_args, var_dir
from drivers.ec2_inventory import tag
from drivers.ec2_section import GONE
from drivers.protocol import DriverFailure, Request, format_attributes
from drivers.serve import Action, Logger, serve

CPUSPEED = 1000
_VID = re.compile(r"\d{1,9}")
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{1,32}")


class Context(NamedTuple):
    settings: Settings
    client: Client
    cloud: str


def used_types(instances: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many instances of each type hold a place (every state but shutting-down/terminated)."""
    return Counter(
        str(i.get("InstanceType", ""))
        for i in instances
        if i.get("State", {}).get("Name") not in GONE
    )


def type_attribute(kind: str, prefix: str = "EC2_FREE_") -> str:
    """NOTE: scheduler/ec2.py reads these names (EC2_FREE_M1_SMALL, EC2_LIMIT_M1_SMALL)."""
    return prefix + kind.upper().replace(".", "_").replace("-", "_")


def host_info(name: str, limits: Mapping[str, Limit], used: Counter[str], region: str) -> str:
    """MONITOR's INFO: OpenNebula 2.0's attributes, then the region and the free places by type."""
    total_cpu = sum(limit.count * limit.cpu for limit in limits.values())
    total_mem = sum(limit.count * limit.memory for limit in limits.values())
    used_cpu = sum(min(used[k], limit.count) * limit.cpu for k, limit in limits.items())
    used_mem = sum(min(used[k], limit.count) * limit.memory for k, limit in limits.items())
    pairs: list[tuple[str, object]] = [
        ("HOSTNAME", name),
        ("HYPERVISOR", "ec2"),
        ("TOTALMEMORY", round(total_mem)),
        ("TOTALCPU", total_cpu),
        ("CPUSPEED", CPUSPEED),
        ("FREEMEMORY", round(total_mem - used_mem)),
        ("FREECPU", total_cpu - used_cpu),
        ("USEDMEMORY", round(used_mem)),
        ("USEDCPU", used_cpu),
        ("EC2_REGION", region),
        ("EC2_INSTANCES", sum(used.values())),
    ]
    for kind, limit in sorted(limits.items()):
        pairs.append((type_attribute(kind), max(limit.count - used[kind], 0)))
        pairs.append((type_attribute(kind, "EC2_LIMIT_"), limit.count))
    return format_attributes(pairs)


def monitor(ctx: Context, request: Request, log: Logger) -> str:
    """MONITOR <hid> <host> [update]: this cloud's instances in the region, or FAILURE why not."""
    if not request.args:
        raise DriverFailure("MONITOR needs a host name")
    try:
        instances = describe_all(ctx.client(), cloud_filters(ctx.cloud))
    except Exception as err:
        if not is_api_error(err):
            raise
        raise DriverFailure(f"EC2 region {ctx.settings.region}: {describe_error(err)}") from None
    info = host_info(
        request.args[0], ctx.settings.limits, used_types(instances), ctx.settings.region
    )
    return " ".join([info, *instance_list(instances)])


def instance_list(instances: Iterable[dict[str, Any]]) -> list[str]:
    """``VM = [ ID, DEPLOY_ID ]`` of each live instance whose one:vmid tag is a VM id."""
    listed = []
    for instance in instances:
        vid, iid = tag(instance, "one:vmid") or "", str(instance.get("InstanceId", ""))
        live = instance.get("State", {}).get("Name") not in GONE
        if live and _VID.fullmatch(vid) and _INSTANCE_ID.fullmatch(iid):
            listed.append(f'VM=[ID="{vid}",DEPLOY_ID="{iid}"]')
    return listed


def actions(ctx: Context) -> dict[str, Action]:
    return {"MONITOR": partial(monitor, ctx)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_ec2_args("one_im_ec2", __doc__ or "", 4, argv)
    try:
        settings = load_settings(args)
        cloud = cloud_identity(settings, var_dir())
    except (ConfError, OSError) as err:
        print(f"one_im_ec2: {err}", file=sys.stderr)
        return failing_driver(str(err))
    return serve(actions(Context(settings, Client(settings), cloud)), concurrency=args.concurrency)


def failing_driver(reason: str) -> int:
    """A driver whose configuration is wrong still answers INIT, and fails every action with
    the reason, so each host says what is wrong instead of oned restarting the driver."""

    def fail(request: Request, log: Logger) -> str:
        raise DriverFailure(reason)

    return serve({"MONITOR": fail})


if __name__ == "__main__":
    sys.exit(main())
