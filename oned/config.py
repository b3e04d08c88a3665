"""oned.conf: the daemon's configuration file, read and validated (reference §2).

The file is written in the template language (reference §6), so a 1.4/2.0 oned.conf reads as it
is. Every value is checked once, here: a wrong one raises ConfigError naming the file, the line
and the attribute; an unknown attribute only adds a warning (OpenNebula ignores them). Pure
module: the caller reads the file and passes its text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from oned import config_values as cv
from oned.errors import ConfigError, TemplateSyntaxError
from oned.template_parser import Entry, parse_entries


@dataclass(frozen=True)
class MadConfig:
    """A driver to spawn: ``kind`` is IM, VM, TM or HM; ``type`` (VM only) is xen|kvm|xml|vmware."""

    kind: str
    name: str
    executable: str
    arguments: str = ""
    default: str = ""
    type: str = ""
    line: int = 0


@dataclass(frozen=True)
class HookConfig:
    """A VM_HOOK or HOST_HOOK: run ``command arguments`` when an object enters state ``on``."""

    kind: str
    name: str
    on: str
    command: str
    arguments: str = ""
    remote: bool = False
    line: int = 0


@dataclass(frozen=True)
class DbConfig:
    """Where the pools are stored; ``port`` 0 means the backend's default port."""

    backend: str
    server: str = "localhost"
    port: int = 0
    user: str = ""
    passwd: str = ""
    db_name: str = "opennebula"
    synchronous: str = "NORMAL"


# NOTE: modern OpenNebula's VM_RESTRICTED_ATTR / VNET_RESTRICTED_ATTR / IMAGE_RESTRICTED_ATTR:
# ``NAME`` or ``VECTOR/KEY``; only oneadmin may set them. Used when oned.conf names none; an
# oned.conf that names any (``VM_RESTRICTED_ATTR = ""`` for none) replaces the whole list.
DEFAULT_VM_RESTRICTED_ATTR = ("RAW", "NIC/SCRIPT", "NIC/BRIDGE", "NIC/MAC", "NIC/VLAN_ID")
DEFAULT_IMAGE_MAD = MadConfig("IMAGE", "image", "one_image")
DEFAULT_VNET_RESTRICTED_ATTR = ("BRIDGE", "PHYDEV", "VLAN_ID", "VN_MAD")
DEFAULT_IMAGE_RESTRICTED_ATTR = ("SOURCE",)


@dataclass(frozen=True)
class Config:
    """The validated oned.conf; times in seconds, sizes in bytes."""

    host_monitoring_interval: int = 60
    vm_polling_interval: int = 60
    manager_timer: int = 15
    vm_dir: str | None = None
    scripts_remote_dir: str = "/var/tmp/one"
    port: int = 2633
    listen_address: str = "0.0.0.0"
    max_request_size: int = 8388608
    max_unauthenticated_request_size: int = 65536
    max_conn: int = 1000
    max_conn_per_client: int = 100
    keepalive_timeout: int = 15
    timeout: int = 15
    max_auth_failures: int = 10
    stop_grace: int = 10
    ec2_token_lifetime: int = 600  # seconds a token of one.user.ec2keysecret lasts
    umask: int = 0o077
    vm_restricted_attr: tuple[str, ...] = DEFAULT_VM_RESTRICTED_ATTR
    vnet_restricted_attr: tuple[str, ...] = DEFAULT_VNET_RESTRICTED_ATTR
    image_restricted_attr: tuple[str, ...] = DEFAULT_IMAGE_RESTRICTED_ATTR
    safe_dirs: tuple[str, ...] = ()
    restricted_dirs: tuple[str, ...] = ("/",)
    tls_cert: str | None = None
    tls_key: str | None = None
    debug_level: int = 3
    mac_prefix: str = "02:00"
    network_size: int = 254
    vnc_base_port: int = 5900
    image_repository_path: str | None = None
    default_image_type: str = "OS"
    default_device_prefix: str = "hd"
    db: DbConfig = DbConfig("sqlite")
    im_mads: tuple[MadConfig, ...] = ()
    vm_mads: tuple[MadConfig, ...] = ()
    tm_mads: tuple[MadConfig, ...] = ()
    # The TM_MAD of hosts added by the modern one.host.allocate, which names none.
    default_tm_mad: str = "tm_ssh"
    hm_mad: MadConfig | None = None
    # The driver that copies images into the repository (OpenNebula 2.2-3.x's IMAGE_MAD, a
    # datastore driver in later releases); a 1.4/2.0 oned.conf names none and gets this one.
    image_mad: MadConfig = DEFAULT_IMAGE_MAD
    vm_hooks: tuple[HookConfig, ...] = ()
    host_hooks: tuple[HookConfig, ...] = ()
    warnings: tuple[str, ...] = ()


