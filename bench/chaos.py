"""Chaos benchmark (issue 11): kill -9 of oned at random moments during a storm of VM operations.

Four clients allocate VMs with a NIC on a RANGED network, deploy them (or let mm_sched do it),
hold, release, shut down and delete them, while oned is killed ``--kills`` times and restarted
(with ``--kill-drivers``, driver processes and mm_sched are killed at random too). Every
acknowledged operation goes to a ledger; after each restart, with the clients paused:

- lost: an acknowledged VM is missing, or its state contradicts the last acknowledged action;
- reused: an id answered twice by one.vm.allocate, or not above every id acknowledged before;
- leaked / doubled: a lease held by a DONE or unknown VM, a live VM without the lease of its NIC,
  an address leased twice.

At the end it waits up to ``--settle`` seconds for VMs in transient states (ACTIVE but not
RUNNING, or an acknowledged shutdown/delete not yet DONE) and prints them by state.

    .venv/bin/python bench/chaos.py [--kills 50] [--ops 1000] [--backend sqlite|postgresql]
                                    [--scheduler] [--kill-drivers] [--seed N]
                                    [--restart-db [N]]   # with --backend postgresql

``--restart-db`` restarts the PostgreSQL server N times (default 2) mid-storm, halfway between
two kills of oned, with the clients going on; oned may refuse calls while it is down, but must
lose nothing acknowledged and accept writes again without a restart of its own. The server is
started again at the end whatever happens.

PostgreSQL: the test server at 127.0.0.1:5432 (trust auth, database ``test``); a scratch
database is created and dropped. The exit status is 0 when nothing was lost, reused, leaked,
doubled or left stuck.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oned.client import OneCallError, OneClient, OneClientError
from oned.states import LcmState, VmState
from tests.functional.oned_process import BIN, OnedProcess

SESSION = "oneadmin:onecloud"
CLIENTS = 4
HOSTS = 8
VM = 'NAME = chaos\nCPU = 0.05\nMEMORY = 32\nNIC = [ NETWORK = "chaos" ]\n'
NET = "NAME = chaos\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.9.0.0\nNETWORK_SIZE = B\n"
SCHED_CONF = "SCHED_INTERVAL = 1\nLIVE_INTERVAL = 0.5\nMAX_HOST = 50\nMAX_DISPATCH = 200\n"
STABLE_LCM = (LcmState.RUNNING, LcmState.UNKNOWN)
_ANY = frozenset(VmState)
_ACTIVE_OR = frozenset({VmState.ACTIVE, VmState.FAILED})
# What may be true of a VM after its last acknowledged action (the scheduler may deploy PENDING).
EXPECT = {
    "allocate": frozenset({VmState.PENDING}),
    "release": frozenset({VmState.PENDING}),
    "hold": frozenset({VmState.HOLD}),
    "deploy": _ACTIVE_OR,
    "shutdown": frozenset({VmState.ACTIVE, VmState.DONE}),
    "finalize": frozenset({VmState.ACTIVE, VmState.DONE}),
    "unknown": _ANY,
    # An unacknowledged action found the VM ACTIVE: it may have been a shutdown still running.
    "active": frozenset({VmState.ACTIVE, VmState.FAILED, VmState.DONE}),
}
FINAL = ("shutdown", "finalize")  # acknowledged: the VM must reach DONE


@dataclass
class Seen:
    """A VM as vm.info shows it."""

    state: VmState
    lcm: LcmState
    ip: str


@dataclass
class Ledger:
    """Acknowledged operations: per VM its last acknowledged action, and every id answered."""

    last: dict[int, str] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def high(self) -> int:
        """The highest id acknowledged so far (-1: none)."""
        with self.lock:
            return max(self.ids, default=-1)

    def allocated(self, vid: int, high: int) -> None:
        """``vid`` answered by an allocate sent when ``high`` was the highest id acknowledged."""
        with self.lock:
            if vid in self.last or vid <= high:
                self.reused.append(f"VM {vid} answered after {high} was acknowledged")
            self.ids.append(vid)
            self.last[vid] = "allocate"

    def acked(self, vid: int, action: str) -> None:
        with self.lock:
            self.last[vid] = action


class Gate:
    """Clients run operations while the gate is open; ``close`` waits for the running ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open, self._running = True, 0

    @contextlib.contextmanager
    def passing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._open)
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open = False
            self._cond.wait_for(lambda: self._running == 0, timeout=120)

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()


