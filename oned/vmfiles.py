"""vmfiles: the files oned keeps for each VM on the front-end, written by one thread.

``<var>/<vid>/`` holds the VM's ``vm.log`` (reference §2), its deployment files
(``deployment.<seq>``), its transfer scripts (``transfer.<seq>.<kind>``) and ``context.sh``.

All of them are written by a single writer thread, in the order they were asked for:

* Creating a file or a folder costs 0.03-0.75 ms of kernel time here, too much for the reactor.
* Several threads creating files in the same folder contend for its lock. With Twisted's pool
  of ten, 1,000 deployments took 3.9 s; with this one thread, 2.4 s (bench/schedule.py).
* The thread takes everything queued at once, writes it, then hands the whole batch's
  completions back to the reactor in one call.

``threaded=False`` does the same work synchronously: for tests driven by a fake clock.

The folders are created 0750 and the files 0640, less the umask (UMASK, 077 by default: 0700 and
0600): deployment files and context.sh hold the VM's CONTEXT values. A vm.log line is one line,
escaped and cut as oned.log's (``log.one_line``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from twisted.internet import defer

from oned.filemodes import make_dirs, open_append, write_file
from oned.log import one_line

Files = Sequence[tuple[str, str]]  # (path, text) pairs
_Log = tuple[int, bytes]
_Write = tuple[Files, defer.Deferred]


def vm_folder(var_dir: str, vid: int) -> str:
    """``<var>/<vid>``: where oned writes a VM's files on the front-end."""
    return os.path.join(var_dir, str(vid))


class VmFiles:
    """vm.log lines and whole files of VMs, written in order by one thread.

    ``deliver`` runs a function in the reactor thread (``reactor.callFromThread``); the
    Deferreds of ``write`` fire there. The last ``keep`` vm.log files stay open, so a log line
    usually costs one ``write``.
    """

    def __init__(
        self,
        var_dir: str,
        deliver: Callable[..., object] | None = None,
        keep: int = 256,
        threaded: bool = True,
    ):
        self._var = var_dir
        self._deliver = deliver
        self._keep = keep
        self._open: OrderedDict[int, int] = OrderedDict()
        self._queue: queue.SimpleQueue[_Log | _Write | None] = queue.SimpleQueue()
        self._log = logging.getLogger("one.LCM")
        self._thread: threading.Thread | None = None
        if threaded:
            if deliver is None:
                raise ValueError("a threaded VmFiles needs deliver (reactor.callFromThread)")
            self._thread = threading.Thread(target=self._drain, name="vmfiles", daemon=True)
            self._thread.start()

    def folder(self, vid: int) -> str:
        """``<var>/<vid>``: where the VM's files go."""
        return vm_folder(self._var, vid)

    def log(self, vid: int, module: str, *messages: str, level: str = "I") -> None:
        """Append ``messages`` to the VM's vm.log, one line each, in oned.log's format."""
        stamp = time.strftime("%a %b %d %H:%M:%S %Y")
        text = "".join(f"{stamp} [{module}][{level}]: {one_line(m)}\n" for m in messages)
        item = (vid, text.encode("utf-8", "replace"))
        if self._thread is None:
            self._append_logged(item)
        else:
            self._queue.put(item)

    def write(self, files: Files) -> defer.Deferred:
        """Write whole files; the Deferred fires (None, or the OSError) once they are on disk."""
        if self._thread is None:
            try:
                _write_all(files)
            except OSError as exc:
                return defer.fail(exc)
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._queue.put((files, d))
        return d

    def close(self) -> None:
        """Write what is queued, then close every file."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    # -- the writer thread ----------------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            done: list[tuple[defer.Deferred, OSError | None]] = []
            for item in batch:
                if item is None:
                    self._hand_back(done)
                    return
                if isinstance(item[1], defer.Deferred):
                    files, d = item
                    try:
                        _write_all(files)
                        done.append((d, None))
                    except OSError as exc:
                        done.append((d, exc))
                else:
                    self._append_logged(item)
            self._hand_back(done)

    def _hand_back(self, done: list[tuple[defer.Deferred, OSError | None]]) -> None:
        if done and self._deliver is not None:
            self._deliver(_fire, done)

    def _append_logged(self, item: _Log) -> None:
        try:
            self._append(*item)
        except OSError as exc:
            self._log.error(f"vm.log of VM {item[0]}: {exc}")

    def _append(self, vid: int, data: bytes) -> None:
        fd = self._open.get(vid)
        if fd is None:
            folder = self.folder(vid)
            make_dirs(folder)
            fd = self._open[vid] = open_append(os.path.join(folder, "vm.log"))
            if len(self._open) > self._keep:
                os.close(self._open.popitem(last=False)[1])
        else:
            self._open.move_to_end(vid)
        os.write(fd, data)


def _write_all(files: Files) -> None:
    for path, text in files:
        write_file(path, text)


def _fire(done: list[tuple[defer.Deferred, OSError | None]]) -> None:
    """In the reactor thread: fire the Deferreds of one batch."""
    for d, error in done:
        if error is None:
            d.callback(None)
        else:
            d.errback(error)
