"""SQLite's WAL checkpoints, off oned's thread (issue 18).

SQLite checkpoints by itself inside the commit that takes the WAL past 1,000 pages: the copy
into the database file and its fsyncs ran in oned's reactor thread, a few milliseconds now and
then that every request waiting behind that commit paid (``one.vm.info`` p99 while clients
allocate). oned's connections turn that off (``PRAGMA wal_autocheckpoint=0``) and a
``Checkpointer`` thread, on a connection of its own, does it instead:

- every ``poll`` seconds it looks at the WAL file (one stat; every ``idle_poll`` seconds while
  it does not change); when the file grew past its size at the last pass, or it changed and
  ``interval`` seconds passed since the last pass, it runs a PASSIVE checkpoint, which never
  takes the writer's lock and never waits: oned keeps committing while it copies. When a pass
  copied everything, oned's next commit starts the WAL again from its beginning, so the file
  grows only while oned commits faster than the passes catch up.
- A writer that never pauses between commits for as long as a pass lasts keeps the WAL from
  starting again. Past ``limit`` bytes, the thread tries a TRUNCATE checkpoint without waiting
  (no busy handler: when oned is inside a transaction it is a PASSIVE one). When it gets the
  writer's lock, a commit of oned's that comes meanwhile waits for what is left to copy (the
  pass before copied the rest) and one fsync: the only time oned waits for this thread, once
  per ``limit`` bytes written without a pause.

``stop`` ends the thread and closes its connection; SQLite's own checkpoint at the last close
then removes the WAL, as before.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

LIMIT = 64 * 2**20  # bytes of WAL past which a pass truncates it, if it can without waiting
INTERVAL = 1.0  # seconds: a WAL that changed is checkpointed at least this often
POLL = 0.01  # seconds between two looks at the WAL file (one stat) while it changes
IDLE_POLL = 0.25  # the same once it stopped changing


class Checkpointer:
    """A thread checkpointing the SQLite database ``db_file`` (see the module's doc)."""

    def __init__(
        self,
        db_file: str,
        log: logging.Logger,
        *,
        limit: int = LIMIT,
        interval: float = INTERVAL,
        poll: float = POLL,
        idle_poll: float = IDLE_POLL,
    ):
        self.db_file = db_file
        self.wal_file = db_file + "-wal"
        self._log = log
        self.limit, self.interval, self.poll, self.idle_poll = limit, interval, poll, idle_poll
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0  # checkpoints run (PASSIVE and TRUNCATE)
        self.truncates = 0  # of them, TRUNCATE ones that got the writer's lock
        self.behind = 0  # pages the last pass left in the WAL (written while it copied)
        self._seen: tuple[int, int] = (0, 0)  # the WAL's size and mtime at the last pass

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def caught_up(self) -> bool:
        """Nothing written since the last pass, which copied everything: the next commit
        starts the WAL again from its beginning."""
        return not self.behind and _stat(self.wal_file) == self._seen

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (a pass in progress finishes first) and wait for it at most
        ``timeout`` seconds."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.db_file, timeout=0, isolation_level=None)
        except sqlite3.Error as exc:
            self._log.error(f"WAL checkpoints stopped: cannot open {self.db_file}: {exc}")
            return
        try:
            self._loop(conn)
        finally:
            conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        last = time.monotonic()
        looked, pause = self._seen, self.poll  # the WAL at the last look, the next look's wait
        while not self._stopping.wait(pause):
            stat = _stat(self.wal_file)
            pause = self.poll if stat != looked else self.idle_poll
            looked = stat
            grew = stat[0] > self._seen[0]
            if stat == self._seen or (not grew and time.monotonic() - last < self.interval):
                continue
            mode = "TRUNCATE" if stat[0] >= self.limit else "PASSIVE"
            try:
                busy, log, done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()[0]
            except sqlite3.Error as exc:
                # another process's checkpoint (onedb, a second reader) holds it: try later
                busy_now = "locked" in str(exc) or "busy" in str(exc)
                report = self._log.debug if busy_now else self._log.warning
                report(f"WAL checkpoint of {self.db_file} failed: {exc}")
                self._stopping.wait(self.interval)
                continue
            self.passes += 1
            self.truncates += mode == "TRUNCATE" and not busy
            self.behind = max(0, log - done)
            # the WAL as it was when the pass began: what came during it makes the next one
            self._seen, last = stat, time.monotonic()


def _stat(path: str) -> tuple[int, int]:
    """The file's size and mtime (ns); (0, 0) when there is no file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0)
    return (st.st_size, st.st_mtime_ns)
