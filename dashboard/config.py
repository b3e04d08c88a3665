"""dashboard.conf: one-dashboard's settings (YAML), checked whole before the server starts.

Pure: parses text, touches no file but the one `read` opens; relative file names are relative
to <etc> (`resolved`). An unknown key or a value of the wrong kind is a `ConfigError` naming it
(share/doc/dashboard.md, "Configuration").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import yaml

from oned.errors import ConfigError

FILE = "dashboard.conf"


@dataclass(frozen=True)
class Settings:
    enabled: bool = False  # `one start` starts one-dashboard when true
    host: str = "127.0.0.1"
    port: int = 9869  # NOTE: Sunstone's port
    one_xmlrpc: str = "http://localhost:2633/RPC2"
    ssl_cert: str | None = None
    ssl_key: str | None = None
    session_lifetime: int = 3600  # seconds from sign-in
    max_sessions: int = 1000  # open sessions at once, all users
    max_body: int = 1 << 20  # bytes of a request's JSON body
    templates_dir: str | None = None  # None: <etc>/templates

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_cert else "http"


_KINDS: dict[str, type] = {
    "enabled": bool,
    "host": str,
    "port": int,
    "one_xmlrpc": str,
    "ssl_cert": str,
    "ssl_key": str,
    "session_lifetime": int,
    "max_sessions": int,
    "max_body": int,
    "templates_dir": str,
}
_WORDS = {bool: "true or false", int: "an integer", str: "a string"}
_POSITIVE = ("session_lifetime", "max_sessions", "max_body")


def parse(text: str, source: str = FILE) -> Settings:
    """Settings from the YAML `text`; defaults for what it leaves out."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    data = {} if data is None else data  # empty, or comments only
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings")
    values: dict[str, Any] = {}
    for key, value in data.items():
        kind = _KINDS.get(key) if isinstance(key, str) else None
        if kind is None:
            raise ConfigError(f"{source}: unknown setting {str(key)[:60]!r}")
        if value is None:
            continue
        # bool is an int in Python: an integer key given `true` is wrong, and the reverse too
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"{source}: {key} must be {_WORDS[kind]}")
        values[key] = value
    return _checked(values, source)


def _checked(values: dict[str, Any], source: str) -> Settings:
    if not 0 < values.get("port", 1) < 65536:
        raise ConfigError(f"{source}: port must be 1 to 65535")
    for key in _POSITIVE:
        if values.get(key, 1) <= 0:
            raise ConfigError(f"{source}: {key} must be positive")
    if ("ssl_cert" in values) != ("ssl_key" in values):
        raise ConfigError(f"{source}: ssl_cert and ssl_key go together")
    endpoint = values.get("one_xmlrpc", "http://")
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"{source}: one_xmlrpc must be an http:// or https:// URL")
    return Settings(**values)


def resolved(settings: Settings, etc: str) -> Settings:
    """`settings` with relative file names under `etc`, and the examples' folder filled in."""
    changes: dict[str, Any] = {
        key: os.path.join(etc, value)
        for key in ("ssl_cert", "ssl_key", "templates_dir")
        if isinstance(value := getattr(settings, key), str) and not os.path.isabs(value)
    }
    if settings.templates_dir is None:
        changes["templates_dir"] = os.path.join(etc, "templates")
    return replace(settings, **changes)


def path(etc: str) -> str:
    return os.path.join(etc, FILE)


def read(file: str, explicit: bool = False) -> Settings:
    """The settings in `file`; the defaults when it does not exist (unless `explicit`)."""
    try:
        with open(file, encoding="utf-8") as f:
            return parse(f.read(), file)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"cannot read {file}: no such file") from None
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None


def enabled(etc: str) -> bool:
    """True when `<etc>/dashboard.conf` exists and says `enabled: true` (`one start` asks);
    a file that cannot be read or parsed counts as enabled, so one-dashboard's start reports
    what is wrong with it instead of being silently skipped."""
    try:
        return read(path(etc)).enabled if os.path.isfile(path(etc)) else False
    except ConfigError:
        return True
