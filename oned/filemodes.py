"""The modes of the files oned keeps: its user's only, its group's only when the operator says so.

Every file oned and its drivers create asks for at most group access (``FILE_MODE`` 0640,
``DIR_MODE`` 0750) and the process umask, oned.conf's UMASK (077 by default, 027 to let a group
read), takes the group's bits away. So whatever umask oned was started with, nothing it writes
is readable by other users: the database holds password hashes and CONTEXT values, the VM
folders deployment files and context.sh, oned.conf the database password.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable

FILE_MODE = 0o640
DIR_MODE = 0o750
SECRET_MODE = 0o600  # keys: their user's only, whatever UMASK says


def create_file(path: str) -> None:
    """Create ``path`` empty with ``FILE_MODE`` (less the umask) unless it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))


def make_dirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` with ``DIR_MODE`` for every folder it creates."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    except FileNotFoundError:
        make_dirs(os.path.dirname(path.rstrip("/")))
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, DIR_MODE)


def open_append(path: str) -> int:
    """A descriptor appending to ``path``, created with ``FILE_MODE`` if missing."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)


def write_file(path: str, text: str) -> None:
    """Write a whole file (created with ``FILE_MODE``), making its folder if needed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileNotFoundError:
        make_dirs(os.path.dirname(path))
        fd = os.open(path, flags, FILE_MODE)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)


def create_secret_file(path: str, text: str) -> None:
    """Create ``path`` with ``SECRET_MODE`` holding ``text``; FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def tighten(paths: Iterable[str], umask: int) -> list[str]:
    """Take from each existing path the permission bits ``umask`` forbids; one message per change.

    For installs made before oned created its files private: a one.db or oned.log of mode 0644
    becomes 0600 (0640 with UMASK 027). Paths that do not exist are skipped; a path that cannot be
    changed (another owner) gets a message saying so.
    """
    messages = []
    for path in paths:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue
        if not mode & umask:
            continue
        narrower = mode & ~umask
        try:
            os.chmod(path, narrower)
        except OSError as exc:
            messages.append(
                f"{path} has mode {mode:04o}, wider than UMASK {umask:03o} allows, "
                f"and cannot be changed: {exc.strerror}"
            )
            continue
        messages.append(
            f"{path} had mode {mode:04o}, wider than UMASK {umask:03o} allows: now {narrower:04o}"
        )
    return messages
