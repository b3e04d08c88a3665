"""The EC2 drivers' configuration (im_ec2.conf, vmm_ec2.conf) and where their files are. Pure
but for reading the file ``load_settings`` names.

A driver serves one account in one region: ``one_im_ec2 "im_ec2/im_ec2.conf [--region R]
[--endpoint URL] [--credentials FILE] [--profile P]"`` (OpenNebula's ARGUMENTS, one argv word
re-split). The configuration keeps the seed's shell-variable form (``SMALL_INSTANCES=5``), one
``NAME=value`` a line; a name with a dot is an instance type and its limit (``m5.large=4``, or
``c7g.large=3:200:4096`` with the CPU (100 = one vCPU) and memory (MB) of a type not in
INSTANCE_TYPES). OpenNebula 1.4's XML vmm_ec2.conf is read as template defaults.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from drivers.serve import driver_parser, parse_driver_args

GB = 1048576  # KB
# Instance types: (CPU, memory in KB). m1.* are OpenNebula 1.4's (reference §11.1).
INSTANCE_TYPES: dict[str, tuple[int, float]] = {
    "m1.small": (100, 1.7 * GB),
    "m1.large": (400, 7.5 * GB),
    "m1.xlarge": (800, 15 * GB),
    "t2.micro": (100, 1 * GB),
    "t2.small": (100, 2 * GB),
    "t2.medium": (200, 4 * GB),
    "t3.micro": (200, 1 * GB),
    "t3.small": (200, 2 * GB),
    "t3.medium": (200, 4 * GB),
    "t3.large": (200, 8 * GB),
    "m5.large": (200, 8 * GB),
    "m5.xlarge": (400, 16 * GB),
    "m6i.large": (200, 8 * GB),
    "c5.large": (200, 4 * GB),
    "c5.xlarge": (400, 8 * GB),
    "r5.large": (200, 16 * GB),
}
SEED_LIMITS = {"SMALL_INSTANCES": "m1.small", "LARGE_INSTANCES": "m1.large",
               "EXTRALARGE_INSTANCES": "m1.xlarge"}  # fmt: skip
SETTINGS = frozenset({
    "REGION", "ENDPOINT", "CREDENTIALS", "PROFILE", "CLOUD_ID", "LIMITS", "RETRY_MODE",
    "MAX_ATTEMPTS", "CONNECT_TIMEOUT", "READ_TIMEOUT", "WAIT_TIMEOUT", "POLL_WINDOW", "POLL_CACHE",
})  # fmt: skip
DEFAULT_KEYS = frozenset({
    "KEYPAIR", "AUTHORIZEDPORTS", "AUTHORIZED_PORTS", "INSTANCETYPE", "SECURITYGROUPS",
    "SUBNETID", "AVAILABILITYZONE", "TAGS",
})  # fmt: skip
_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)")
_TYPE = re.compile(r"[a-z0-9-]+\.[a-z0-9-]+")
CLOUD_ID = re.compile(r"[a-z0-9-]{1,24}")


class ConfError(ValueError):
    """A configuration or credentials problem; the message names the file and the attribute."""


@dataclass(frozen=True)
class Limit:
    """How many instances of a type onecloud may run in the region, and what each is worth."""

    count: int
    cpu: int
    memory: float  # KB


@dataclass(frozen=True)
class Settings:
    """One driver's account and region, the limits, and the VM template defaults."""

    path: str = ""
    region: str = "us-east-1"
    endpoint: str | None = None
    credentials: str | None = None
    profile: str | None = None
    cloud_id: str | None = None
    limits_file: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = 4
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    wait_timeout: float = 300.0
    poll_window: float = 0.2
    poll_cache: float = 5.0
    limits: Mapping[str, Limit] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)


def unquote(value: str) -> str:
    """A shell-style value: a trailing ``# comment`` dropped, one pair of quotes removed."""
    value = value.strip()
    if value[:1] in ("'", '"') and value.count(value[0]) >= 2:
        return value[1 : value.index(value[0], 1)]
    return value.split(" #", 1)[0].strip()


def parse_limit(name: str, value: str, where: str) -> Limit:
    """``COUNT`` for a known type, ``COUNT:CPU:MEMORY_MB`` for any; ConfError otherwise."""
    parts = value.split(":")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ConfError(f"{where}: {name}={value!r}: not COUNT or COUNT:CPU:MEMORY_MB") from None
    if len(numbers) == 3 and min(numbers) >= 0:
        return Limit(numbers[0], numbers[1], numbers[2] * 1024.0)
    if len(numbers) != 1 or numbers[0] < 0:
        raise ConfError(f"{where}: {name}={value!r}: not COUNT or COUNT:CPU:MEMORY_MB")
    if name not in INSTANCE_TYPES:
        raise ConfError(f"{where}: {name}: unknown instance type, write {name}=COUNT:CPU:MEMORY_MB")
    cpu, memory = INSTANCE_TYPES[name]
    return Limit(numbers[0], cpu, memory)


