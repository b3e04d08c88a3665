"""A small JSON document econe keeps in a file of its own (key pairs, elastic addresses).

Pure and blocking. The file is mode 0600, read whole and rewritten whole (temporary file,
fsync, rename) so a crash leaves the old document or the new one, never half of one. Callers
hold `lock` around a read-change-write.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any


class JsonFile:
    """One JSON object at `path`; `{}` while the file does not exist."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()

    def load(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: expected a JSON object")
        return data

    def save(self, data: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
