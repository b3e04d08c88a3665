"""The EC2 actions econe answers, one function per action in `ACTIONS` (HOUSE-STYLE shape 5).

An action takes the `Context` of an authenticated call and its `QueryRequest` and returns the
response body as a dict (`econe.responses` renders it). The ones here answer from econe.conf
alone (`LOCAL`: the server runs them on the reactor); the others ask oned, blocking, as the
caller (`econe.instances`, `images`, `keypairs`, `tags`, `instance_types`) and run on the
server's worker threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from econe import addresses, filters, images, instances, keypairs, responses, tags
from econe.context import Context
from econe.errors import Ec2Error
from econe.instance_types import describe_instance_types
from econe.query import QueryRequest, as_list


def describe_regions(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """This cloud is one region, reached at the configured endpoint."""
    regions = [{"name": ctx.settings.region, "endpoint": ctx.settings.endpoint}]
    regions = _named(regions, as_list(call.params, "RegionName"), "region")
    readers = {"region-name": lambda r: r["name"], "endpoint": lambda r: r["endpoint"]}
    chosen = filters.select(regions, call.params.get("Filter"), readers)
    return {"regionInfo": [responses.region(r["name"], r["endpoint"]) for r in chosen]}


def describe_availability_zones(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """The zones econe.conf lists, all available, all in this region."""
    zones = [{"name": z, "region": ctx.settings.region} for z in ctx.settings.zones]
    zones = _named(zones, as_list(call.params, "ZoneName"), "zone")
    readers = {
        "zone-name": lambda z: z["name"],
        "region-name": lambda z: z["region"],
        "state": lambda z: "available",
        "zone-type": lambda z: "availability-zone",
    }
    chosen = filters.select(zones, call.params.get("Filter"), readers)
    return {"availabilityZoneInfo": [responses.zone(z["name"], z["region"]) for z in chosen]}


def _named(items: list[dict], names: list[Any], kind: str) -> list[dict]:
    """The items with the given names (all when none given); an unknown name is refused."""
    if not names:
        return items
    known = {item["name"]: item for item in items}
    for name in names:
        if name not in known:
            raise Ec2Error("InvalidParameterValue", f"the {kind} {str(name)[:64]!r} does not exist")
    return [known[n] for n in dict.fromkeys(names)]


def instance_types(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    return describe_instance_types(ctx.services.types, call)


Action = Callable[[Context, QueryRequest], Any]
ACTIONS: dict[str, Action] = {
    "DescribeRegions": describe_regions,
    "DescribeAvailabilityZones": describe_availability_zones,
    "DescribeInstanceTypes": instance_types,
    **instances.ACTIONS,
    **images.ACTIONS,
    **keypairs.ACTIONS,
    **tags.ACTIONS,
    **addresses.ACTIONS,
}
LOCAL = frozenset({"DescribeRegions", "DescribeAvailabilityZones"})
__all__ = ["ACTIONS", "LOCAL", "Context"]
