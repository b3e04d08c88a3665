"""Scheduling benchmark: pending VMs to RUNNING on dummy hosts through mm_sched and oned.

Everything is a real process: oned, one_im_dummy, one_vmm_dummy, one_tm (dummy), mm_sched.
The VMs are allocated first (nothing placed yet); then mm_sched starts and the clock runs
until every VM is RUNNING. Then one more VM on the idle cloud: allocate to RUNNING.

    .venv/bin/python bench/schedule.py [--hosts 100] [--vms 1000] [--max-host 20] [--fs auto]

ONE_LOCATION is on a fresh ext4 file system when run as root (see bench/fresh_fs.py: a disk
that just deleted thousands of files makes every file creation 25 times slower).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fresh_fs
from bench.api import machine
from oned.expr import parse_requirements
from scheduler.pools import parse_hosts
from tests.functional.oned_process import BIN, OnedProcess

SESSION = "oneadmin:onecloud"
TEMPLATES = [  # ten shapes, mixed REQUIREMENTS and RANK; every one fits a dummy host
    'NAME = "web"\nCPU = 0.5\nMEMORY = 512\nRANK = "- RUNNING_VMS"',
    'NAME = "db"\nCPU = 1\nMEMORY = 1024\nRANK = "FREECPU"',
    'NAME = "batch"\nCPU = 0.25\nMEMORY = 256\nREQUIREMENTS = "HOSTNAME = \\"dummy*\\""',
    'NAME = "cache"\nCPU = 0.2\nMEMORY = 2048\nREQUIREMENTS = "TOTALMEMORY > 8000000"',
    'NAME = "tiny"\nCPU = 0.1\nMEMORY = 64',
    'NAME = "pack"\nCPU = 0.3\nMEMORY = 128\nRANK = "RUNNING_VMS"',
    'NAME = "hyp"\nCPU = 0.2\nMEMORY = 256\nREQUIREMENTS = "HYPERVISOR = \\"dummy\\""',
    'NAME = "busy"\nCPU = 0.4\nMEMORY = 512\nREQUIREMENTS = "FREECPU > 100"\nRANK = "FREEMEMORY"',
    'NAME = "avoid"\nCPU = 0.2\nMEMORY = 128\nREQUIREMENTS = "! (HOSTNAME = \\"dummy0001\\")"',
    'NAME = "mix"\nCPU = 0.3\nMEMORY = 768\n'
    'REQUIREMENTS = "TOTALCPU > 400 & HOSTNAME != \\"nowhere\\""\n'
    'RANK = "- (RUNNING_VMS * 10 + CPU_USAGE)"',
]


class Rpc:
    def __init__(self, port: int, db_file: Path):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.db_file = db_file
        self.db: sqlite3.Connection | None = None

    def call(self, method: str, *args: object) -> bytes:
        body = xmlrpc.client.dumps((SESSION, *args), method).encode()
        try:
            self.conn.request("POST", "/RPC2", body)
        except BrokenPipeError:  # oned closed the idle connection: the request never left
            self.conn.close()
            self.conn.request("POST", "/RPC2", body)
        reply = self.conn.getresponse().read()
        if b"<boolean>1</boolean>" not in reply[:200]:
            raise SystemExit(f"{method} failed: {reply[:300]!r}")
        return reply

    def running(self) -> int:
        """How many VMs are RUNNING as oned committed them, read from its SQLite database (a
        reader in WAL mode, on a connection of the benchmark's own): polling a listing cost
        oned ~10 % of the 10,000-VM run, a load of the benchmark's own that grew with the pool.
        """
        if self.db is None:
            self.db = sqlite3.connect(f"file:{self.db_file}?mode=ro", uri=True)
        (count,) = self.db.execute(
            "SELECT count(*) FROM vm_pool WHERE state = 3 AND lcm_state = 3"
        ).fetchone()
        return count


def check(rpc: Rpc) -> list[str]:
    """Every violation once all VMs run: a host over its capacity, a VM on a host against its
    REQUIREMENTS (evaluated on the host as it is now, its attributes being static here)."""
    hosts = {
        h.id: h for h in parse_hosts(xmlrpc.client.loads(rpc.call("one.hostpool.info"))[0][0][1])
    }
    reply = rpc.call("one.vmpool.infoextended", -2, -1, -1, -1)
    used: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    problems = []
    for vm in ET.fromstring(xmlrpc.client.loads(reply)[0][0][1]).iter("VM"):
        hid = int(vm.findtext("HISTORY_RECORDS/HISTORY[last()]/HID", "-1"))
        host = hosts.get(hid)
        if host is None:
            problems.append(f"VM {vm.findtext('ID')} has no host")
            continue
        used[hid][0] += float(vm.findtext("TEMPLATE/CPU", "0")) * 100
        used[hid][1] += int(vm.findtext("TEMPLATE/MEMORY", "0")) * 1024
        requirements = vm.findtext("TEMPLATE/REQUIREMENTS", "")
        if requirements and not parse_requirements(requirements)(host.attrs):
            problems.append(f"VM {vm.findtext('ID')} on {host.name} against {requirements}")
    for hid, (cpu, memory) in used.items():
        if cpu > hosts[hid].max_cpu or memory > hosts[hid].max_mem:
            problems.append(f"{hosts[hid].name} over capacity: CPU {cpu:.0f}, MEMORY {memory}")
    return problems


def wait(predicate, timeout: float, step: float = 0.02) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise SystemExit("timed out")
        time.sleep(step)
    return time.monotonic() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads): the work a run cost,
    which the machine's load does not inflate as it does the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_sched(oned: OnedProcess, max_host: int, vms: int) -> subprocess.Popen:
    argv = [str(BIN / "mm_sched"), "-p", str(oned.port), "-m", str(vms + 1),
            "-d", str(vms + 1), "-h", str(max_host), "-t", "30"]  # fmt: skip
    return subprocess.Popen(
        argv, env=oned.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--max-host", type=int, default=20)
    fresh_fs.add_option(parser)
    args = parser.parse_args()
    with fresh_fs.folder(args.fs) as (tmp, where):
        oned = OnedProcess(Path(tmp) / "one").set(DEBUG_LEVEL=1, VM_POLLING_INTERVAL=0)
        oned.start()
        sched = None
        rpc = Rpc(oned.port, Path(tmp) / "one" / "var" / "one.db")
        try:
            print(f"machine: {machine()}")
            print(f"ONE_LOCATION: {where}")
            for h in range(args.hosts):
                rpc.call("one.host.allocate", f"dummy{h:04d}", "im_dummy", "vmm_dummy", "tm_dummy")
            wait(
                lambda: rpc.call("one.hostpool.info").count(b"&lt;STATE&gt;2&lt;") >= args.hosts, 60
            )
            for v in range(args.vms):
                rpc.call("one.vm.allocate", TEMPLATES[v % len(TEMPLATES)])
            if os.environ.get("BENCH_PAUSE"):  # time to attach a profiler to oned
                print(f"oned pid {oned.proc.pid}", flush=True)
                time.sleep(float(os.environ["BENCH_PAUSE"]))
            oned_cpu = cpu_seconds(oned.proc.pid)
            sched = start_sched(oned, args.max_host, args.vms)
            took = wait(lambda: rpc.running() >= args.vms, 600, 0.02)  # costs oned nothing
            oned_cpu = cpu_seconds(oned.proc.pid) - oned_cpu
            print(
                f"{args.vms} pending VMs on {args.hosts} dummy hosts RUNNING in {took:.2f} s "
                f"(mm_sched start included; MAX_HOST {args.max_host})"
            )
            print(
                f"CPU meanwhile: oned {oned_cpu:.2f} s, mm_sched {cpu_seconds(sched.pid):.2f} s; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            problems = check(rpc)
            fine = "no host over capacity, every REQUIREMENTS honoured"
            print(f"checks: {'; '.join(problems[:5]) if problems else fine}")
            time.sleep(1)
            start = time.monotonic()
            rpc.call("one.vm.allocate", TEMPLATES[0])
            wait(lambda: rpc.running() >= args.vms + 1, 60, 0.005)
            print(
                f"one VM on the idle cloud, allocate to RUNNING: {time.monotonic() - start:.2f} s"
            )
        finally:
            if rpc.db is not None:  # before the file system is unmounted
                rpc.db.close()
            if sched is not None:
                sched.send_signal(signal.SIGTERM)
                sched.wait(10)
            oned.stop()
            log = Path(tmp) / "one" / "var" / "sched.log"
            if log.exists() and os.environ.get("SHOW_SCHED_LOG"):
                print(log.read_text()[-3000:])


if __name__ == "__main__":
    main()