def parse_conf(text: str, path: str = "ec2.conf") -> Settings:
    """The settings of a driver configuration; ConfError naming the file, line and attribute.

    NOTE: an empty limit (``LARGE_INSTANCES=``) is 0 instances, as im_ec2 1.4 summed it.
    """
    if text.lstrip().startswith("<"):
        return Settings(path=path, defaults=parse_seed_xml(text, path))
    values: dict[str, Any] = {}
    limits: dict[str, Limit] = {}
    defaults: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        match = _ASSIGNMENT.fullmatch(line)
        if not match:
            raise ConfError(f"{where}: not NAME=value: {line[:60]!r}")
        name, value = match.group(1), unquote(match.group(2))
        if name in SEED_LIMITS:
            limits[SEED_LIMITS[name]] = parse_limit(SEED_LIMITS[name], value or "0", where)
        elif _TYPE.fullmatch(name):
            limits[name] = parse_limit(name, value or "0", where)
        elif name.upper() in SETTINGS:
            values[name.upper()] = (value, where)
        elif name.upper() in DEFAULT_KEYS:
            if value:
                defaults[name.upper().replace("AUTHORIZED_PORTS", "AUTHORIZEDPORTS")] = value
        else:
            raise ConfError(f"{where}: unknown attribute {name}")
    return settings_from(values, path, limits, defaults)


def settings_from(values: dict[str, Any], path: str, limits: dict, defaults: dict) -> Settings:
    numbers = {"MAX_ATTEMPTS": int, "CONNECT_TIMEOUT": float, "READ_TIMEOUT": float,
               "WAIT_TIMEOUT": float, "POLL_WINDOW": float, "POLL_CACHE": float}  # fmt: skip
    fields: dict[str, Any] = {}
    for name, (value, where) in values.items():
        if not value:
            continue
        if name in numbers:
            try:
                value = numbers[name](value)
            except ValueError:
                raise ConfError(f"{where}: {name}={value!r} is not a number") from None
            if value <= 0:
                raise ConfError(f"{where}: {name} must be positive")
        if name == "RETRY_MODE" and value not in ("standard", "adaptive", "legacy"):
            raise ConfError(f"{where}: RETRY_MODE must be standard, adaptive or legacy")
        if name == "CLOUD_ID" and not CLOUD_ID.fullmatch(value):
            raise ConfError(f"{where}: CLOUD_ID must be 1-24 of a-z, 0-9 and -")
        fields[name.lower().replace("limits", "limits_file")] = value
    return Settings(path=path, limits=limits, defaults=defaults, **fields)


def parse_seed_xml(text: str, path: str) -> dict[str, str]:
    """The defaults of OpenNebula 1.4's vmm_ec2.conf: ``<TEMPLATE><EC2><KEYPAIR/>...``."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ConfError(f"{path}: not a template XML: {err}") from None
    section = root.find("EC2")
    found = {} if section is None else {c.tag.upper(): (c.text or "").strip() for c in section}
    return {k.replace("AUTHORIZED_PORTS", "AUTHORIZEDPORTS"): v for k, v in found.items() if v}


# --- where files are -------------------------------------------------------------------------


def etc_dir(env: Mapping[str, str] = os.environ) -> str:
    """$ONE_LOCATION/etc, or /etc/one for a system-wide install (oned/locations.py's layout)."""
    location = env.get("ONE_LOCATION", "").rstrip("/")
    return os.path.join(location, "etc") if location else "/etc/one"


def var_dir(env: Mapping[str, str] = os.environ) -> str:
    location = env.get("ONE_LOCATION", "").rstrip("/")
    return os.path.join(location, "var") if location else "/var/lib/one"


def conf_path(name: str, env: Mapping[str, str] = os.environ) -> str:
    """A relative path is under etc/ (the shipped default under share/etc/ when etc has none)."""
    if os.path.isabs(name):
        return name
    found = os.path.join(etc_dir(env), name)
    location = env.get("ONE_LOCATION", "").rstrip("/")
    shipped = os.path.join(location, "share", "etc", name) if location else ""
    if not os.path.exists(found) and shipped and os.path.exists(shipped):
        return shipped
    return found


def load_settings(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Settings:
    """The configuration file named by the driver's argument, then the command-line overrides."""
    path = conf_path(args.conf, env)
    try:
        with open(path) as conf:
            settings = parse_conf(conf.read(), path)
    except OSError as err:
        raise ConfError(
            f"cannot read the EC2 driver configuration {path}: {err.strerror}"
        ) from None
    overrides = {k: getattr(args, k) for k in ("region", "endpoint", "credentials", "profile")}
    settings = replace(settings, **{k: v for k, v in overrides.items() if v})
    if settings.credentials:
        settings = replace(settings, credentials=conf_path(settings.credentials, env))
    return settings


def ec2_parser(prog: str, doc: str, concurrency: int) -> argparse.ArgumentParser:
    parser = driver_parser(prog, doc, concurrency=concurrency)
    parser.add_argument("conf", help="configuration file, relative to the etc directory")
    parser.add_argument("--region", help="the region (REGION)")
    parser.add_argument("--endpoint", "-u", help="the EC2 endpoint URL (ENDPOINT)")
    parser.add_argument("--credentials", help="YAML credentials file (CREDENTIALS)")
    parser.add_argument("--profile", help="AWS profile of ~/.aws (PROFILE)")
    return parser


def parse_ec2_args(
    prog: str, doc: str, concurrency: int, argv: Sequence[str] | None
) -> argparse.Namespace:
    return parse_driver_args(ec2_parser(prog, doc, concurrency), argv, conf_files=False)
