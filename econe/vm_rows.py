"""A VM pool listing read VM by VM, each VM's answer kept by its text: a DescribeInstances of
1000 unchanged instances parses none of them again.

Pure. oned writes a pool as `<VM_POOL><VM><ID>n</ID><UID>…</VM>…</VM_POOL>`, every value a user
wrote inside CDATA (names outside it escaped: no literal `<`). So a VM starts at a `<VM><ID>`
followed by digits outside any CDATA section, which one C regex scan finds (a user's own `VM = [
ID = … ]` vector is `<VM><ID><![CDATA[…`, never digits). The same holds of the document as the
XML-RPC reply carries it (`&lt;VM&gt;…`: a user's `&` is `&amp;` there), which is split as it
is: the whole document is never unescaped. Each VM's text is looked up in a bounded cache;
only a VM whose text changed (state, tags, anything) is unescaped and parsed, alone. The cache
holds what `row_of` made of the text, so it is right whoever asks: a user is only ever given
the VMs oned listed for them.
"""

from __future__ import annotations

import itertools
import re
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from econe.one import unescape

_START = re.compile(rb"&lt;VM&gt;&lt;ID&gt;\d")
LIMIT = 20_000  # VMs kept (the listings of a few large users)


class RowCache:
    """`rows(raw)`: `row_of(<VM> element)` for each VM of a pool document as the XML-RPC reply
    carries it (escaped: `&lt;VM&gt;…`), in order; a VM is unescaped and parsed only when
    its text is not kept."""

    def __init__(self, row_of: Callable[[ET.Element], Any], limit: int = LIMIT) -> None:
        self.row_of = row_of
        self.limit = limit
        self._lock = threading.Lock()
        self._kept: OrderedDict[bytes, Any] = OrderedDict()
        self.parsed = 0  # VMs parsed so far (tests and benchmarks look)

    def rows(self, raw: bytes) -> list[Any]:
        found = []
        for text in split(raw):
            with self._lock:
                row = self._kept.get(text)
                if row is not None:
                    self._kept.move_to_end(text)
            if row is None:
                row = self.row_of(ET.fromstring(unescape(text)))
                self._keep(text, row)
            found.append(row)
        return found

    def _keep(self, text: bytes, row: Any) -> None:
        with self._lock:
            self.parsed += 1
            self._kept[text] = row
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)


def split(raw: bytes) -> list[bytes]:
    """The escaped `<VM>…</VM>` texts of an escaped pool document; ValueError if it is not
    one oned wrote."""
    starts = [m.start() for m in _START.finditer(raw) if not _in_cdata(raw, m.start())]
    if not starts:
        if raw.strip() not in (b"&lt;VM_POOL/&gt;", b"&lt;VM_POOL&gt;&lt;/VM_POOL&gt;"):
            raise ValueError("not a VM pool document")
        return []
    end = raw.rfind(b"&lt;/VM_POOL&gt;")
    if not raw.startswith(b"&lt;VM_POOL&gt;") or end < starts[-1]:
        raise ValueError("not a VM pool document")
    bounds = [*starts, end]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def _in_cdata(raw: bytes, at: int) -> bool:
    """Whether `at` is inside a CDATA section (user text may hold anything but "]]>")."""
    opened = raw.rfind(b"&lt;![CDATA[", 0, at)
    return opened >= 0 and raw.find(b"]]&gt;", opened, at) < 0