_WEEK = 7 * 24 * 3600

_SINGLE: dict[str, cv.Converter] = {
    "HOST_MONITORING_INTERVAL": cv.integer(0, _WEEK),
    "VM_POLLING_INTERVAL": cv.integer(0, _WEEK),
    "MANAGER_TIMER": cv.integer(1, 3600),
    "VM_DIR": cv.optional_absolute_path,
    "SCRIPTS_REMOTE_DIR": cv.absolute_path,
    "PORT": cv.integer(1, 65535),
    "LISTEN_ADDRESS": cv.listen_address,
    "MAX_REQUEST_SIZE": cv.integer(1024, 2**30),
    "MAX_UNAUTHENTICATED_REQUEST_SIZE": cv.integer(1024, 2**30),
    "MAX_CONN": cv.integer(1, 1_000_000),
    "MAX_CONN_PER_CLIENT": cv.integer(1, 1_000_000),
    "KEEPALIVE_TIMEOUT": cv.integer(1, 3600),
    "TIMEOUT": cv.integer(1, 3600),
    "MAX_AUTH_FAILURES": cv.integer(0, 1_000_000),
    "STOP_GRACE": cv.integer(0, 3600),
    "EC2_TOKEN_LIFETIME": cv.integer(1, 86400),
    "UMASK": cv.umask,
    "SAFE_DIRS": cv.absolute_paths,
    "RESTRICTED_DIRS": cv.absolute_paths,
    "TLS_CERT": cv.optional,
    "TLS_KEY": cv.optional,
    "DEBUG_LEVEL": cv.integer(0, 3),
    "MAC_PREFIX": cv.mac_prefix,
    "NETWORK_SIZE": cv.integer(1, 2**24),
    "VNC_BASE_PORT": cv.integer(1, 65535),
    "IMAGE_REPOSITORY_PATH": cv.optional,
    "DEFAULT_IMAGE_TYPE": cv.choice("OS", "CDROM", "DATABLOCK"),
    "DEFAULT_DEVICE_PREFIX": cv.choice("hd", "sd", "xvd", "vd", fold=str.lower),
    "DEFAULT_TM_MAD": cv.text,
}

# Attributes that may appear many times; their values are collected in order.
_MULTI: dict[str, cv.Converter] = {
    "VM_RESTRICTED_ATTR": cv.attribute_name,
    "VNET_RESTRICTED_ATTR": cv.attribute_name,
    "IMAGE_RESTRICTED_ATTR": cv.attribute_name,
}

_DB: dict[str, cv.Converter] = {
    "BACKEND": cv.backend,
    "SERVER": cv.nonempty,
    "PORT": cv.integer(0, 65535),
    "USER": cv.text,
    "PASSWD": cv.text,
    "DB_NAME": cv.nonempty,
    "SYNCHRONOUS": cv.choice("NORMAL", "FULL"),
}

_MAD_COMMON: dict[str, cv.Converter] = {
    "NAME": cv.nonempty,
    "EXECUTABLE": cv.nonempty,
    "ARGUMENTS": cv.text,
}
_MAD: dict[str, dict[str, cv.Converter]] = {
    "IM": _MAD_COMMON,
    "VM": _MAD_COMMON
    | {"DEFAULT": cv.text, "TYPE": cv.choice("xen", "kvm", "xml", "vmware", "", fold=str.lower)},
    "TM": _MAD_COMMON,
    "HM": _MAD_COMMON,
    "IMAGE": _MAD_COMMON,
}


