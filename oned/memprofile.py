"""Where oned's memory goes: an opt-in report written when oned stops (issue 18); pure.

Set ``ONECLOUD_TRACEMALLOC=PATH`` in oned's environment. oned then traces its allocations from
the start (``tracemalloc``, ``FRAMES`` frames each: expect it to run 2-3x slower and to hold
about twice the memory) and, at shutdown while the pools are still whole, writes:

- ``PATH``: a JSON report. ``objects`` is a walk of the pools, in bytes, each object counted
  once (``sys.getsizeof`` of everything reachable, first category wins): per pool its records
  (``vms.records``), the dict of them (``vms.index``) and each other attribute (the XML caches,
  ``vms._xml``, ``vms._short``; one level deeper for an object holding them); then each other
  attribute of ``Pools`` by its name (name indexes, lease books, the change log...).
  Instances of classes without ``__slots__`` keep their attribute values in an array that
  ``getsizeof`` does not show; the walk adds 8 bytes per value. ``traced`` is tracemalloc's
  total and its top allocation sites grouped by the file they were made in (``sqlalchemy``,
  ``twisted``, ``oned/store/store.py``...).
- ``PATH.snapshot``: the tracemalloc snapshot itself (``tracemalloc.Snapshot.load``).

No Twisted here: oned/__main__.py passes its reactor (the only module that touches it).

``fix_mmap_threshold`` (called first thing at start) sets glibc's mmap threshold to a fixed
256 KB: every block that big or bigger (a listing's reply pieces, SQLAlchemy's result
buffers) is its own mmap, given back to the kernel when freed. Left to itself glibc raises the
threshold to the largest block it has freed (up to 32 MB), and from then on keeps such blocks
in the heap, where they stay as RSS (~25 MB after listings at 10,000 VMs: bench/RESULTS.md).
An operator's own ``MALLOC_MMAP_THRESHOLD_`` wins (glibc reads it; oned then changes nothing).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Iterable, Mapping
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any

ENV = "ONECLOUD_TRACEMALLOC"
MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc's own variable
MMAP_THRESHOLD = 256 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
FRAMES = 5
_POOLS = ("users", "hosts", "vms", "vnets", "images")
_SKIP = (type, ModuleType, FunctionType, BuiltinFunctionType, MethodType)
_SITE = os.sep + "site-packages" + os.sep


def fix_mmap_threshold(
    environ: Mapping[str, str] = os.environ, threshold: int = MMAP_THRESHOLD
) -> int | None:
    """Set glibc's mmap threshold to ``threshold`` bytes (see the module's doc); the value set,
    or None when ``MALLOC_MMAP_THRESHOLD_`` is set or the C library has no ``mallopt``."""
    if environ.get(MMAP_ENV):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return threshold if mallopt(_M_MMAP_THRESHOLD, threshold) == 1 else None


def start_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """Start tracing when ``ONECLOUD_TRACEMALLOC`` names a report file; that path, or None."""
    path = environ.get(ENV) or None
    if path is not None and not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    return path


def dump_at_shutdown(reactor: Any, pools: object, environ: Mapping[str, str] = os.environ) -> None:
    """Write the report when ``reactor`` shuts down, if ``ONECLOUD_TRACEMALLOC`` is set."""
    path = environ.get(ENV)
    if path:
        reactor.addSystemEventTrigger("before", "shutdown", write_report, path, pools)


def write_report(path: str, pools: object) -> dict[str, Any]:
    """The report (see the module's doc) written to ``path``, and its snapshot beside it."""
    started = time.monotonic()
    report: dict[str, Any] = {"objects": breakdown(pools)}
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        snapshot.dump(path + ".snapshot")
        report["traced"] = by_file(snapshot)
    report["seconds"] = round(time.monotonic() - started, 2)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)
    return report


def breakdown(pools: object) -> dict[str, int]:
    """Bytes per category of the objects reachable from ``pools`` (see the module's doc)."""
    seen: set[int] = set()
    sizes: dict[str, int] = {}
    shared = {id(value) for value in vars(pools).values()}
    for name in _POOLS:
        pool = getattr(pools, name, None)
        if pool is None:
            continue
        objects = getattr(pool, "_objects", {})
        sizes[f"{name}.index"] = sys.getsizeof(objects)
        seen.add(id(objects))
        for attr, value in sorted(vars(pool).items()):
            if attr != "_objects" and not callable(value) and id(value) not in shared:
                sizes.update(_parts(f"{name}.{attr}", value, seen))
        sizes[f"{name}.records"] = deep_size(objects.values(), seen)
    for attr, value in vars(pools).items():
        if attr not in _POOLS:
            sizes[attr] = deep_size([value], seen)
    return sizes


def _parts(label: str, value: object, seen: set[int]) -> dict[str, int]:
    """``value``'s size, or the size of each of its attributes when it is an object."""
    attrs = _attributes(value)
    if not attrs:
        return {label: deep_size([value], seen)}
    seen.add(id(value))
    own = {label: sys.getsizeof(value)}
    for attr, inner in attrs.items():
        own[f"{label}.{attr}"] = deep_size([inner], seen)
    return own


def _attributes(value: object) -> dict[str, object]:
    if isinstance(value, (*_SKIP, dict, list, tuple, set, bytes, str)):
        return {}
    slots = [s for cls in type(value).__mro__ for s in getattr(cls, "__slots__", ())]
    found = {s: getattr(value, s) for s in slots if hasattr(value, s)}
    found.update(getattr(value, "__dict__", {}))
    return found


def deep_size(roots: Iterable[object], seen: set[int]) -> int:
    """Bytes of ``roots`` and everything they reach that is not in ``seen`` (then it is)."""
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        referents = gc.get_referents(obj)
        total += sys.getsizeof(obj)
        if type(obj).__dictoffset__ < 0:  # managed: values inline, not in getsizeof
            total += 8 * len(referents)
        stack.extend(referents)
    return total


def by_file(snapshot: tracemalloc.Snapshot, top: int = 25) -> dict[str, Any]:
    """tracemalloc's total, its bytes per package or oned module (by the frame that
    allocated), and the ``top`` allocation sites with their tracebacks."""
    groups: dict[str, int] = {}
    for stat in snapshot.statistics("filename"):
        key = _group(stat.traceback[0].filename)
        groups[key] = groups.get(key, 0) + stat.size
    sites = [
        {"bytes": stat.size, "count": stat.count, "where": stat.traceback.format(limit=FRAMES)}
        for stat in snapshot.statistics("traceback")[:top]
    ]
    return {
        "total": sum(groups.values()),
        "by_file": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
        "top": sites,
    }


def _group(filename: str) -> str:
    """``sqlalchemy`` for a file of an installed package, ``oned/pools.py`` for ours, else
    the stdlib file's name (``<frozen ...>`` as it is)."""
    if _SITE in filename:
        return filename.split(_SITE, 1)[1].split(os.sep, 1)[0]
    for root in ("oned", "drivers", "scheduler"):
        marker = os.sep + root + os.sep
        if marker in filename:
            return root + os.sep + filename.rsplit(marker, 1)[1]
    return os.path.basename(filename)
