"""A driver executable on pipes, run the way oned runs it, for tests and benchmarks."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = {
    "one_im_ssh": "drivers.im_ssh",
    "one_im_dummy": "drivers.im_dummy",
    "one_hm": "drivers.hm",
}


def driver_argv(executable: str, arguments: str) -> list[str]:
    """The console script next to this Python (``pip install -e .``), else ``python -m``.

    ARGUMENTS is ONE argv element, as oned passes it.
    """
    script = Path(sys.executable).parent / executable
    argv = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "drivers." + executable.removeprefix("one_")]
    )
    return argv + ([arguments] if arguments else [])


class DriverProcess:
    """``send`` request lines, ``reply``/``wait_line`` for what the driver prints."""

    def __init__(
        self, executable: str, arguments: str = "", env: Mapping[str, str] | None = None
    ) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept as long as the driver runs)
        self.proc = subprocess.Popen(
            driver_argv(executable, arguments),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=ROOT,
            env={**os.environ, "ONE_DRIVER_NAME": executable, **(env or {})},
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The first line (already seen or coming) for which ``predicate`` holds; AssertionError
        naming every line seen when none comes within ``timeout`` seconds."""
        for line in self.seen:
            if predicate(line):
                self.seen.remove(line)
                return line
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"driver exited; saw {self.seen}; stderr {self.stderr_text()}")
            if predicate(line):
                return line
            self.seen.append(line)
        raise AssertionError(f"no such line within {timeout} s; saw {self.seen}")

    def next_lines(self, count: int, timeout: float = 60.0) -> list[str]:
        """The next ``count`` lines the driver prints, whatever they are (for throughput)."""
        deadline, lines = time.monotonic() + timeout, []
        while len(lines) < count:
            line = self._lines.get(timeout=max(0.001, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"driver exited after {len(lines)} lines")
            lines.append(line)
        return lines

    def reply(self, action: str, ident: int | str, timeout: float = 10.0) -> str:
        """The reply line ``ACTION SUCCESS|FAILURE ID ...`` for one request."""
        prefixes = (f"{action} SUCCESS {ident} ", f"{action} FAILURE {ident} ")
        return self.wait_line(lambda line: line.startswith(prefixes), timeout)

    def init(self, timeout: float = 5.0) -> str:
        self.send("INIT")
        return self.wait_line(lambda line: line.startswith("INIT "), timeout)

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def close(self) -> int:
        """FINALIZE, then the exit status (the process is killed if it lingers)."""
        try:
            self.send("FINALIZE")
            self.proc.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.stderr.close()