def _hook_keys(*on: str) -> dict[str, cv.Converter]:
    return {
        "NAME": cv.nonempty,
        "ON": cv.choice(*on),
        "COMMAND": cv.nonempty,
        "ARGUMENTS": cv.text,
        "REMOTE": cv.yes_no,
    }


_HOOK: dict[str, dict[str, cv.Converter]] = {
    "VM": _hook_keys("CREATE", "RUNNING", "SHUTDOWN", "STOP", "DONE", "FAILED", "PROLOG"),
    "HOST": _hook_keys("CREATE", "ERROR", "DISABLE"),
}


# --- the reader ---------------------------------------------------------------------------------


class _ConfigReader:
    """Takes the entries of one file in order and collects the fields of its Config."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.fields: dict[str, Any] = {}
        self.lines: dict[str, int] = {}
        self.warnings: list[str] = []
        self.mads: dict[str, list[MadConfig]] = {
            "IM": [],
            "VM": [],
            "TM": [],
            "HM": [],
            "IMAGE": [],
        }
        self.hooks: dict[str, list[HookConfig]] = {"VM": [], "HOST": []}
        self.vectors: dict[str, Callable[[Entry, dict[str, str]], None]] = {
            "DB": self.read_db,
            "IM_MAD": partial(self.read_mad, "IM"),
            "VM_MAD": partial(self.read_mad, "VM"),
            "TM_MAD": partial(self.read_mad, "TM"),
            "HM_MAD": partial(self.read_mad, "HM"),
            "IMAGE_MAD": partial(self.read_mad, "IMAGE"),
            "VM_HOOK": partial(self.read_hook, "VM"),
            "HOST_HOOK": partial(self.read_hook, "HOST"),
        }

    def error(self, entry: Entry, message: str) -> ConfigError:
        return ConfigError(f"{self.source} line {entry.line}: {message}")

    def warn(self, entry: Entry, message: str) -> None:
        self.warnings.append(f"{self.source} line {entry.line}: {message}")

    def convert(self, entry: Entry, label: str, value: str, convert: cv.Converter) -> Any:
        try:
            return convert(value)
        except cv.Invalid as invalid:
            raise self.error(entry, f"{label} = {cv.show(value)} {invalid}") from None

    def once(self, entry: Entry) -> None:
        """Refuse a second occurrence of an attribute that may appear only once."""
        if entry.name in self.lines:
            raise self.error(entry, f"{entry.name} is already set at line {self.lines[entry.name]}")
        self.lines[entry.name] = entry.line

    def read(self, entry: Entry) -> None:
        if entry.name in self.vectors:
            if not isinstance(entry.value, dict):
                raise self.error(entry, f"{entry.name} must be a vector: {entry.name} = [ ... ]")
            self.vectors[entry.name](entry, entry.value)
        elif entry.name in _MULTI:
            if not isinstance(entry.value, str):
                raise self.error(entry, f"{entry.name} must be a single value, not a vector")
            value = self.convert(entry, entry.name, entry.value, _MULTI[entry.name])
            names = self.fields.setdefault(entry.name.lower(), ())
            self.fields[entry.name.lower()] = names + ((value,) if value else ())
        elif entry.name in _SINGLE:
            if not isinstance(entry.value, str):
                raise self.error(entry, f"{entry.name} must be a single value, not a vector")
            self.once(entry)
            convert = _SINGLE[entry.name]
            self.fields[entry.name.lower()] = self.convert(entry, entry.name, entry.value, convert)
        else:
            self.warn(entry, f"unknown attribute {entry.name} is ignored")

    def vector(
        self,
        entry: Entry,
        vector: dict[str, str],
        keys: dict[str, cv.Converter],
        required: tuple[str, ...],
    ) -> dict[str, Any]:
        """The converted keys of a vector as field names; unknown keys become warnings."""
        fields: dict[str, Any] = {}
        for key, value in vector.items():
            if key in keys:
                label = f"{entry.name}[{key}]"
                fields[key.lower()] = self.convert(entry, label, value, keys[key])
            else:
                self.warn(entry, f"unknown key {entry.name}[{key}] is ignored")
        for key in required:
            if key.lower() not in fields:
                raise self.error(entry, f"{entry.name} has no {key}")
        return fields

    def read_db(self, entry: Entry, vector: dict[str, str]) -> None:
        self.once(entry)
        fields = self.vector(entry, vector, _DB, ("BACKEND",))
        if "synchronous" in fields and fields["backend"] != "sqlite":
            self.warn(entry, "DB[SYNCHRONOUS] applies to sqlite only and is ignored")
        self.fields["db"] = DbConfig(**fields)

    def read_mad(self, kind: str, entry: Entry, vector: dict[str, str]) -> None:
        single = {"HM": "hm", "IMAGE": "image"}.get(kind)
        if single:
            self.once(entry)
        required = ("EXECUTABLE",) if single else ("NAME", "EXECUTABLE")
        fields = self.vector(entry, vector, _MAD[kind], required)
        mad = MadConfig(kind=kind, **({"name": single or ""} | fields), line=entry.line)
        for other in self.mads[kind]:
            if other.name == mad.name:
                message = (
                    f"{entry.name} name {cv.show(mad.name)} is already used at line {other.line}"
                )
                raise self.error(entry, message)
        self.mads[kind].append(mad)

    def read_hook(self, kind: str, entry: Entry, vector: dict[str, str]) -> None:
        fields = self.vector(entry, vector, _HOOK[kind], ("ON", "COMMAND"))
        fields.setdefault("name", fields["command"])
        self.hooks[kind].append(HookConfig(kind=kind, **fields, line=entry.line))

    def check_tls(self, entries: list[Entry]) -> None:
        cert, key = self.fields.get("tls_cert"), self.fields.get("tls_key")
        if (cert is None) != (key is None):
            given, missing = ("TLS_CERT", "TLS_KEY") if cert else ("TLS_KEY", "TLS_CERT")
            entry = next(e for e in entries if e.name == given)
            raise self.error(entry, f"{given} is set but {missing} is not; give both or neither")

    def check_default_tm(self, entries: list[Entry]) -> None:
        """A DEFAULT_TM_MAD this file sets names one of its TM_MADs.

        NOTE: since OpenNebula 4.x hosts have no TM (the datastore chooses it), so the modern
        one.host.allocate names none; a fresh OpenNebula 6's datastores transfer with ssh.
        Left unset, the built-in tm_ssh is checked only when a modern allocate needs it, so
        that 1.4/2.0 files without tm_ssh keep loading.
        """
        chosen = self.fields.get("default_tm_mad")
        names = [mad.name for mad in self.mads["TM"]]
        if chosen is not None and chosen not in names:
            entry = next(e for e in entries if e.name == "DEFAULT_TM_MAD")
            defined = ", ".join(names) or "none"
            message = (
                f"DEFAULT_TM_MAD = {cv.show(chosen)} is not a TM_MAD name (defined: {defined})"
            )
            raise self.error(entry, message)

    def config(self) -> Config:
        return Config(
            **self.fields,
            im_mads=tuple(self.mads["IM"]),
            vm_mads=tuple(self.mads["VM"]),
            tm_mads=tuple(self.mads["TM"]),
            hm_mad=self.mads["HM"][0] if self.mads["HM"] else None,
            image_mad=self.mads["IMAGE"][0] if self.mads["IMAGE"] else DEFAULT_IMAGE_MAD,
            vm_hooks=tuple(self.hooks["VM"]),
            host_hooks=tuple(self.hooks["HOST"]),
            warnings=tuple(self.warnings),
        )


def load_config(text: str, source: str = "oned.conf") -> Config:
    """The Config written in ``text`` (the contents of the file ``source``).

    Raises ConfigError, whose one-line message names ``source``, the line and the attribute.
    """
    try:
        entries = parse_entries(text)
    except TemplateSyntaxError as error:
        raise ConfigError(
            f"{source} line {error.line}, column {error.column}: {error.reason}"
        ) from None
    reader = _ConfigReader(source)
    for entry in entries:
        reader.read(entry)
    reader.check_tls(entries)
    reader.check_default_tm(entries)
    return reader.config()
