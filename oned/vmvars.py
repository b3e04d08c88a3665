"""VM variables in hook arguments and CONTEXT values (reference §6.3); pure.

``$VAR`` is the single attribute VAR; ``$VAR[ATTR]`` the key ATTR of the first vector VAR;
``$VAR[ATTR, K="v"]`` the key ATTR of the first vector VAR whose K is v. Names are matched
case-insensitively; anything missing expands to "". ``$VMID`` is the VM's id.
"""

from __future__ import annotations

import re

from oned.template import Template

_VARIABLE = re.compile(
    r"\$([A-Za-z0-9_]+)"
    r"(?:\[\s*([A-Za-z0-9_]+)\s*(?:,\s*([A-Za-z0-9_]+)\s*=\s*\"((?:[^\"\\]|\\.)*)\"\s*)?\])?"
)


def expand(text: str, tmpl: Template, vmid: int) -> str:
    return _VARIABLE.sub(lambda m: _value(m, tmpl, vmid), text)


def _value(match: re.Match[str], tmpl: Template, vmid: int) -> str:
    name, attr, key, wanted = match.groups()
    name = name.upper()
    if attr is None:
        if name == "VMID":
            return str(vmid)
        return tmpl.get_str(name, "") or ""
    for vector in tmpl.get_all(name):
        if not isinstance(vector, dict):
            continue
        if key is None or vector.get(key.upper()) == wanted.replace('\\"', '"'):
            return vector.get(attr.upper(), "")
    return ""
