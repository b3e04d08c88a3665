"""A compact cache of the full XML fragments of a pool's objects (issue 18); pure.

Each pool caches every object's XML already escaped for an XML-RPC reply (DESIGN.md §9), in
two forms: the summary ``one.vmpool.info`` joins for every VM (hot: it stays a plain dict in
the Pool) and the full document of ``one.vm.info`` and ``one.vmpool.infoextended``. The full
form was the single biggest part of oned's memory after the records themselves: about 2.5 KB
per VM in the benchmark (bench/RESULTS.md, "oned memory (issue 18)"). This cache keeps it in
two tiers:

- **hot**: the fragments used last, as they are, up to ``budget`` bytes (least recently used
  first out), so a VM that is read again and again costs what it cost before;
- **cold**: every fragment that left the hot tier, zlib-compressed (level 1) against a preset
  dictionary, the first fragment the cache was given that is at least ``DICT_MIN`` bytes long
  (its element names and the values VMs share): the benchmark VM's 3.9 KB of full XML is
  0.97 KB compressed alone and 0.29 KB with the dictionary. 20,000 of them held 79.9 MB in a
  dict and hold 11.6 MB here with the default budget (bench/xmlcache.py).

Why compression and not rendering on demand (bench/xmlcache.py, alternated rounds in one
process): rendering and escaping a VM's full XML costs about 5x what inflating its compressed
copy does (76 us against 16 us on a loaded machine), and ``one.vmpool.infoextended`` reads
every VM's full fragment, so rendering cold VMs would make that listing about 5x slower than
this cache does. What this cache costs is still real: a listing of every VM inflates the cold
ones (``one.vmpool.infoextended`` of 10,000 VMs went from 61-90 ms to 117-306 ms at best in
oned on the loaded machine), a cold ``one.vm.info`` inflates one, and a
fragment is deflated once when it first leaves the hot tier (about 40 us). A cold fragment
read again is inflated into the hot tier while its compressed copy stays, so a fragment pushed
out again costs nothing, and a listing of every VM deflates nothing it deflated before.

Not thread-safe: the pools live on the reactor thread.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict

DEFAULT_BUDGET = 4 * 1024 * 1024  # bytes of uncompressed fragments kept hot
DICT_MIN = 512  # the first fragment at least this long becomes the preset dictionary
LEVEL = 1  # zlib: level 6 made the benchmark fragment 10% smaller and deflating 1.5-2x slower


class XmlCache:
    """Fragments by object id: the last used uncompressed within ``budget`` bytes, every
    other one compressed; with ``budget`` None every one uncompressed (a plain dict). ``get``
    never renders: None means the caller renders and ``put``s."""

    __slots__ = ("_cold", "_cold_bytes", "_hot", "_hot_bytes", "_zdict", "budget")

    def __init__(self, budget: int | None = DEFAULT_BUDGET) -> None:
        if budget is not None and budget < 0:
            raise ValueError(f"XmlCache budget must be 0 or more bytes, not {budget}")
        self.budget = budget
        self._hot: OrderedDict[int, bytes] = OrderedDict()
        self._hot_bytes = 0
        self._cold: dict[int, bytes] = {}
        self._cold_bytes = 0
        self._zdict: bytes | None = None

    def __len__(self) -> int:
        return len(self._hot.keys() | self._cold.keys())

    def __contains__(self, oid: int) -> bool:
        return oid in self._hot or oid in self._cold

    def get(self, oid: int) -> bytes | None:
        """The fragment of ``oid`` (then the most recently used), or None."""
        data = self._hot.get(oid)
        if data is not None:
            if self.budget is not None:
                self._hot.move_to_end(oid)
            return data
        packed = self._cold.get(oid)
        if packed is None:
            return None
        data = self._inflate(packed)
        self._keep(oid, data)
        return data

    def put(self, oid: int, data: bytes) -> None:
        """Cache ``data`` as the fragment of ``oid``, replacing any older one."""
        self.forget(oid)
        if self._zdict is None and len(data) >= DICT_MIN:
            self._zdict = data
        self._keep(oid, data)

    def forget(self, oid: int) -> None:
        """Drop the fragment of ``oid`` (it changed or went away); nothing if there is none."""
        data = self._hot.pop(oid, None)
        if data is not None:
            self._hot_bytes -= len(data)
        packed = self._cold.pop(oid, None)
        if packed is not None:
            self._cold_bytes -= len(packed)

    def clear(self) -> None:
        self._hot.clear()
        self._cold.clear()
        self._hot_bytes = self._cold_bytes = 0

    def sizes(self) -> dict[str, int]:
        """Fragments and their bytes per tier (a fragment read back from the cold tier is in
        both), and the preset dictionary's length."""
        return {
            "hot": len(self._hot),
            "hot_bytes": self._hot_bytes,
            "cold": len(self._cold),
            "cold_bytes": self._cold_bytes,
            "dict_bytes": len(self._zdict or b""),
        }

    def _keep(self, oid: int, data: bytes) -> None:
        """``data`` into the hot tier; the least recently used out to the cold one (deflated
        there unless it still has its compressed copy) while over budget. The newest stays
        even when it alone is over budget, so a ``get`` right after ``put`` is never cold."""
        hot = self._hot
        hot[oid] = data
        self._hot_bytes += len(data)
        budget = self.budget
        while budget is not None and self._hot_bytes > budget and len(hot) > 1:
            old, fragment = hot.popitem(last=False)
            self._hot_bytes -= len(fragment)
            if old not in self._cold:
                packed = self._deflate(fragment)
                self._cold[old] = packed
                self._cold_bytes += len(packed)

    def _deflate(self, data: bytes) -> bytes:
        if self._zdict is None:
            return zlib.compress(data, LEVEL)
        packer = zlib.compressobj(LEVEL, zdict=self._zdict)
        return packer.compress(data) + packer.flush()

    def _inflate(self, packed: bytes) -> bytes:
        if self._zdict is None:
            return zlib.decompress(packed)
        unpacker = zlib.decompressobj(zdict=self._zdict)
        return unpacker.decompress(packed) + unpacker.flush()