def seen_of(xml: str) -> Seen:
    root = ET.fromstring(xml)
    return Seen(
        VmState(int(root.findtext("STATE") or 0)),
        LcmState(int(root.findtext("LCM_STATE") or 0)),
        root.findtext("TEMPLATE/NIC/IP") or "",
    )


class Storm:
    """The clients, the ledger and the cloud they work on."""

    def __init__(self, oned: OnedProcess, args: argparse.Namespace):
        self.oned, self.args = oned, args
        self.ledger, self.gate = Ledger(), Gate()
        self.done_ops = 0
        self.budget = args.ops  # raised by the operations made while PostgreSQL restarts
        self.count = threading.Lock()
        self.errors: list[str] = []
        self.up = threading.Event()  # oned is running (cleared from its kill to its restart)
        self.up.set()

    def client(self, number: int) -> None:
        rng = random.Random(self.args.seed * 100 + number)
        mine: list[int] = []
        rpc = OneClient(self.oned.endpoint, SESSION, timeout=20)
        while True:
            with self.count:
                if self.done_ops >= self.budget:
                    return
                self.done_ops += 1
            with self.gate.passing():
                try:
                    self.one_op(rpc, rng, mine)
                except Exception as exc:  # a broken client is reported, not hidden
                    self.errors.append(f"client {number}: {exc!r}")
                    return

    def one_op(self, rpc: OneClient, rng: random.Random, mine: list[int]) -> None:
        if not mine or rng.random() < 0.3:
            vid = self.call(rpc, None, "allocate", "one.vm.allocate", VM)
            if vid is not None:
                mine.append(vid)
            return
        vid = rng.choice(mine)
        try:
            seen = seen_of(rpc.call("one.vm.info", vid))
        except OneCallError:
            self.refused()
            return
        except OneClientError:
            rpc.close()
            self.up.wait(120)
            return
        if seen.state == VmState.DONE:
            mine.remove(vid)
            return
        action = self.choose(seen, rng)
        if action == "deploy":
            self.call(rpc, vid, "deploy", "one.vm.deploy", vid, rng.randrange(HOSTS))
        else:
            self.call(rpc, vid, action, "one.vm.action", action, vid)

    def choose(self, seen: Seen, rng: random.Random) -> str:
        if rng.random() < 0.1:
            return "finalize"
        if seen.state == VmState.PENDING:
            if self.args.scheduler:
                return rng.choice(["hold", "finalize"]) if rng.random() < 0.3 else "hold"
            return rng.choice(["deploy", "deploy", "hold"])
        if seen.state == VmState.HOLD:
            return "release"
        if seen.state == VmState.ACTIVE and seen.lcm == LcmState.RUNNING:
            return "shutdown"
        return "finalize"

    def refused(self) -> None:
        """After a refused call: with --restart-db the database may be down, and refusals in a
        tight loop would burn the storm's operations in the seconds it takes to come back."""
        if self.args.restart_db:
            time.sleep(0.2)

    def call(self, rpc: OneClient, vid: int | None, action: str, method: str, *params):
        """Make the call; the ledger records it only when oned acknowledged it. When oned is
        unreachable the outcome is unknown: the next check takes the VM as it finds it."""
        high = self.ledger.high
        try:
            value = rpc.call(method, *params)
        except OneCallError:
            self.refused()
            return None  # refused: nothing changed
        except OneClientError:
            rpc.close()
            if vid is not None:
                self.ledger.acked(vid, "unknown")
            self.up.wait(120)
            return None
        if vid is None:
            self.ledger.allocated(int(value), high)
            return int(value)
        self.ledger.acked(vid, action)
        return value


