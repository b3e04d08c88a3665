"""econe.conf: the EC2 front end's settings (YAML), checked whole before the server starts.

Pure: parses text, touches no file; relative file names are relative to <etc> (`resolved`).
An unknown key or a value of the wrong kind is a `ConfigError` naming it. Keys read by parts
still to come (the public network's addresses) are accepted and checked already, so an
operator's file keeps working as the server grows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from econe.query import MAX_BODY
from econe.request import WINDOW
from oned.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    one_xmlrpc: str = "http://localhost:2633/RPC2"
    host: str = "127.0.0.1"
    port: int = 4567
    ssl_cert: str | None = None
    ssl_key: str | None = None
    public_url: str | None = None  # how clients reach econe (behind a proxy: the proxy's URL)
    region: str = "one"
    zones: tuple[str, ...] = ("one",)
    signing_regions: tuple[str, ...] | None = None  # None: `region` only; ("*",): any
    signature_window: int = WINDOW
    max_body: int = MAX_BODY
    request_timeout: int = 60  # seconds a client may stay silent mid-request
    keys_file: str | None = None  # static "ACCESS_KEY SECRET" lines (bootstrap and tests)
    server_auth: str | None = None  # "user:password" of a oneadmin-group user (0600 file)
    templates_dir: str | None = None  # None: <etc>/templates/ec2query
    keypairs_file: str | None = None  # None: <var>/econe-keypairs.json
    max_count: int = 20  # instances one RunInstances may start
    instance_types: dict[str, Any] = field(default_factory=dict)
    public_network: str | None = None
    terminated_expiration: int = 900  # NOTE: econe's terminated_instances_expiration_time
    addresses_file: str | None = None  # None: <var>/econe-addresses.json
    associate_command: tuple[str, ...] | None = None  # argv run to (dis)associate an address
    max_addresses: int = 5  # elastic addresses one user may hold
    s3_dir: str | None = None  # None: <var>/econe-s3
    s3_max_object: int = 64 * 2**30  # bytes of one S3 object (one PUT or a whole multipart)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_cert else "http"

    @property
    def endpoint(self) -> str:
        """The URL DescribeRegions gives for this region."""
        return self.public_url or f"{self.scheme}://{self.host}:{self.port}/"


_KINDS: dict[str, tuple[type, ...]] = {
    "one_xmlrpc": (str,),
    "host": (str,),
    "port": (int,),
    "ssl_cert": (str,),
    "ssl_key": (str,),
    "public_url": (str,),
    "region": (str,),
    "zones": (list,),
    "signing_regions": (list,),
    "signature_window": (int,),
    "max_body": (int,),
    "request_timeout": (int,),
    "keys_file": (str,),
    "server_auth": (str,),
    "templates_dir": (str,),
    "keypairs_file": (str,),
    "max_count": (int,),
    "instance_types": (dict,),
    "public_network": (str, int),
    "terminated_expiration": (int,),
    "addresses_file": (str,),
    "associate_command": (list, str),
    "max_addresses": (int,),
    "s3_dir": (str,),
    "s3_max_object": (int,),
}
_WORDS = {int: "an integer", str: "a string", list: "a list", dict: "a mapping"}


def parse(text: str, source: str = "econe.conf") -> Settings:
    """Settings from the YAML `text`; defaults for what it leaves out."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings")
    values = {}
    for key, value in data.items():
        kinds = _KINDS.get(key)
        if kinds is None:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        if value is None:
            continue
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be {_WORDS[kinds[0]]}")
        values[key] = value
    return _checked(values, source)


def _checked(values: dict[str, Any], source: str) -> Settings:
    for key in ("zones", "signing_regions"):
        if key in values:
            if not values[key] or not all(isinstance(v, str) and v for v in values[key]):
                raise ConfigError(f"{source}: {key} must be a list of names")
            values[key] = tuple(values[key])
    if "associate_command" in values:
        command = values["associate_command"]
        command = [command] if isinstance(command, str) else command
        if not command or not all(isinstance(word, str) and word for word in command):
            raise ConfigError(f"{source}: associate_command must be a program and its arguments")
        values["associate_command"] = tuple(command)
    if not 0 < values.get("port", 1) < 65536:
        raise ConfigError(f"{source}: port must be 1 to 65535")
    positive = (
        "signature_window",
        "max_body",
        "request_timeout",
        "terminated_expiration",
        "s3_max_object",
    )
    for key in (*positive, "max_count"):
        if values.get(key, 1) <= 0:
            raise ConfigError(f"{source}: {key} must be positive")
    if values.get("max_addresses", 0) < 0:
        raise ConfigError(f"{source}: max_addresses must be 0 or more")
    for name, spec in values.get("instance_types", {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("template"), str):
            raise ConfigError(f"{source}: instance_types: {name} needs a template file name")
    if ("ssl_cert" in values) != ("ssl_key" in values):
        raise ConfigError(f"{source}: ssl_cert and ssl_key go together")
    return Settings(**values)


PATHS = (
    "ssl_cert",
    "ssl_key",
    "keys_file",
    "server_auth",
    "templates_dir",
    "keypairs_file",
    "addresses_file",
    "s3_dir",
)


def resolved(settings: Settings, base: str) -> Settings:
    """`settings` with its relative file names made relative to `base` (the etc directory)."""
    changes: dict[str, Any] = {
        key: os.path.join(base, value)
        for key in PATHS
        if isinstance(value := getattr(settings, key), str) and not os.path.isabs(value)
    }
    return replace(settings, **changes) if changes else settings


def parse_keys(text: str, source: str = "keys file") -> dict[str, str]:
    """`ACCESS_KEY SECRET` per line ('#' comments, blank lines skipped) -> {key: secret}."""
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise ConfigError(f"{source}:{number}: expected 'ACCESS_KEY SECRET'")
        keys[words[0]] = words[1]
    return keys
