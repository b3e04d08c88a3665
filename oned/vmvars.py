"""VM variables in hook arguments and CONTEXT values (reference §6.3); pure.

``$VAR`` is the single attribute VAR; ``$VAR[ATTR]`` the key ATTR of the first vector VAR;
``$VAR[ATTR, K="v"]`` the key ATTR of the first vector VAR whose K is v. Names are matched
case-insensitively; anything missing expands to "". ``$VMID`` is the VM's id.

``expand_words`` is for hook arguments: the text is split into words first (as a shell would,
quotes included) and the variables are expanded inside each word, so a value is never re-split.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from oned.template import Template

_VARIABLE = re.compile(
    r"\$([A-Za-z0-9_]+)"
    r"(?:\[\s*([A-Za-z0-9_]+)\s*(?:,\s*([A-Za-z0-9_]+)\s*=\s*\"((?:[^\"\\]|\\.)*)\"\s*)?\])?"
)


def expand(text: str, tmpl: Template, vmid: int) -> str:
    return _VARIABLE.sub(lambda m: _value(m, tmpl, vmid), text)


def expand_words(text: str, tmpl: Template, vmid: int) -> list[str]:
    """The words of hook ``text`` with the VM's variables expanded inside each (see
    ``split_expanding``)."""
    return split_expanding(text, _VARIABLE, lambda m: _value(m, tmpl, vmid))


def split_expanding(
    text: str, variable: re.Pattern[str], value: Callable[[re.Match[str]], str]
) -> list[str]:
    """``text`` split into words like a shell (shlex), then every ``variable`` in a word
    replaced by ``value`` of it; ValueError for unbalanced quotes.

    The variables are set aside before splitting, so ``$NIC[IP, NETWORK="a b"]`` is one
    variable whatever its quotes and spaces, and what they expand to stays inside its word.
    NOTE: like the shell OpenNebula's driver ran hooks with, a word that only expanded to
    nothing is dropped (``$NIC[IP]`` of a VM without one); a written ``""`` stays.
    """
    if _HELD in text:
        raise ValueError("a private-use character U+E000 in the arguments")
    values: list[str] = []

    def hold(match: re.Match[str]) -> str:
        values.append(value(match))
        return f"{_HELD}{len(values) - 1}{_HELD}"

    words = []
    for word in shlex.split(variable.sub(hold, text)):
        expanded = _HELD_WORD.sub(lambda m: values[int(m.group(1))], word)
        if expanded or not word:
            words.append(expanded)
    return words


_HELD = "\ue000"  # a private-use character: stands for a set-aside variable while splitting
_HELD_WORD = re.compile(f"{_HELD}([0-9]+){_HELD}")


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