def check(storm: Storm, admin: OneClient) -> dict[str, list[str]]:
    """Lost writes and lease faults, with the clients paused; resolves ``unknown`` VMs."""
    found: dict[str, list[str]] = {"lost": [], "leaked": [], "doubled": []}
    seen: dict[int, Seen] = {}
    for vid, last in sorted(storm.ledger.last.items()):
        try:
            seen[vid] = seen_of(admin.call("one.vm.info", vid))
        except OneCallError as exc:
            found["lost"].append(f"VM {vid} (last {last}): {exc}")
            continue
        allowed = EXPECT[last]
        if last in ("allocate", "release", "hold") and storm.args.scheduler:
            # mm_sched deploys what it read as PENDING; oned deploys from HOLD too (as modern
            # OpenNebula), so a hold acknowledged after mm_sched's read may be overtaken.
            allowed = allowed | _ACTIVE_OR
        if seen[vid].state not in allowed:
            found["lost"].append(f"VM {vid}: {seen[vid].state.name} after an acknowledged {last}")
        if last == "unknown":
            storm.ledger.acked(vid, _resolved(seen[vid]))
    net = ET.fromstring(admin.call("one.vn.info", 0))
    holders: dict[str, list[int]] = {}
    for lease in net.iterfind("LEASES/LEASE"):
        if lease.findtext("USED") == "1":
            holders.setdefault(lease.findtext("IP") or "", []).append(int(lease.findtext("VID")))
    for ip, vids in holders.items():
        if len(vids) > 1:
            found["doubled"].append(f"{ip} leased to VMs {vids}")
        for vid in vids:
            if vid in seen and seen[vid].state == VmState.DONE:
                found["leaked"].append(f"{ip} still leased to VM {vid}, which is DONE")
    for vid, vm in seen.items():
        # Not a fault if the VM reached DONE (leases released) after it was first read.
        if (
            vm.state != VmState.DONE
            and vid not in holders.get(vm.ip, [])
            and seen_of(admin.call("one.vm.info", vid)).state != VmState.DONE
        ):
            found["leaked"].append(f"VM {vid} ({vm.state.name}) lost the lease of {vm.ip}")
    return found


def _resolved(seen: Seen) -> str:
    """The action whose expectation fits what an uncertain VM turned out to be."""
    return {
        VmState.PENDING: "allocate",
        VmState.HOLD: "hold",
        VmState.DONE: "finalize",
    }.get(seen.state, "active")


def stuck(storm: Storm, admin: OneClient) -> Counter[str]:
    """VMs in a transient state, and acknowledged shutdowns and deletes not yet DONE."""
    by_state: Counter[str] = Counter()
    for vid, last in storm.ledger.last.items():
        vm = seen_of(admin.call("one.vm.info", vid))
        if vm.state == VmState.ACTIVE and vm.lcm not in STABLE_LCM:
            by_state[vm.lcm.name] += 1
        elif last in FINAL and vm.state != VmState.DONE and vm.state != VmState.ACTIVE:
            by_state[f"{last} pending in {vm.state.name}"] += 1
    return by_state


