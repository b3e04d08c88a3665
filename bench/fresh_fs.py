"""A fresh ext4 file system for a benchmark's ONE_LOCATION.

Why: on ext4, creating a file right after many files were deleted is slow. The kernel skips
inodes deleted within the last 60-360 s (``recently_deleted`` in ``fs/ext4/ialloc.c``), reading
each one's inode table entry. Each benchmark run deletes thousands of files, and so do the tests.
A file creation then went from 0.03 ms to 0.75 ms here, and the same scheduling run took anywhere
from 2.1 s to 12 s, depending on what ran in the minutes before.

A production front-end keeps its VM folders, so it does not churn like that. The benchmarks
measure oned on a disk in that state: a new ext4 image on a loop device (root only, needs
``mkfs.ext4``), mounted for the run and removed after. Elsewhere, or with ``--fs tmp``, they fall
back to a temporary folder, and the results say which one was used.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

SIZE = "4G"  # sparse: only what the run writes takes room


def add_option(parser: argparse.ArgumentParser) -> None:
    """``--fs auto|ext4|tmp``, for ``folder``."""
    parser.add_argument(
        "--fs", choices=["auto", "ext4", "tmp"], default="auto",
        help="where ONE_LOCATION goes (auto: a fresh ext4 image when root)",
    )  # fmt: skip


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("mkfs.ext4") is not None


@contextlib.contextmanager
def folder(kind: str) -> Iterator[tuple[str, str]]:
    """(path, description) of an empty folder: on a fresh ext4 image when ``kind`` is "ext4"
    (or "auto" and ``available()``), else a temporary folder."""
    if kind == "ext4" or (kind == "auto" and available()):
        with _fresh_ext4() as path:
            yield path, "fresh ext4 on a loop device"
        return
    with tempfile.TemporaryDirectory(prefix="onecloud-bench-") as path:
        yield path, f"temporary folder in {os.path.dirname(path)}"


@contextlib.contextmanager
def _fresh_ext4() -> Iterator[str]:
    work = tempfile.mkdtemp(prefix="onecloud-bench-", dir="/var/tmp")
    image, mount = os.path.join(work, "fs.img"), os.path.join(work, "mnt")
    os.mkdir(mount)
    try:
        subprocess.run(["truncate", "-s", SIZE, image], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
        subprocess.run(["mount", "-o", "loop", image, mount], check=True)
        try:
            yield mount
        finally:
            subprocess.run(["umount", mount], check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
