"""Dashboard benchmark (issue 17): 10,000 VMs, the VM page in headless Chromium, oned's CPU.

A real oned (dummy drivers, 4 monitored hosts, 10,000 VMs allocated with system.multicall, 1,000
of them deployed), a real one-dashboard and Debian's Chromium driven by Selenium. Measures:

* the VM page's ready time: navigation start -> the performance marks `vms-ready` (the first
  rows rendered from the full list) and `vms-painted` (the frame after), over fresh page loads;
  and how many rows the DOM holds (virtual scrolling);
* scroll frame timing: the list scrolled by 400 px per animation frame for 300 frames (15 s
  at most), and the script's own share (the list's render times);
* oned's CPU time (utime + stime from /proc/<pid>/stat) over `--seconds` each: idle without
  a page, idle with one open VM page, and the same two with state changes going on
  (suspend/resume of running VMs at `--rate` actions/s); the dashboard's own CPU beside it.

    .venv/bin/python bench/dashboard.py [--vms 10000] [--seconds 60] [--rate 5] [--loads 5]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fresh_fs
from tests.functional.browser_setup import start_browser
from tests.functional.dashboard_setup import DashboardProcess
from tests.functional.oned_process import OnedProcess

SESSION = "oneadmin:onecloud"
TEMPLATE = 'NAME = "bench-{n}"\nCPU = 0.01\nMEMORY = 32\n'
HOSTS = 4
BATCH = 500
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def multicall(proxy: xmlrpc.client.ServerProxy, calls: list[tuple[str, tuple]]) -> list:
    replies = []
    for start in range(0, len(calls), BATCH):
        batch = xmlrpc.client.MultiCall(proxy)
        for name, args in calls[start : start + BATCH]:
            getattr(batch, name)(SESSION, *args)
        replies += list(batch())
    if bad := [r for r in replies if not r[0]]:
        raise SystemExit(f"{len(bad)} calls failed, first: {bad[0]}")
    return replies


def populate(oned: OnedProcess, vms: int, running: int) -> list[int]:
    """Hosts, `vms` VMs, `running` of them deployed and RUNNING; their ids."""
    proxy = xmlrpc.client.ServerProxy(oned.endpoint)
    hosts = [
        r[1]
        for r in multicall(
            proxy,
            [
                ("one.host.allocate", (f"host{i:02}", "im_dummy", "vmm_dummy", "tm_dummy"))
                for i in range(HOSTS)
            ],
        )
    ]
    start = time.perf_counter()
    ids = [
        r[1]
        for r in multicall(
            proxy, [("one.vm.allocate", (TEMPLATE.format(n=n),)) for n in range(vms)]
        )
    ]
    print(f"{vms} VMs allocated in {time.perf_counter() - start:.1f} s", flush=True)
    multicall(
        proxy, [("one.vm.deploy", (vid, hosts[i % HOSTS])) for i, vid in enumerate(ids[:running])]
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listing = proxy.one.vmpool.info(SESSION, -2, -1, -1, -1)[1]
        if listing.count("<LCM_STATE>3</LCM_STATE>") >= running:
            return ids[:running]
        time.sleep(1)
    raise SystemExit("the deployed VMs did not reach RUNNING within 300 s")


class StateChanges(threading.Thread):
    """suspend/resume of the running VMs, `rate` actions a second, until stopped."""

    def __init__(self, endpoint: str, vms: list[int], rate: float) -> None:
        super().__init__(daemon=True)
        self.proxy = xmlrpc.client.ServerProxy(endpoint)
        self.vms, self.rate = vms, rate
        self.done = threading.Event()
        self.actions = 0

    def run(self) -> None:
        suspended: set[int] = set()
        for vid in itertools.cycle(self.vms):
            if self.done.wait(1 / self.rate):
                return
            first = "resume" if vid in suspended else "suspend"
            for action in (first, "suspend" if first == "resume" else "resume"):
                if self.proxy.one.vm.action(SESSION, action, vid)[0]:
                    suspended.symmetric_difference_update({vid} if action == first else set())
                    self.actions += 1
                    break

    def stop(self) -> None:
        self.done.set()
        self.join(10)


def measure_cpu(
    label: str, seconds: float, pids: dict[str, int], changes: StateChanges | None
) -> dict:
    """CPU seconds of each pid over `seconds` of wall time (with `changes` running, if any)."""
    if changes:
        changes.start()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    load = os.getloadavg()[0]
    time.sleep(seconds)
    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    actions = 0
    if changes:
        changes.stop()
        actions = changes.actions
    row = {"label": label, "load": load, "actions": actions, **used}
    print(
        f"{label:28} oned {used['oned']:6.2f} s ({100 * used['oned'] / seconds:5.2f} % of a core)"
        f"  dashboard {used['dashboard']:6.2f} s  actions {actions}  load1 {load:.2f}",
        flush=True,
    )
    return row


def sign_in(driver, url: str) -> None:
    driver.get(url)
    until(lambda: driver.find_elements("id", "signin-user"), 20)
    driver.find_element("id", "signin-user").send_keys("oneadmin")
    driver.find_element("id", "signin-password").send_keys("onecloud\n")
    until(lambda: "oneadmin" in driver.find_element("id", "who").text, 20)
    until(lambda: driver.find_elements("id", "vm-counts"), 60)  # the overview's answer is in


def until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise SystemExit(f"not within {timeout} s")


READY = """
const ready = performance.getEntriesByName('vms-ready')[0];
const painted = performance.getEntriesByName('vms-painted')[0];
if (!ready || !painted) return null;
const api = performance.getEntriesByName(location.origin + '/api/vms')[0];
return {ready: ready.startTime, painted: painted.startTime,
        api_start: api ? api.startTime : -1, api_ms: api ? api.duration : -1,
        rows: document.querySelectorAll('.vm-row:not([hidden])').length,
        count: document.getElementById('vm-count').textContent};
