"""Placement: which pending VM goes to which host in one scheduling round (reference §7.2).

Pure: hosts, VMs, limits and the time in; placements and reasons out. The filters are small
functions that return ``None`` when a host passes and the reason ("host02: not enough memory
(512 < 1024)") when it does not. A round works on its own copy of every host's load, so what it
gives away is counted at once: it never over-commits a host, whatever the order of the VMs.

A host's room is what oned has allocated there, not what its monitoring sees: MAX_CPU less
CPU_USAGE (the CPU of the VMs oned placed on it) less RESERVED_CPU, and MAX_MEM less MEM_USAGE
less RESERVED_MEM, as modern OpenNebula's HOST_SHARE. NOTE: 1.4 and 2.0 also required the
monitored FREE_CPU and FREE_MEM, so a host loaded by other processes never got a VM; onecloud
leaves the monitored figures to REQUIREMENTS and RANK (``FREECPU > 100``, ``RANK = FREECPU``).
RESERVED_CPU (percent, 100 = one CPU) and RESERVED_MEM (KB) are host template attributes set
with ``onehost update``: a positive value keeps that much out of the VMs' reach, a negative one
over-commits. A host without RESERVED_MEM keeps sched.conf's HYPERVISOR_MEM share of MAX_MEM.

For each VM, in the order given, the hosts that pass the filters are tried by RANK, highest
first; ties go to the host with the fewest running VMs (this round's included), then the lowest
id, so equal hosts are filled in turn. REQUIREMENTS and RANK are evaluated against the host as
this round has left it (RUNNING_VMS, CPU_USAGE, MEM_USAGE, FREE_CPU, FREE_MEM, FREECPU and
FREEMEMORY include what the round gave away).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from oned.expr import (
    ExpressionError,
    Rank,
    Requirement,
    number_of,
    parse_rank,
    parse_requirements,
)
from oned.states import HostState
from scheduler import ec2
from scheduler.pools import HostView, PendingVm

MOST_REASONS = 3  # hosts named in one VM's reason


@dataclass(frozen=True)
class Limits:
    """The knobs of a round (sched.conf): per-round and per-host dispatch caps, the fraction of
    host memory kept for the hypervisor, and the age (s) after which a host's monitoring is too
    old to trust (0: any age)."""

    max_dispatch: int = 30
    max_host: int = 1
    hypervisor_mem: float = 0.1
    monitor_age: float = 1800


@dataclass(frozen=True)
class Placement:
    vm: int
    host: int
    host_name: str


@dataclass(frozen=True)
class Plan:
    """The outcome of a round.

    ``reasons``: why each VM that was tried got no host. ``skipped_hosts``: hosts no VM could
    use (disabled, in error, not monitored). ``deferred``: VMs not tried because MAX_DISPATCH
    was reached; they wait for the next round and have no reason.
    """

    placements: tuple[Placement, ...] = ()
    reasons: Mapping[int, str] = field(default_factory=dict)
    skipped_hosts: Mapping[int, str] = field(default_factory=dict)
    deferred: tuple[int, ...] = ()


@dataclass(frozen=True)
class Demand:
    """What a VM takes from a host: CPU in percent (100 = one CPU), memory in KB."""

    cpu: int
    mem: int


def demand_of(vm: PendingVm) -> Demand:
    """NOTE: as OpenNebula, ``int(CPU * 100)`` and ``MEMORY * 1024``, both 0 if either is 0."""
    cpu, mem = int(vm.cpu * 100), vm.memory * 1024
    return Demand(cpu, mem) if cpu > 0 and mem > 0 else Demand(0, 0)


# --- filters: None when the host passes, else the reason -------------------------------------


def host_state_reason(host: HostView, now: float, limits: Limits) -> str | None:
    """Only enabled hosts (INIT, MONITORING, MONITORED) that were monitored recently."""
    if host.state == HostState.DISABLED:
        return "disabled"
    if host.state == HostState.ERROR:
        return "in error"
    if host.state > HostState.ERROR:
        return f"in state {host.state}"
    if host.last_mon_time <= 0:
        return "not monitored yet"
    age = int(now - host.last_mon_time)
    if limits.monitor_age and age > limits.monitor_age:
        return f"not monitored for {age} s"
    return None


def free_cpu_of(host: HostView) -> int:
    """The monitored free CPU 1.4 and 2.0 placed by (placement now uses ``allocatable``).

    NOTE: OpenNebula 2.0 rounds FREE_CPU up to a multiple of 100 when it is >= 90% of MAX_CPU
    (an idle host's noise must not refuse a whole CPU)."""
    if host.max_cpu > 0 and host.free_cpu >= 0.9 * host.max_cpu:
        return -(-host.free_cpu // 100) * 100
    return host.free_cpu


def allocatable(host: HostView, limits: Limits) -> tuple[int, int]:
    """CPU (percent) and memory (KB) oned has not allocated on ``host``, less its reservations.

    NOTE: placement by allocated capacity (modern OpenNebula's HOST_SHARE), not by the monitored
    FREE_CPU/FREE_MEM of 1.4 and 2.0: see the module docstring."""
    cpu = host.max_cpu - host.reserved_cpu - host.cpu_usage
    reserved_mem = host.reserved_mem
    if reserved_mem is None:
        reserved_mem = host.max_mem - int(host.max_mem * (1 - limits.hypervisor_mem))
    return cpu, host.max_mem - reserved_mem - host.mem_usage


def capacity_reason(need: Demand, room_cpu: int, room_mem: int) -> str | None:
    """Memory in MB and CPU in CPUs, as the VM template writes them."""
    if need.mem > room_mem:
        return f"not enough memory ({max(room_mem, 0) // 1024} < {need.mem // 1024})"
    if need.cpu > room_cpu:
        return f"not enough CPU ({max(room_cpu, 0) / 100:g} < {need.cpu / 100:g})"
    return None


def max_host_reason(given: int, limits: Limits) -> str | None:
    if given >= limits.max_host:
        return f"got {given} VM(s) this round (MAX_HOST = {limits.max_host})"
    return None


# --- a host's load during a round ------------------------------------------------------------


class _Load:
    """A host as the round leaves it; ``version`` changes whenever the round gives it a VM."""

    def __init__(self, host: HostView, limits: Limits, active: Counter[str] | None = None):
        self.host = host
        self.active = active  # EC2 instances oned has here by type (None: not counted)
        self.attrs = dict(host.attrs)
        self.cpu_room, self.mem_room = allocatable(host, limits)
        self.running = host.running_vms
        self.given = 0
        self.instances: Counter[str] = Counter()  # EC2 instances of each type given
        self.version = 0
        self._base = {name: number_of(host.attrs.get(name)) for name in _DYNAMIC}

    def take(self, need: Demand, instance_type: str = "") -> None:
        """Give ``need`` to this host: its room, counters and dynamic attributes follow."""
        self.instances[instance_type] += 1
        self.cpu_room -= need.cpu
        self.mem_room -= need.mem
        self.running += 1
        self.given += 1
        self.version += 1
        for name, (cpu, mem, count) in _DYNAMIC.items():
            total = cpu * need.cpu + mem * need.mem + count
            self._base[name] += total
            self.attrs[name] = self._base[name]


# How one VM changes the attributes REQUIREMENTS and RANK read: (per CPU, per KB, per VM).
_DYNAMIC = {
    "RUNNING_VMS": (0, 0, 1),
    "CPU_USAGE": (1, 0, 0),
    "MEM_USAGE": (0, 1, 0),
    "FREE_CPU": (-1, 0, 0),
    "FREE_MEM": (0, -1, 0),
    "FREECPU": (-1, 0, 0),
    "FREEMEMORY": (0, -1, 0),
}


# --- VMs that share requirements, rank and demand share their candidate hosts ----------------


class _Group:
    """The candidate hosts of VMs with the same REQUIREMENTS, RANK and demand, best first.

    Hosts leave the heap for good when they fail: capacity and MAX_HOST only shrink within a
    round. A heap entry made for an older version of its host is re-examined when reached.
    """

    def __init__(
        self,
        requirement: Requirement,
        rank: Rank,
        need: Demand,
        limits: Limits,
        sections: tuple[ec2.Section, ...] = (),
    ):
        self.requirement, self.rank, self.need, self.limits = requirement, rank, need, limits
        self.sections = sections
        self.heap: list[tuple[float, int, int, int]] = []
        self.unfit: dict[int, tuple[str, str]] = {}  # host id -> (name, why), REQUIREMENTS ok
        self.unmatched: set[int] = set()  # host ids that fail REQUIREMENTS
        self.failure: str | None = None  # the reason, once no host is left

    def consider(self, load: _Load) -> None:
        hid = load.host.id
        if not self.requirement.evaluate(load.attrs):
            self.unmatched.add(hid)
            return
        reason = (
            ec2.reason(load.host.name, load.attrs, load.instances, self.sections, load.active)
            or max_host_reason(load.given, self.limits)
            or capacity_reason(self.need, load.cpu_room, load.mem_room)
        )
        if reason:
            self.unfit[hid] = (load.host.name, reason)
            return
        entry = (-self.rank.evaluate(load.attrs), load.running, hid, load.version)
        heapq.heappush(self.heap, entry)

    def failed(self, skipped: Mapping[int, str]) -> str:
        """Why no host is left, worked out once: every later VM of the group fails the same."""
        if self.failure is None:
            self.failure = _group_reason(self, skipped)
        return self.failure

    def pick(self, loads: Mapping[int, _Load]) -> _Load | None:
        while self.heap:
            load = loads[self.heap[0][2]]
            if load.version == self.heap[0][3]:
                return load
            heapq.heappop(self.heap)
            self.consider(load)
        return None


def _group_reason(group: _Group, skipped: Mapping[int, str]) -> str:
    """Why no host fits, ending with the hosts skipped for their state (ERROR, stale)."""
    if not group.unfit and not group.unmatched:
        return "no host is available" + _listed(sorted(skipped.values()))
    also = "; skipped" + _listed(sorted(skipped.values())) if skipped else ""
    if not group.unfit:
        return f"no host satisfies REQUIREMENTS {group.requirement.text.strip()}{also}"
    unfit = [f"{name}: {why}" for _, (name, why) in sorted(group.unfit.items())]
    if len(unfit) <= MOST_REASONS:
        return "; ".join(unfit) + also
    kinds = Counter(why.split(" (")[0] for _, why in group.unfit.values())
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    return f"no room on {len(unfit)} hosts: {counts} (e.g. {unfit[0]}){also}"


def _listed(items: list[str]) -> str:
    if not items:
        return " (there are no hosts)"
    more = f"; and {len(items) - MOST_REASONS} more" if len(items) > MOST_REASONS else ""
    return " (" + "; ".join(items[:MOST_REASONS]) + more + ")"


# --- the round --------------------------------------------------------------------------------

_Key = tuple[str, str, Demand, tuple[ec2.Section, ...]]  # VMs placed alike share a group


def place(
    vms: Sequence[PendingVm],
    hosts: Sequence[HostView],
    limits: Limits,
    now: float,
    ec2_active: Mapping[int, Counter[str]] | None = None,
) -> Plan:
    """Place ``vms`` in order on ``hosts``: at most ``max_dispatch`` in all, ``max_host`` each.
    ``ec2_active``: the EC2 instances oned has on each host by type (scheduler/ec2.py)."""
    skipped = {h.id: f"{h.name}: {r}" for h in hosts if (r := host_state_reason(h, now, limits))}
    loads = {
        h.id: _Load(h, limits, None if ec2_active is None else Counter(ec2_active.get(h.id, ())))
        for h in hosts
        if h.id not in skipped
    }
    groups: dict[_Key, _Group | str] = {}
    placements: list[Placement] = []
    reasons: dict[int, str] = {}
    for index, vm in enumerate(vms):
        if len(placements) >= limits.max_dispatch:
            return Plan(tuple(placements), reasons, skipped, tuple(v.id for v in vms[index:]))
        group = _group_for(vm, groups, loads, limits)
        load = group.pick(loads) if isinstance(group, _Group) else None
        if isinstance(group, str) or load is None:
            reasons[vm.id] = group if isinstance(group, str) else group.failed(skipped)
            continue
        load.take(group.need, ec2.instance_type(group.sections, load.host.name))
        placements.append(Placement(vm.id, load.host.id, load.host.name))
    return Plan(tuple(placements), reasons, skipped, ())


def _group_for(
    vm: PendingVm,
    groups: dict[_Key, _Group | str],
    loads: Mapping[int, _Load],
    limits: Limits,
) -> _Group | str:
    """The VM's group, built on first use; a string when its REQUIREMENTS or RANK is broken."""
    key = (vm.requirements, vm.rank, demand_of(vm), vm.ec2)
    if key not in groups:
        try:
            requirement = parse_requirements(vm.requirements)
        except ExpressionError as e:
            groups[key] = f"REQUIREMENTS: {e}"
            return groups[key]
        try:
            rank = parse_rank(vm.rank)
        except ExpressionError as e:
            groups[key] = f"RANK: {e}"
            return groups[key]
        group = _Group(requirement, rank, key[2], limits, vm.ec2)
        for load in loads.values():
            group.consider(load)
        groups[key] = group
    return groups[key]


__all__ = [
    "Demand",
    "Limits",
    "Placement",
    "Plan",
    "allocatable",
    "capacity_reason",
    "demand_of",
    "free_cpu_of",
    "host_state_reason",
    "max_host_reason",
    "place",
]
