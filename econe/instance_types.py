"""Instance types: Jinja2 VM templates in `templates_dir` (`<etc>/templates/ec2query/`), the
seed's `m1.small.erb` in a language Python ships, and DescribeInstanceTypes from them.

Pure. econe.conf's `instance_types` names each type's file (`{m1.small: {template:
m1.small.one.j2}}`); without it every `<type>.one.j2` in the directory is a type. A template
is rendered with the image number, the type, the key pair's name and public key, the user data
and the public network; values go through the `quote` filter (a quoted template string).
econe then appends `ECONE = [ ... ]`, what DescribeInstances reads back, so an operator's
template cannot lose it. Templates are read when used: an edit takes effect at the next call.
"""

from __future__ import annotations

import os
from typing import Any

import jinja2

from econe import filters
from econe.errors import Ec2Error
from econe.one import quote
from econe.query import QueryRequest, as_list
from oned import template as one_template
from oned.errors import TemplateSyntaxError

SUFFIX = ".one.j2"


class InstanceTypes:
    """The types of one directory (and econe.conf's table, when it has one)."""

    def __init__(self, directory: str, table: dict[str, Any] | None = None) -> None:
        self.directory = directory
        self.table = table or {}
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self.env.filters["quote"] = quote

    def names(self) -> list[str]:
        if self.table:
            return sorted(self.table)
        try:
            files = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(f[: -len(SUFFIX)] for f in files if f.endswith(SUFFIX))

    def file_of(self, name: str) -> str:
        if self.table:
            spec = self.table.get(name)
            if spec is None:
                raise Ec2Error("InvalidParameterValue", f"unknown instance type {name[:40]!r}")
            return str(spec["template"])
        if name not in self.names():
            raise Ec2Error("InvalidParameterValue", f"unknown instance type {name[:40]!r}")
        return name + SUFFIX

    def render(self, name: str, **values: Any) -> str:
        """The VM template of type `name` for `values` (image_id, public_key, user_data...)."""
        values = {
            "instance_type": name,
            "key_name": None,
            "public_key": None,
            "user_data": None,
            "network": None,
            **values,
        }
        try:
            return self.env.get_template(self.file_of(name)).render(**values)
        except jinja2.TemplateNotFound:
            raise Ec2Error("InvalidParameterValue", f"no template for {name[:40]!r}") from None
        except jinja2.TemplateError as exc:
            raise _broken(name, exc) from None

    def capacity(self, name: str) -> dict[str, Any]:
        """CPU, VCPU and MEMORY (MiB) of a type, from its template rendered for image 0."""
        try:
            parsed = one_template.parse(self.render(name, image_id=0))
        except TemplateSyntaxError as exc:
            raise _broken(name, exc) from None
        cpu = _number(parsed.get("CPU"), 1.0)
        return {
            "name": name,
            "cpu": cpu,
            "vcpus": int(_number(parsed.get("VCPU"), max(1.0, cpu))),
            "memory": int(_number(parsed.get("MEMORY"), 0)),
        }


def _broken(name: str, exc: Exception) -> Ec2Error:
    """An operator's mistake: logged by the server as an internal error, not shown."""
    return Ec2Error("InternalError", f"the template of {name[:40]} is broken: {exc}")


def _number(value: Any, default: float) -> float:
    try:
        return float(value) if isinstance(value, str) else default
    except ValueError:
        return default


def describe_instance_types(types: InstanceTypes, call: QueryRequest) -> dict[str, Any]:
    """DescribeInstanceTypes: each type's vCPUs and memory."""
    wanted = as_list(call.params, "InstanceType")
    known = types.names()
    for name in wanted:
        if name not in known:
            shown = str(name)[:40]
            raise Ec2Error("InvalidInstanceType", f"the instance type {shown!r} does not exist")
    rows = [types.capacity(n) for n in (dict.fromkeys(wanted) if wanted else known)]
    readers = {
        "instance-type": lambda r: r["name"],
        "vcpu-info.default-vcpus": lambda r: str(r["vcpus"]),
        "memory-info.size-in-mib": lambda r: str(r["memory"]),
    }
    rows = filters.select(rows, call.params.get("Filter"), readers)
    return {"instanceTypeSet": [_item(r) for r in rows]}


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "instanceType": row["name"],
        "currentGeneration": True,
        "supportedUsageClasses": ["on-demand"],
        "supportedRootDeviceTypes": ["instance-store"],
        "supportedVirtualizationTypes": ["hvm"],
        "processorInfo": {"supportedArchitectures": ["x86_64"]},
        "vCpuInfo": {"defaultVCpus": row["vcpus"]},
        "memoryInfo": {"sizeInMiB": row["memory"]},
    }
