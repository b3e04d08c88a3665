"""Image copy benchmark: one_image's CP of a 2 GB file against ``cp`` on the same disk.

A file of random-ish bytes (a random 4 MiB block, each copy stamped with its index: nothing
compresses, dedups or is a hole) is written once in a temporary folder next to the repository and
removed after. Each round times ``cp`` alone, ``cp`` then ``sync -f`` of the copy (one_image
fsyncs before it answers: a READY image survives a power cut), and a CP through a real one_image
process (from the request line to its SUCCESS line, the sha256 included); every copy is removed
before the next. The source stays in the page cache for all of them. The best of the rounds is
printed, with the ratios (goal: one_image >= 0.9 of cp).

    .venv/bin/python bench/image_copy.py [--size-mb 2048] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.driver_process import DriverProcess

BLOCK = 4 << 20


def write_source(path: Path, size_mb: int) -> None:
    block = bytearray(os.urandom(BLOCK))
    with open(path, "wb") as file:
        for index in range(size_mb * (1 << 20) // BLOCK):
            block[:8] = index.to_bytes(8, "little")
            file.write(block)
        os.fsync(file.fileno())


def timed(argv_list: list[list[str]]) -> float:
    started = time.perf_counter()
    for argv in argv_list:
        subprocess.run(argv, check=True)
    return time.perf_counter() - started


def driver_copy(driver: DriverProcess, index: int, src: Path, dst: Path) -> float:
    started = time.perf_counter()
    driver.send(f"CP {index} {src} {dst}")
    reply = driver.reply("CP", index, timeout=600)
    elapsed = time.perf_counter() - started
    if not reply.startswith("CP SUCCESS"):
        raise SystemExit(f"one_image failed: {reply}")
    return elapsed


def run(folder: Path, size_mb: int, rounds: int) -> dict[str, float]:
    src, repo = folder / "source.img", folder / "images"
    repo.mkdir()
    write_source(src, size_mb)
    best = {"cp": float("inf"), "cp+sync": float("inf"), "one_image": float("inf")}
    driver = DriverProcess("one_image", f"--repository {repo}")
    try:
        driver.init()
        for index in range(rounds):
            dst = repo / f"cp-{index}"
            best["cp"] = min(best["cp"], timed([["cp", str(src), str(dst)]]))
            os.unlink(dst)
            subprocess.run(["sync"], check=True)  # nothing of the last copy still to write
            argv = [["cp", str(src), str(dst)], ["sync", "-f", str(dst)]]
            best["cp+sync"] = min(best["cp+sync"], timed(argv))
            os.unlink(dst)
            image = repo / str(index)
            best["one_image"] = min(best["one_image"], driver_copy(driver, index, src, image))
            os.unlink(image)
    finally:
        driver.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", help="where the source and the repository go (a temp dir)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="one-image-bench-", dir=args.dir))
    try:
        best = run(folder, args.size_mb, args.rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    mb = args.size_mb
    for name, seconds in best.items():
        print(f"{name:10} {seconds:6.2f} s  {mb / seconds:7.0f} MB/s")
    for base in ("cp", "cp+sync"):
        print(f"one_image / {base}: {best[base] / best['one_image']:.2f}")


if __name__ == "__main__":
    main()
