"""A driver's configuration file under etc/ (``tm_ssh/tm_ssh.conf``...), read as defaults of its
command-line options; pure but for reading the file.

oned.conf names the file as OpenNebula 1.4 did, in a driver's ``arguments`` (``TM_MAD``,
``IM_MAD``) or as a ``VM_MAD``'s ``default``; a relative name is under the install's etc/
(``$ONE_LOCATION/etc``, else ``/etc/one``). Each ``NAME = value`` line sets the option
``--name`` (``_`` read as ``-``): ``TIMEOUT = 600`` is ``--timeout 600``; an option that takes no
value is on with YES (TRUE, ON, 1) and off with NO. Flags written in ``arguments`` come after the
file's, so they win; a repeatable option gets both. Blank lines and ``#`` comments are skipped;
a line that is not an attribute, or names no option of the driver, stops the driver with the
file, the line and the reason. Read when the driver starts: a change takes effect at
``one stop; one start``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence

_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)")
_ON, _OFF = {"yes", "true", "on", "1"}, {"no", "false", "off", "0", ""}


def etc_dir(env: Mapping[str, str]) -> str:
    location = env.get("ONE_LOCATION", "")
    return os.path.join(location, "etc") if location else "/etc/one"


def conf_path(word: str, etc: str) -> str | None:
    """The file a ``.conf`` argument names, when it is one."""
    if word.startswith("-") or not word.endswith(".conf"):
        return None
    return word if os.path.isabs(word) else os.path.join(etc, word)


def option_words(parser: argparse.ArgumentParser, path: str, text: str) -> list[str]:
    """The command-line words of a configuration file's text; ValueError naming the line."""
    words: list[str] = []
    actions = parser._option_string_actions
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"{path} line {number}: not NAME = value: {line[:60]!r}")
        name, value = match.group(1), _unquoted(match.group(2).strip())
        option = "--" + name.lower().replace("_", "-")
        action = actions.get(option)
        if action is None or option in ("--help",):
            raise ValueError(f"{path} line {number}: {name} is not an option of {parser.prog}")
        if action.nargs == 0:
            if value.lower() not in _ON | _OFF:
                raise ValueError(f"{path} line {number}: {name} = {value!r}: YES or NO")
            words += [option] if value.lower() in _ON else []
        else:
            words += [option, value]
    return words


def defaults(parser: argparse.ArgumentParser, words: Sequence[str], etc: str) -> list[str]:
    """The option words of every existing ``.conf`` file among ``words``, in order."""
    found: list[str] = []
    for word in words:
        path = conf_path(word, etc)
        if path is not None and os.path.isfile(path):
            with open(path, encoding="utf-8") as conf:
                found += option_words(parser, path, conf.read())
    return found


def without_files(parser: argparse.ArgumentParser, words: Sequence[str]) -> list[str]:
    """``words`` less the ``.conf`` names, for a driver that takes no positional argument (the
    file only carried its options)."""
    if any(not action.option_strings for action in parser._actions):
        return list(words)
    return [word for word in words if conf_path(word, "/") is None]


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value
