"""one.system.config: oned.conf as OpenNebula's ``<OPENNEBULA_CONFIGURATION>`` document.

oneadmin only, as in OpenNebula. Secrets never leave: the database password (DB PASSWD) and
user are left out. Each setting is an element named as in oned.conf; a list repeats the
element; the driver and hook blocks become nested elements.
"""

from __future__ import annotations

from dataclasses import fields

from oned.api.cloud import Caller, Cloud, require_admin
from oned.config import Config, DbConfig, HookConfig, MadConfig
from oned.views import escape

# Config fields that are not oned.conf settings, or that are shown in their own block
_SKIPPED = {"warnings", "db", "im_mads", "vm_mads", "tm_mads", "hm_mad", "vm_hooks", "host_hooks"}
_BLOCKS = (("im_mads", "IM_MAD"), ("vm_mads", "VM_MAD"), ("tm_mads", "TM_MAD"))
_HOOKS = (("vm_hooks", "VM_HOOK"), ("host_hooks", "HOST_HOOK"))
_SECRET_DB = {"passwd", "user"}


def config(cloud: Cloud, caller: Caller) -> str:
    require_admin(caller, "one.system.config", "ADMIN on the system configuration")
    return f"<OPENNEBULA_CONFIGURATION>{render(cloud.config)}</OPENNEBULA_CONFIGURATION>"


def render(conf: Config) -> str:
    """The elements of the document, without the root (pure: tested on a Config value)."""
    out = [_scalars(conf, _SKIPPED)]
    out.append(f"<DB>{_scalars(conf.db, _SECRET_DB)}</DB>")
    for name, tag in _BLOCKS:
        out += [f"<{tag}>{_scalars(mad, {'line', 'kind'})}</{tag}>" for mad in getattr(conf, name)]
    if conf.hm_mad is not None:
        out.append(f"<HM_MAD>{_scalars(conf.hm_mad, {'line', 'kind', 'name'})}</HM_MAD>")
    for name, tag in _HOOKS:
        out += [f"<{tag}>{_scalars(h, {'line', 'kind'})}</{tag}>" for h in getattr(conf, name)]
    return "".join(out)


def _scalars(value: Config | DbConfig | MadConfig | HookConfig, skipped: set[str]) -> str:
    out = []
    for field in fields(value):
        if field.name in skipped:
            continue
        found = getattr(value, field.name)
        tag = field.name.upper()
        if field.name == "umask":
            found = f"{found:03o}"
        for item in found if isinstance(found, tuple) else (found,):
            out.append(_element(tag, item))
    return "".join(out)


def _element(tag: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "YES" if value else "NO"
    return f"<{tag}>{escape(str(value))}</{tag}>"
