"""econe-server's parts from econe.conf: where the file is, the credential sources (the keys
file, oned's EC2 keys as the server account) and the services the actions share.

Pure (no Twisted): files are read here, once, at start; a problem is a `ConfigError` naming
the file.
"""

from __future__ import annotations

import os
from typing import Any

from econe.address_book import AddressBook
from econe.config import Settings, parse, parse_keys
from econe.context import Services
from econe.credentials import Chain, OnedKeys, StaticKeys, server_client
from econe.instance_types import InstanceTypes
from econe.keypairs import KeyPairStore
from econe.one import Oned
from econe.tokens import TokenIndex
from oned.errors import ConfigError


def _private(path: str) -> str:
    """The text of a file only its owner may read (0600, DESIGN.md §10)."""
    with open(path, encoding="utf-8") as f:
        if os.fstat(f.fileno()).st_mode & 0o077:
            raise ConfigError(f"{path}: other users may read it; chmod 600 it")
        return f.read()


def static_keys(path: str) -> StaticKeys:
    """The keys file's lookup: ACCESS_KEY is a user name, SECRET its password."""
    return StaticKeys(parse_keys(_private(path), path))


def server_session(settings: Settings) -> str | None:
    """`user:password` of econe's server account (`server_auth`), or None without one."""
    if not settings.server_auth:
        return None
    session = _private(settings.server_auth).strip().splitlines()[0:1]
    if not session or ":" not in session[0]:
        raise ConfigError(f"{settings.server_auth}: expected 'user:password'")
    return session[0]


def lookup_of(settings: Settings, session: str | None) -> Chain:
    """The keys file, then oned's EC2 keys (asked as the server account), as configured."""
    sources: list[Any] = []
    if settings.keys_file:
        sources.append(static_keys(settings.keys_file))
    if session:
        sources.append(OnedKeys(server_client(settings.one_xmlrpc, session)))
    return Chain(*sources)


def services_of(settings: Settings, etc: str, var: str, session: str | None) -> Services:
    types_dir = settings.templates_dir or os.path.join(etc, "templates", "ec2query")
    keypairs = settings.keypairs_file or os.path.join(var, "econe-keypairs.json")
    addresses = settings.addresses_file or os.path.join(var, "econe-addresses.json")
    return Services(
        server_session=session,
        tokens=TokenIndex(),
        oned=Oned(settings.one_xmlrpc),
        keypairs=KeyPairStore(keypairs),
        addresses=AddressBook(addresses),
        types=InstanceTypes(types_dir, settings.instance_types),
    )


def read_settings(path: str, explicit: bool) -> Settings:
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read(), path)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"cannot read {path}: no such file") from None
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def config_path(etc: str) -> str:
    """Where install.sh puts econe.conf; the seed's `<etc>/econe.conf` when only it exists."""
    installed = os.path.join(etc, "econe", "econe.conf")
    seed = os.path.join(etc, "econe.conf")
    return seed if not os.path.exists(installed) and os.path.exists(seed) else installed