class Cloud:
    """oned (and mm_sched) in a temporary ONE_LOCATION; restarted after each kill."""

    def __init__(self, location: Path, args: argparse.Namespace, db: str | None):
        self.oned = OnedProcess(location).set(HOST_MONITORING_INTERVAL=5)
        if db:
            self.oned.set(DB=db)
        (location / "etc" / "sched.conf").write_text(SCHED_CONF)
        self.args = args
        self.sched: subprocess.Popen | None = None

    def start(self) -> None:
        self.oned.start(timeout=60)
        if self.args.scheduler and (self.sched is None or self.sched.poll() is not None):
            self.start_sched()

    def start_sched(self) -> None:
        log = open(self.oned.location / "var" / "sched.out", "a")  # noqa: SIM115
        self.sched = subprocess.Popen(
            [str(BIN / "mm_sched"), "-p", str(self.oned.port)], env=self.oned.env,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill_oned(self) -> None:
        self.oned.stop(signal.SIGKILL)

    def kill_something(self, rng: random.Random) -> str:
        """SIGKILL a random driver process or mm_sched (restarted at once)."""
        pids = self.oned.children("one_")
        if self.sched is not None and (not pids or rng.random() < 0.3):
            self.sched.kill()
            self.sched.wait()
            self.start_sched()
            return "mm_sched"
        if not pids:
            return "nothing"
        pid = rng.choice(pids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return f"driver {pid}"

    def stop(self) -> None:
        if self.sched is not None:
            self.sched.kill()
            self.sched.wait()
        self.oned.stop()


def setup(admin: OneClient) -> None:
    for n in range(HOSTS):
        admin.call("one.host.allocate", f"chaos{n:02d}", "im_dummy", "vmm_dummy", "tm_dummy")
    admin.call("one.vn.allocate", NET)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        hosts = ET.fromstring(admin.call("one.hostpool.info"))
        if all(h.findtext("STATE") == "2" for h in hosts.iterfind("HOST")):
            return
        time.sleep(0.2)
    raise RuntimeError("the dummy hosts were not monitored within 30 s")


@dataclass
class Result:
    lost: list[str]
    reused: list[str]
    leaked: list[str]
    doubled: list[str]
    stuck: Counter[str]
    errors: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        faults = self.lost or self.reused or self.leaked or self.doubled or self.errors
        return not faults and not self.stuck


def run(args: argparse.Namespace, location: Path, db: str | None = None) -> Result:
    """The whole storm in ``location``; ``db`` is oned.conf's DB value (None: SQLite)."""
    rng = random.Random(args.seed)
    cloud = Cloud(location, args, db)
    started = time.monotonic()
    cloud.start()
    faults: dict[str, list[str]] = {"lost": [], "leaked": [], "doubled": []}
    storm = Storm(cloud.oned, args)
    try:
        admin = OneClient(cloud.oned.endpoint, SESSION, timeout=30)
        setup(admin)
        threads = [threading.Thread(target=storm.client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        restart_db_at = {args.kills * (n + 1) // (args.restart_db + 1)
                         for n in range(args.restart_db)}  # fmt: skip
        extra = 0  # operations made while PostgreSQL restarted
        for kill in range(args.kills):
            target = extra + args.ops * (kill + 1) / (args.kills + 1) + rng.uniform(-2, 2)
            if kill in restart_db_at:  # halfway between two kills of oned
                halfway = target - args.ops / (args.kills + 1) / 2
                while storm.done_ops < halfway and any(t.is_alive() for t in threads):
                    time.sleep(0.01)
                # The storm goes on during the restart, unbounded: its operations come on
                # top, so that the kills after it still fall amid operations.
                before, storm.budget = storm.done_ops, sys.maxsize
                database_restarted(cloud, storm, admin)
                audit(storm, admin, faults, "PostgreSQL restart")
                extra += storm.done_ops - before
                storm.budget = args.ops + extra
                target += storm.done_ops - before
            while storm.done_ops < target and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            if args.kill_drivers and rng.random() < 0.5:
                print(f"kill -9 {cloud.kill_something(rng)}", flush=True)
            storm.up.clear()
            cloud.kill_oned()
            cloud.start()
            storm.up.set()
            audit(storm, admin, faults, f"kill {kill + 1}/{args.kills}")
        for thread in threads:
            thread.join(timeout=600)
        for name, items in check(storm, admin).items():
            faults[name] += [item for item in items if item not in faults[name]]
        left = settle(storm, admin, args.settle)
    finally:
        storm.gate.open()
        cloud.stop()
    took = time.monotonic() - started
    return Result(faults["lost"], storm.ledger.reused, faults["leaked"], faults["doubled"],
                  left, storm.errors, took)  # fmt: skip


def audit(storm: Storm, admin: OneClient, faults: dict[str, list[str]], label: str) -> None:
    """With the clients paused, check the ledger and print the new faults."""
    storm.gate.close()
    admin.close()
    try:
        for name, items in check(storm, admin).items():
            new = [item for item in items if item not in faults[name]]
            faults[name] += new
            for item in new:
                print(f"  {name}: {item}", flush=True)
    finally:
        storm.gate.open()
    print(f"{label}: {storm.done_ops} ops, {sum(map(len, faults.values()))} faults", flush=True)


def restart_postgresql(action: str = "restart") -> None:
    """pg_ctlcluster on the local test server (the only cluster under /etc/postgresql)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, timeout=120, capture_output=True)  # fmt: skip


def postgresql_running() -> bool:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    status = subprocess.run(["pg_ctlcluster", version, "main", "status"], capture_output=True)
    return status.returncode == 0


def database_restarted(cloud: Cloud, storm: Storm, admin: OneClient, within: float = 60) -> None:
    """Restart PostgreSQL under a running storm, then wait for oned to write again (it may
    refuse calls meanwhile); oned dying or not recovering is an error, with its log's tail."""
    offset = len(cloud.oned.log)
    started = time.monotonic()
    restart_postgresql()
    print(f"PostgreSQL restarted in {time.monotonic() - started:.1f} s", flush=True)
    deadline = time.monotonic() + within
    last = ""
    while time.monotonic() < deadline and cloud.oned.proc and cloud.oned.proc.poll() is None:
        try:  # a write: a held VM without NIC (no lease), deleted again
            vid = admin.call("one.vm.allocate", "NAME = probe\nMEMORY = 1", True)
            admin.call("one.vm.action", "finalize", vid)
            errors = [line for line in cloud.oned.log[offset:].splitlines() if "[E]" in line]
            print(f"oned writes again {time.monotonic() - started:.1f} s after the restart; "
                  f"{len(errors)} errors in oned.log meanwhile", flush=True)  # fmt: skip
            lines = cloud.oned.log[offset:].splitlines()
            for line in errors[:3]:
                print(f"    {line}", flush=True)
            unhandled = [n for n, line in enumerate(lines) if "Unhandled error" in line]
            for line in lines[unhandled[0] : unhandled[0] + 25] if unhandled else []:
                print(f"    {line}", flush=True)
            return
        except OneClientError as exc:
            last = exc.message
            admin.close()
            time.sleep(0.2)
    state = "died" if cloud.oned.proc and cloud.oned.proc.poll() is not None else "hangs"
    tail = "\n    ".join(cloud.oned.log[offset:].splitlines()[-15:])
    storm.errors.append(f"oned {state} after PostgreSQL restarted (last: {last})\n    {tail}")
    print(f"  errors: {storm.errors[-1]}", flush=True)
    if state == "died":
        cloud.start()
        storm.up.set()


def settle(storm: Storm, admin: OneClient, seconds: float) -> Counter[str]:
    """Wait up to ``seconds`` for no VM to be stuck; what is left, by state."""
    deadline = time.monotonic() + seconds
    while True:
        left = stuck(storm, admin)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.5)


@contextlib.contextmanager
def postgresql() -> Iterator[str]:
    """A scratch database on the test server, as oned.conf's DB value."""
    from tests.store.targets import scratch_database

    databases = scratch_database("postgresql", "onecloud_chaos")
    db = next(databases)
    try:
        yield (
            f'[ BACKEND = "postgresql", SERVER = "{db.server}", PORT = 5432, '
            f'USER = "{db.user}", DB_NAME = "{db.db_name}" ]'
        )
    finally:
        try:
            databases.close()
        except OperationalError:  # its pooled connection died with a restart of the server
            from oned.store.engine import create_engine

            admin = replace(db, db_name="")
            engine = create_engine(admin, "").execution_options(isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {db.db_name} WITH (FORCE)"))
            engine.dispose()


def report(result: Result) -> None:
    print(f"{len(result.lost)} lost, {len(result.reused)} ids reused, {len(result.leaked)} "
          f"leases leaked, {len(result.doubled)} doubled, {sum(result.stuck.values())} stuck "
          f"in {result.seconds:.0f} s")  # fmt: skip
    for name in ("lost", "reused", "leaked", "doubled", "errors"):
        for line in getattr(result, name)[:20]:
            print(f"  {name}: {line}")
    for state, count in result.stuck.most_common():
        print(f"  stuck: {count} in {state}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--scheduler", action="store_true", help="mm_sched deploys the VMs")
    parser.add_argument("--kill-drivers", action="store_true", help="also kill drivers, mm_sched")
    parser.add_argument("--settle", type=float, default=60, help="seconds to wait for 0 stuck")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--restart-db", type=int, nargs="?", const=2, default=0, metavar="N",
                        help="restart PostgreSQL N times (default 2) mid-storm")  # fmt: skip
    args = parser.parse_args(argv)
    if args.restart_db and args.backend != "postgresql":
        parser.error("--restart-db needs --backend postgresql")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    database = postgresql() if args.backend == "postgresql" else contextlib.nullcontext()
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp, database as db:
            result = run(args, Path(tmp) / "one", db)
    finally:
        if args.restart_db and not postgresql_running():
            restart_postgresql("start")  # whatever happened, the server runs again
    report(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