"""


def page_loads(driver, url: str, loads: int, vms: int) -> list[dict]:
    """Fresh loads of the VM page: the marks (ms from navigation start) and the rows in the DOM."""
    results = []
    for n in range(loads):
        driver.get(f"{url}?load={n}#/vms")
        result = until(lambda: driver.execute_script(READY), 60)
        if result["count"] != str(vms):
            raise SystemExit(f"the page shows {result['count']} VMs, not {vms}")
        results.append(result)
        print(
            f"load {n}: ready {result['ready']:.0f} ms, painted {result['painted']:.0f} ms "
            f"(/api/vms asked at {result['api_start']:.0f} ms, took {result['api_ms']:.0f} ms),"
            f" {result['rows']} rows in the DOM",
            flush=True,
        )
    return results


SCROLL = """
const done = arguments[arguments.length - 1];
const port = document.querySelector('.vport');
const frames = [];
const start = performance.now();
let last = start;
function step() {
  const now = performance.now();
  frames.push(now - last);
  last = now;
  if (frames.length > 300 || now - start > 15000) {
    done({frames: frames.slice(1), top: port.scrollTop,
          renders: document.querySelector('.vlist').renderTimes.slice(-(frames.length - 1)),
          rows: document.querySelectorAll('.vm-row:not([hidden])').length});
    return;
  }
  port.scrollTop += 400;
  requestAnimationFrame(step);
}
requestAnimationFrame(step);
"""


def scroll(driver) -> dict:
    driver.set_script_timeout(60)
    result = driver.execute_async_script(SCROLL)
    frames = sorted(result["frames"])
    renders = sorted(result["renders"])
    figures = {
        "p50": statistics.median(frames),
        "p95": frames[int(len(frames) * 0.95)],
        "max": frames[-1],
        "frames": len(frames),
        "over 33 ms": sum(f > 33.4 for f in frames),
        "rows": result["rows"],
        "render p50": statistics.median(renders),
        "render p95": renders[int(len(renders) * 0.95)],
    }
    print(
        "scroll frames (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True
    )
    return figures


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    found = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True)
    version = re.sub(r"\s+", " ", found.stdout.strip())
    return f"{os.cpu_count()} x {cpu}; {version}; load1 {os.getloadavg()[0]:.2f}"


def report(rows: list[dict], loads: list[dict], seconds: float) -> None:
    ready = statistics.median(r["ready"] for r in loads)
    painted = statistics.median(r["painted"] for r in loads)
    print(f"VM page: ready median {ready:.0f} ms, painted median {painted:.0f} ms")
    for idle, page in ((rows[0], rows[2]), (rows[1], rows[3])):
        added = page["oned"] - idle["oned"]
        share = 100 * added / idle["oned"] if idle["oned"] else float("nan")
        print(
            f"added by the page ({page['label']}): oned {added:+.2f} s "
            f"({share:+.1f} % of oned's CPU without it, {100 * added / seconds:+.2f} % of a core)"
        )


def browse(args: argparse.Namespace, location: Path, oned: OnedProcess, dashboard, running):
    """The page phases: loads, scroll, then oned's CPU with the page open."""
    pids = {"oned": oned.proc.pid, "dashboard": dashboard.proc.pid}
    changes = lambda: StateChanges(oned.endpoint, running, args.rate)  # noqa: E731
    rows = [measure_cpu("idle, no page", args.seconds, pids, None)]
    rows.append(measure_cpu("changes, no page", args.seconds, pids, changes()))
    driver = start_browser(Path(tempfile.mkdtemp(prefix="chromium-", dir=location)))
    try:
        sign_in(driver, dashboard.url)
        loads = page_loads(driver, dashboard.url, args.loads, args.vms)
        scroll(driver)
        driver.execute_script("document.querySelector('.vport').scrollTop = 0")
        rows.append(measure_cpu("idle, one VM page", args.seconds, pids, None))
        rows.append(measure_cpu("changes, one VM page", args.seconds, pids, changes()))
        count = driver.execute_script("return document.getElementById('vm-count').textContent")
        print(f"the page still lists {count} VMs")
    finally:
        driver.quit()
    report(rows, loads, args.seconds)


def run(args: argparse.Namespace, location: Path) -> None:
    oned = OnedProcess(location / "one").start(60)
    dashboard = None
    try:
        running = populate(oned, args.vms, args.running)
        dashboard = DashboardProcess(oned).start()
        browse(args, location, oned, dashboard, running)
    finally:
        if dashboard:
            dashboard.stop()
        oned.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=5, help="state-changing actions per second")
    parser.add_argument("--loads", type=int, default=5, help="fresh loads of the VM page")
    fresh_fs.add_option(parser)
    args = parser.parse_args()
    print(machine(), flush=True)
    with fresh_fs.folder(args.fs) as (path, where):
        print(f"ONE_LOCATION on {where}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            run(args, Path(path))


if __name__ == "__main__":
    main()
