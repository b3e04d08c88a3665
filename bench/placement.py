"""The scheduler's placement computation alone (not collected by pytest).

    .venv/bin/python bench/placement.py [--vms 10000] [--hosts 1000] [--max-host 20]

Builds a HOST_POOL and a VM_POOL document as oned answers them (1,000 hosts of three
hypervisors in three zones; 10,000 pending VMs from 11 templates with mixed REQUIREMENTS and
RANK, one of them unsatisfiable), parses them with ``scheduler.pools`` and times
``scheduler.placement.place`` in one round with MAX_DISPATCH = all. Then checks that no host
is over capacity and that every placement honours its REQUIREMENTS, and prints the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oned.expr import parse_requirements
from scheduler.placement import Limits, Plan, allocatable, demand_of, place
from scheduler.pools import HostView, PendingVm, parse_hosts, parse_pending

NOW = 1_800_000_000

# name, CPU, MEMORY (MB), REQUIREMENTS, RANK, share of the VMs
TEMPLATES = [
    ("tiny", 0.1, 64, "", "", 15),
    ("web", 0.5, 512, 'HYPERVISOR = "kvm"', "- RUNNING_VMS", 15),
    ("db", 2, 4096, 'TOTALMEMORY > 8000000 & ARCH = "x86_64"', "FREEMEMORY", 5),
    ("batch", 1, 1024, 'ZONE = "a" | ZONE = "b"', "FREECPU", 12),
    ("xen", 1, 768, "HYPERVISOR = xen", "RUNNING_VMS", 10),
    ("named", 0.2, 256, 'HOSTNAME = "host0*"', "", 8),
    ("cache", 0.5, 2048, '! (ZONE = "c")', "FREE_MEM / 1024 - RUNNING_VMS * 100", 8),
    ("gpu", 1, 1024, 'GPU = "yes"', "- (RUNNING_VMS * 50 + FREE_CPU)", 7),
    ("old", 0.5, 512, 'ARCH = "i686" & CPUSPEED > 2000', "CPUSPEED", 5),
    ("mixed", 0.3, 384, 'TOTALCPU > 400 & HYPERVISOR != "dummy"', "FREECPU - USEDCPU", 14),
    ("nowhere", 1, 512, 'HOSTNAME = "nosuchhost"', "", 1),
]


def host_size(hid: int) -> tuple[int, int]:
    """CPU (percent) and memory (KB): every fourth host is twice as big."""
    return (800, 16777216) if hid % 4 else (1600, 33554432)


def host_template(hid: int) -> dict[str, str]:
    """The monitored attributes: three hypervisors, three zones, some i686, some GPUs."""
    cpu, mem = host_size(hid)
    return {
        "HOSTNAME": f"host{hid:04d}",
        "HYPERVISOR": ("kvm", "xen", "dummy")[hid % 3],
        "ARCH": "i686" if hid % 10 == 7 else "x86_64",
        "ZONE": "abc"[hid % 3 - 1],
        "CPUSPEED": str(1800 + 100 * (hid % 8)),
        "TOTALCPU": str(cpu),
        "FREECPU": f"{cpu - hid % 50}.0",
        "USEDCPU": f"{hid % 50}.0",
        "TOTALMEMORY": str(mem),
        "FREEMEMORY": str(mem - 100000),
        "USEDMEMORY": "100000",
        **({"GPU": "yes"} if hid % 5 == 0 else {}),
    }


def host_xml(hid: int) -> str:
    cpu, mem = host_size(hid)
    template = host_template(hid)
    share = {
        "MAX_CPU": cpu, "MAX_MEM": mem, "CPU_USAGE": 0, "MEM_USAGE": 0,
        "FREE_CPU": cpu - hid % 50, "FREE_MEM": mem - 100000, "RUNNING_VMS": 0,
    }  # fmt: skip
    return (
        f"<HOST><ID>{hid}</ID><NAME>host{hid:04d}</NAME><STATE>2</STATE>"
        f"<LAST_MON_TIME>{NOW - 30}</LAST_MON_TIME><HOST_SHARE>"
        + "".join(f"<{k}>{v}</{k}>" for k, v in share.items())
        + "</HOST_SHARE><TEMPLATE>"
        + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in template.items())
        + "</TEMPLATE></HOST>"
    )


def vm_xml(vid: int, template: tuple) -> str:
    name, cpu, mem, req, rank, _ = template
    return (
        f"<VM><ID>{vid}</ID><UID>0</UID><NAME>{name}-{vid}</NAME><STATE>1</STATE><TEMPLATE>"
        f"<CPU><![CDATA[{cpu}]]></CPU><MEMORY><![CDATA[{mem}]]></MEMORY>"
        f"<REQUIREMENTS><![CDATA[{req}]]></REQUIREMENTS><RANK><![CDATA[{rank}]]></RANK>"
        "</TEMPLATE></VM>"
    )


def pools(n_vms: int, n_hosts: int) -> tuple[str, str]:
    weights = [t[5] for t in TEMPLATES]
    cycle = [t for t, w in zip(TEMPLATES, weights, strict=True) for _ in range(w)]
    hosts = "<HOST_POOL>" + "".join(host_xml(h) for h in range(n_hosts)) + "</HOST_POOL>"
    vms = "".join(vm_xml(v, cycle[(v * 7) % len(cycle)]) for v in range(n_vms))
    return hosts, f"<VM_POOL>{vms}</VM_POOL>"


def check(plan: Plan, vms: list[PendingVm], hosts: list[HostView], limits: Limits) -> list[str]:
    """Every violation: a host over capacity or MAX_HOST, a placement against REQUIREMENTS."""
    by_vm, by_host = {v.id: v for v in vms}, {h.id: h for h in hosts}
    problems, per_host = [], Counter(p.host for p in plan.placements)
    for p in plan.placements:
        if not parse_requirements(by_vm[p.vm].requirements)(by_host[p.host].attrs):
            problems.append(f"VM {p.vm} on {p.host_name} against its REQUIREMENTS")
    for hid, count in per_host.items():
        h = by_host[hid]
        given = [demand_of(by_vm[p.vm]) for p in plan.placements if p.host == hid]
        room_cpu, room_mem = allocatable(h, limits)
        if sum(d.mem for d in given) > room_mem or sum(d.cpu for d in given) > room_cpu:
            problems.append(f"{h.name} over capacity")
        if count > limits.max_host:
            problems.append(f"{h.name} got {count} VMs > MAX_HOST")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--max-host", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    hosts_xml, vms_xml = pools(args.vms, args.hosts)
    started = time.perf_counter()
    hosts, vms = parse_hosts(hosts_xml), parse_pending(vms_xml)
    parsed = time.perf_counter() - started
    limits = Limits(max_dispatch=len(vms), max_host=args.max_host, hypervisor_mem=0.1)
    times, plan = [], Plan()
    for _ in range(args.runs):
        started = time.perf_counter()
        plan = place(vms, hosts, limits, NOW)
        times.append(time.perf_counter() - started)
    report(args, vms, hosts, plan, limits, times, parsed, len(vms_xml) + len(hosts_xml))
    problems = check(plan, vms, hosts, limits)
    print(f"checks: {'OK' if not problems else f'{len(problems)} problems'}")
    for problem in problems[:10]:
        print("  ", problem)
    return 1 if problems else 0


def report(args, vms, hosts, plan, limits, times, parsed, size) -> None:
    per_host = Counter(p.host for p in plan.placements)
    templates = len({(v.requirements, v.rank, v.cpu, v.memory) for v in vms})
    print(f"{len(vms)} pending VMs from {templates} templates, {len(hosts)} hosts, MAX_HOST "
          f"{limits.max_host}, HYPERVISOR_MEM {limits.hypervisor_mem}")  # fmt: skip
    print(f"parse pools ({size / 1e6:.1f} MB of XML): {parsed * 1000:.0f} ms")
    print(f"place(): median {statistics.median(times):.3f} s, best {min(times):.3f} s "
          f"over {len(times)} runs")  # fmt: skip
    busiest = max(per_host.values(), default=0)
    print(f"placed {len(plan.placements)}, waiting {len(plan.reasons)}, "
          f"hosts used {len(per_host)}, VMs per host max {busiest}")  # fmt: skip
    for reason, count in Counter(plan.reasons.values()).most_common(3):
        print(f"  {count} x {reason[:110]}")


if __name__ == "__main__":
    sys.exit(main())
