"""Restart benchmark (issue 11): how long oned takes to come back after ``kill -9`` with
``--vms`` VMs of which ``--transient`` are in a transient state (goal: under 10 s for 100,000
VMs, 10,000 transient).

The state is built through the API, as a client would: ``one.vm.allocate`` then
``one.vm.deploy`` in ``system.multicall`` requests of 1,000 calls. The ``--transient`` VMs are
deployed to dummy hosts whose VMM (the dummy driver with ``--script``) never answers DEPLOY, so
they sit in BOOT; the others stay PENDING. Then oned is killed with SIGKILL and started again,
timed from the start of the process:

- (a) until the XML-RPC port answers ``one.vm.info``;
- (b) until oned.log holds a "reconciling after restart" line for every transient VM (the
  decision, logged just before the DEPLOY is handed to the driver channel).

    .venv/bin/python bench/restart.py [--vms 100000] [--transient 10000] [--hosts 10]
                                      [--backend sqlite|postgresql] [--keep DIR]

PostgreSQL: the test server at 127.0.0.1:5432 (trust auth), a scratch database created and
dropped as bench/chaos.py does. The exit status is 0 when (b) is under ``--goal`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chaos import SESSION, postgresql
from oned.client import OneCallError, OneClient, OneClientError
from tests.functional.oned_process import OnedProcess

BATCH = 1000  # calls per system.multicall (oned's MAX_CALLS)
CLIENTS = 4
VM = "NAME = r\nCPU = 0.01\nMEMORY = 1\n"
BOOT = "2"
RECONCILED = "reconciling after restart: re-sending"


def cloud(location: Path, db: str | None) -> OnedProcess:
    script = location.parent / "vmm.yaml"
    script.write_text("DEPLOY: {outcome: hang}\n")
    extra = (
        'VM_MAD = [ name = "vmm_hang", executable = "one_vmm_dummy",\n'
        f'          arguments = "--script {script}", type = "xml" ]\n'
    )
    oned = OnedProcess(location, conf_extra=extra)
    if db:
        oned.set(DB=db)
    return oned


def batches(first: int, last: int) -> list[range]:
    return [range(n, min(n + BATCH, last)) for n in range(first, last, BATCH)]


def multicall(endpoint: str, calls: list[tuple[str, tuple]]) -> list[object]:
    with contextlib.closing(OneClient(endpoint, SESSION, timeout=300)) as rpc:
        replies = rpc.multicall(calls)
    failed = [reply for reply in replies if isinstance(reply, OneCallError)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(calls)} calls failed: {failed[0]}")
    return replies


def build(oned: OnedProcess, vms: int, transient: int, hosts: int) -> None:
    """``vms`` VMs, the first ``transient`` of them deployed (round robin) and left in BOOT."""
    admin = OneClient(oned.endpoint, SESSION, timeout=60)
    for n in range(hosts):
        admin.call("one.host.allocate", f"hang{n:02d}", "im_dummy", "vmm_hang", "tm_dummy")
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        allocate = [[("one.vm.allocate", (VM,))] * len(part) for part in batches(0, vms)]
        ids = [vid for replies in pool.map(lambda c: multicall(oned.endpoint, c), allocate)
               for vid in replies]  # fmt: skip
        took = time.monotonic() - started
        print(f"allocated {len(ids):,} VMs in {took:.0f} s ({len(ids) / took:,.0f}/s)", flush=True)
        deploy = [[("one.vm.deploy", (ids[i], i % hosts)) for i in part]
                  for part in batches(0, transient)]  # fmt: skip
        list(pool.map(lambda c: multicall(oned.endpoint, c), deploy))
    wait_boot(oned, ids[:transient])
    print(f"{transient:,} VMs in BOOT after {time.monotonic() - started:.0f} s", flush=True)


def wait_boot(oned: OnedProcess, vids: list[int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    left = list(vids)
    while left:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(left)} VMs not in BOOT after {timeout:.0f} s")
        infos = multicall(oned.endpoint, [("one.vm.info", (vid,)) for vid in left[:BATCH]])
        booting = {vid for vid, xml in zip(left, infos, strict=False)
                   if ET.fromstring(str(xml)).findtext("LCM_STATE") == BOOT}  # fmt: skip
        if len(booting) < len(infos):
            time.sleep(0.5)
        left = [vid for vid in left if vid not in booting]


def restart(oned: OnedProcess, transient: int, timeout: float = 300) -> tuple[float, float]:
    """kill -9 oned and start it again: seconds until one.vm.info answers, and until every
    transient VM has its reconciliation line in oned.log."""
    oned.stop(signal.SIGKILL)
    time.sleep(1)  # let the old drivers see their stdin close
    log = oned.location / "var" / "oned.log"
    offset = log.stat().st_size
    started = time.monotonic()
    deadline = started + timeout
    oned.start(timeout=timeout)
    admin = OneClient(oned.endpoint, SESSION, timeout=timeout)
    while True:
        try:
            admin.call("one.vm.info", 0)
            break
        except OneClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    answered = time.monotonic() - started
    with log.open("rb") as handle:
        handle.seek(offset)
        count, tail = 0, b""
        while count < transient:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {count} VMs reconciled after {timeout:.0f} s")
            chunk = handle.read()
            if not chunk:
                time.sleep(0.02)
                continue
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            count += sum(RECONCILED.encode() in line for line in lines)
    return answered, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--transient", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--goal", type=float, default=10.0)
    parser.add_argument("--restarts", type=int, default=1, help="kill -9 / start cycles")
    args = parser.parse_args(argv)
    database = postgresql() if args.backend == "postgresql" else contextlib.nullcontext()
    figures = []
    with tempfile.TemporaryDirectory(prefix="restart-") as tmp, database as db:
        oned = cloud(Path(tmp) / "one", db)
        try:
            oned.start(timeout=60)
            build(oned, args.vms, args.transient, args.hosts)
            for n in range(args.restarts):
                answered, reconciled = restart(oned, args.transient)
                figures.append(reconciled)
                print(f"restart {n + 1} ({args.backend}, {args.vms:,} VMs, {args.transient:,} "
                      f"in BOOT): one.vm.info answers after {answered:.2f} s, all "
                      f"{args.transient:,} reconciled after {reconciled:.2f} s "
                      f"(goal {args.goal:g} s)", flush=True)  # fmt: skip
        finally:
            oned.stop(timeout=30)
    return 0 if max(figures, default=float("inf")) < args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
