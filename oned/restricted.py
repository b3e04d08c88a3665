"""Who may write what in a template: restricted attributes and the files a template names; pure.

NOTE: modern OpenNebula's VM_RESTRICTED_ATTR / VNET_RESTRICTED_ATTR: an attribute named there
(``NAME`` or ``VECTOR/KEY``, the key in any instance of the vector) may be set by oneadmin only;
anyone else is refused with an authorization error naming it.

The attributes of ``PATH_ATTRIBUTES`` name files the drivers copy or hand to the hypervisor
(CONTEXT/FILES is a whitespace-separated list of them). For every user but oneadmin each must be
an absolute front-end path without a colon (no ``host:/path``, no ``scheme://`` URL: the TM reads
any colon as a host prefix) whose real location (symbolic links and ".." resolved by the
``resolve`` callable, ``os.path.realpath`` in oned) is allowed by the directory rule: the most
specific (longest) directory among the safe and the restricted ones that contains the path
decides; a directory in both lists is restricted; a path in none is allowed.

A check may be given the template the new one replaces (``old``, one.vm.update): a value the old
template already holds under the same name passes, so a user can send back what oneadmin set.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from oned.template import Template

PATH_ATTRIBUTES = ("DISK/SOURCE", "CONTEXT/FILES", "OS/KERNEL", "OS/INITRD", "OS/BOOTLOADER")
LIST_ATTRIBUTES = frozenset({"CONTEXT/FILES"})  # values that hold several paths

Resolve = Callable[[str], str]


@dataclass(frozen=True)
class Dirs:
    """The directory rule: absolute directories, each given as configured (resolved on use)."""

    safe: tuple[str, ...]
    restricted: tuple[str, ...]


def values(tmpl: Template, attribute: str) -> Iterator[str]:
    """Every value of ``attribute`` (``NAME`` or ``VECTOR/KEY``) in ``tmpl``, in order."""
    name, _, key = attribute.upper().partition("/")
    for value in tmpl.get_all(name):
        if not key and isinstance(value, str):
            yield value
        elif key and isinstance(value, dict) and key in value:
            yield value[key]
        elif not key and isinstance(value, dict):
            yield repr(sorted(value.items()))  # the whole vector, for comparison with ``old``


def restricted_attributes(
    tmpl: Template, restricted: Iterable[str], old: Template | None = None
) -> list[str]:
    """The attributes of ``restricted`` that ``tmpl`` sets (to a value ``old`` does not hold)."""
    found = []
    for attribute in restricted:
        kept = set(values(old, attribute)) if old is not None else set()
        if any(value not in kept for value in values(tmpl, attribute)):
            found.append(attribute.upper())
    return found


def path_problems(
    tmpl: Template, dirs: Dirs, resolve: Resolve, old: Template | None = None
) -> list[str]:
    """Why each file ``tmpl`` names may not be used by a user, naming the attribute."""
    problems = []
    resolved_dirs: Dirs | None = None
    for attribute in PATH_ATTRIBUTES:
        kept = set(values(old, attribute)) if old is not None else set()
        for value in values(tmpl, attribute):
            if value in kept:
                continue
            paths = value.split() if attribute in LIST_ATTRIBUTES else [value]
            for path in filter(None, paths):
                resolved_dirs = resolved_dirs or resolve_dirs(dirs, resolve)
                reason = path_refusal(path, resolved_dirs, resolve)
                if reason:
                    problems.append(f'{attribute} = "{path}": {reason}')
    return problems


def path_refusal(path: str, dirs: Dirs, resolve: Resolve) -> str | None:
    """Why a user may not name ``path`` (``dirs`` already resolved), or None if allowed."""
    if "://" in path:
        return "a URL is allowed to oneadmin only"
    if ":" in path:
        return "a host-prefixed path (host:/path) is allowed to oneadmin only"
    if not path.startswith("/"):
        return "must be an absolute path"
    if not allowed(resolve(path), dirs):
        return "is not in a directory users may read files from (SAFE_DIRS)"
    return None


def allowed(real_path: str, dirs: Dirs) -> bool:
    """The directory rule on a resolved path: the longest directory containing it decides."""
    safe = _longest(real_path, dirs.safe)
    restricted = _longest(real_path, dirs.restricted)
    return safe > restricted or restricted < 0


def resolve_dirs(dirs: Dirs, resolve: Resolve) -> Dirs:
    """``dirs`` with each directory resolved, as the paths checked against them are."""
    return Dirs(tuple(resolve(d) for d in dirs.safe), tuple(resolve(d) for d in dirs.restricted))


def _longest(path: str, directories: tuple[str, ...]) -> int:
    """The length of the longest of ``directories`` that contains ``path``; -1 if none."""
    lengths = [len(d) for d in map(posixpath.normpath, directories) if _inside(path, d)]
    return max(lengths, default=-1)


def _inside(path: str, directory: str) -> bool:
    if directory == "/":
        return path.startswith("/")
    return path == directory or path.startswith(directory + "/")
