"""The dummy drivers' ``--script``: a YAML file of scripted outcomes, re-read when it changes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class ScriptFile(Generic[R]):
    """A YAML file of scripted outcomes (the dummy drivers' ``--script``), re-read when its
    mtime, size or inode change, so a fault-injection test can change outcomes at run time.
    ``parse`` turns the YAML document into rules (ValueError when wrong); ``empty`` is what no
    file means. A file that does not parse is reported and the previous rules are kept."""

    def __init__(self, path: str, parse: Callable[[Any], R], empty: R) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._parse = parse
        self._empty = empty
        self._stamp: tuple[int, int, int] | None = None
        self._rules = empty

    def rules(self, log: Callable[[str], None]) -> R:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp != self._stamp:
            with self.lock:
                if stamp != self._stamp:
                    self._reload(log)
                    self._stamp = stamp  # after: no thread reads the rules before they load
        return self._rules

    def _reload(self, log: Callable[[str], None]) -> None:
        import yaml  # here: a driver must start in milliseconds without a script

        try:
            with open(self.path) as script:
                self._rules = self._parse(yaml.safe_load(script))
        except FileNotFoundError:
            self._rules = self._empty
        except (OSError, ValueError, yaml.YAMLError) as err:
            log(f"ignoring the changes to {self.path}: {' '.join(str(err).split())}")
