"""Placement (reference §7.2): filters, rank, limits and the reasons a VM waits, as tables."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oned.expr import parse_requirements
from oned.states import HostState
from scheduler.placement import (
    Demand,
    Limits,
    capacity_reason,
    demand_of,
    free_cpu_of,
    host_state_reason,
    max_host_reason,
    place,
)
from scheduler.pools import HostView, PendingVm

NOW = 1_800_000_000
GB = 1024 * 1024  # KB


def host(hid, name=None, *, cpu=800, mem=16 * GB, state=2, age=10, running=0, **template):
    """A monitored, idle host with ``cpu`` percent and ``mem`` KB, plus template attributes."""
    name = name or f"host{hid:02d}"
    share = {"MAX_CPU": cpu, "MAX_MEM": mem, "FREE_CPU": cpu, "FREE_MEM": mem}
    share |= {"CPU_USAGE": 0, "MEM_USAGE": 0, "RUNNING_VMS": running}
    attrs = {"ID": str(hid), "NAME": name, **share, "HOSTNAME": name, **template}
    return HostView(
        hid, name, state, NOW - age if age is not None else 0,
        max_cpu=cpu, max_mem=mem, free_cpu=cpu, free_mem=mem, running_vms=running, attrs=attrs,
    )  # fmt: skip


def vm(vid, *, cpu=1.0, memory=1024, requirements="", rank=""):
    return PendingVm(vid, 0, f"vm{vid}", cpu, memory, requirements, rank)


def plan_of(vms, hosts, **limits):
    return place(vms, hosts, Limits(**{"hypervisor_mem": 0.0, **limits}), NOW)


def where(plan):
    return {p.vm: p.host_name for p in plan.placements}


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "age", "reason"),
    [
        (HostState.MONITORED, 10, None),
        (HostState.MONITORING, 10, None),
        (HostState.INIT, 10, None),
        (HostState.DISABLED, 10, "disabled"),
        (HostState.ERROR, 10, "in error"),
        (7, 10, "in state 7"),
        (HostState.INIT, None, "not monitored yet"),
        (HostState.MONITORED, 2400, "not monitored for 2400 s"),
        (HostState.MONITORED, 1800, None),
    ],
)
def test_only_enabled_and_recently_monitored_hosts_pass(state, age, reason):
    """DISABLED, ERROR, never monitored and stale hosts are filtered out, with a reason."""
    assert host_state_reason(host(0, state=state, age=age), NOW, Limits()) == reason


def test_a_zero_monitor_age_accepts_any_age():
    """HOST_MONITOR_AGE = 0 switches the staleness check off."""
    assert host_state_reason(host(0, age=10**6), NOW, Limits(monitor_age=0)) is None


@pytest.mark.parametrize(
    ("need", "cpu", "mem", "reason"),
    [
        (Demand(100, 1024 * 1024), 100, 1024 * 1024, None),
        (Demand(100, 1024 * 1024), 100, 512 * 1024, "not enough memory (512 < 1024)"),
        (Demand(100, 1024 * 1024), -50, -10, "not enough memory (0 < 1024)"),
        (Demand(150, 1024), 50, 2048, "not enough CPU (0.5 < 1.5)"),
        (Demand(0, 0), 0, 0, None),
    ],
)
def test_capacity_reason_names_what_is_short_in_template_units(need, cpu, mem, reason):
    """Memory in MB and CPU in CPUs, as the VM template writes them."""
    assert capacity_reason(need, cpu, mem) == reason


@pytest.mark.parametrize(
    ("cpu", "memory", "demand"),
    [
        (1.0, 1024, Demand(100, GB)),
        (0.1, 64, Demand(10, 65536)),
        (0, 512, Demand(0, 0)),
        (2.0, 0, Demand(0, 0)),
    ],
)
def test_a_vm_demands_cpu_times_100_and_memory_in_kb(cpu, memory, demand):
    """NOTE: OpenNebula counts a VM without CPU or MEMORY as 0/0."""
    assert demand_of(vm(0, cpu=cpu, memory=memory)) == demand


@pytest.mark.parametrize(("free", "seen"), [(184, 200), (180, 200), (179, 179), (150, 150)])
def test_free_cpu_of_a_nearly_idle_host_is_rounded_up_to_a_whole_cpu(free, seen):
    """NOTE: OpenNebula 2.0 rounds FREE_CPU up when it is at least 90% of MAX_CPU."""
    h = HostView(0, "h", 2, NOW, max_cpu=200, free_cpu=free)
    assert free_cpu_of(h) == seen


def test_max_host_reason_counts_this_rounds_dispatches():
    """A host that got MAX_HOST VMs this round takes no more."""
    assert max_host_reason(0, Limits(max_host=1)) is None
    assert max_host_reason(1, Limits(max_host=1)) == "got 1 VM(s) this round (MAX_HOST = 1)"


# --- rounds ---------------------------------------------------------------------------------


def test_a_vm_lands_on_the_host_its_requirements_name():
    """REQUIREMENTS = HOSTNAME = "host02" puts the VM on host02 only."""
    plan = plan_of([vm(0, requirements='HOSTNAME = "host02"')], [host(1), host(2), host(3)])
    assert where(plan) == {0: "host02"}
    assert plan.reasons == {}


def test_an_unsatisfiable_requirement_leaves_the_vm_pending_with_its_reason():
    """No host satisfies REQUIREMENTS: the reason quotes the expression."""
    plan = plan_of([vm(7, requirements='HOSTNAME = "host09"')], [host(1), host(2)])
    assert plan.placements == ()
    assert plan.reasons == {7: 'no host satisfies REQUIREMENTS HOSTNAME = "host09"'}


def test_a_host_without_room_is_named_with_what_it_lacks():
    """host02: not enough memory (512 < 1024)."""
    plan = plan_of([vm(3, memory=1024)], [host(2, mem=512 * 1024)])
    assert plan.reasons == {3: "host02: not enough memory (512 < 1024)"}


def test_hosts_that_cannot_be_used_are_listed_when_no_host_is_available():
    """Disabled, erroneous and unmonitored hosts explain why nothing is available."""
    hosts = [host(3, state=HostState.DISABLED), host(4, age=2400), host(5, age=None)]
    plan = plan_of([vm(1)], hosts)
    assert plan.skipped_hosts == {
        3: "host03: disabled",
        4: "host04: not monitored for 2400 s",
        5: "host05: not monitored yet",
    }
    assert plan.reasons[1] == (
        "no host is available (host03: disabled; host04: not monitored for 2400 s; "
        "host05: not monitored yet)"
    )
    assert plan_of([vm(1)], []).reasons[1] == "no host is available (there are no hosts)"


def test_hosts_in_error_or_stale_get_no_vm_and_are_named_when_others_lack_room():
    """Finding 6 of issue 11: a host in ERROR, or whose last successful monitoring is too old,
    gets no VM however roomy; when no other host fits, the reason names them too."""
    hosts = [host(0, mem=512 * 1024), host(1, state=HostState.ERROR), host(2, age=2400)]
    plan = plan_of([vm(7), vm(8, memory=256)], hosts)
    assert where(plan) == {8: "host00"}
    assert plan.reasons[7] == (
        "host00: not enough memory (512 < 1024); skipped (host01: in error; "
        "host02: not monitored for 2400 s)"
    )


def test_many_hosts_without_room_are_summed_up_by_what_they_lack():
    """More than three hosts: counts per kind of shortage and one example."""
    hosts = [host(i, mem=GB) for i in range(4)] + [host(i, cpu=50) for i in range(4, 6)]
    plan = plan_of([vm(1, memory=4096)], hosts)
    assert plan.reasons[1] == (
        "no room on 6 hosts: 4 not enough memory, 2 not enough CPU "
        "(e.g. host00: not enough memory (1024 < 4096))"
    )


def test_the_host_with_the_highest_rank_is_chosen():
    """RANK highest first: FREECPU picks the emptiest host."""
    hosts = [host(1, FREECPU="100"), host(2, FREECPU="700"), host(3, FREECPU="300")]
    assert where(plan_of([vm(0, rank="FREECPU")], hosts)) == {0: "host02"}
    assert where(plan_of([vm(0, rank="- FREECPU")], hosts)) == {0: "host01"}


def test_ties_are_spread_over_the_hosts():
    """Equal ranks: each host gets one VM before any gets a second."""
    plan = plan_of([vm(i) for i in range(6)], [host(1), host(2), host(3)], max_host=5)
    assert Counter(where(plan).values()) == {"host01": 2, "host02": 2, "host03": 2}


def test_ties_go_first_to_the_host_with_fewer_running_vms():
    """Least loaded first among equals."""
    hosts = [host(1, running=5), host(2, running=0), host(3, running=2)]
    assert where(plan_of([vm(0), vm(1)], hosts)) == {0: "host02", 1: "host03"}


def test_rank_sees_what_the_round_already_gave_away():
    """Striping (- RUNNING_VMS) alternates even when one host may take many VMs."""
    plan = plan_of([vm(i, rank="- RUNNING_VMS") for i in range(4)], [host(1), host(2)], max_host=4)
    assert list(where(plan).values()) == ["host01", "host02", "host01", "host02"]


def test_packing_fills_one_host_before_the_next():
    """RANK = RUNNING_VMS packs as long as the host has room."""
    hosts = [host(1, mem=2 * GB), host(2, mem=2 * GB)]
    plan = plan_of([vm(i, rank="RUNNING_VMS") for i in range(4)], hosts, max_host=4)
    assert list(where(plan).values()) == ["host01", "host01", "host02", "host02"]


def test_capacity_given_away_in_a_round_is_never_given_twice():
    """Ten 1 GB VMs on a host with 3.5 GB: three are placed, the others wait and say why."""
    plan = plan_of([vm(i) for i in range(10)], [host(1, mem=3584 * 1024)], max_host=10)
    assert len(plan.placements) == 3
    assert plan.reasons[3] == "host01: not enough memory (512 < 1024)"
    assert set(plan.reasons) == set(range(3, 10))


def test_cpu_is_counted_like_memory():
    """Two CPUs of a 2-CPU host go to the first two 1-CPU VMs."""
    plan = plan_of([vm(i, cpu=1) for i in range(3)], [host(1, cpu=200)], max_host=3)
    assert len(plan.placements) == 2
    assert plan.reasons[2] == "host01: not enough CPU (0 < 1)"


def test_hypervisor_mem_keeps_a_share_of_every_host():
    """HYPERVISOR_MEM = 0.5 leaves half of a 2 GB host: one 1 GB VM, not two."""
    plan = plan_of([vm(0), vm(1)], [host(1, mem=2 * GB)], max_host=2, hypervisor_mem=0.5)
    assert len(plan.placements) == 1


def test_max_dispatch_defers_the_rest_to_the_next_round():
    """At most MAX_DISPATCH deployments; later VMs are deferred without a reason."""
    plan = plan_of([vm(i) for i in range(5)], [host(i) for i in range(5)], max_dispatch=2)
    assert [p.vm for p in plan.placements] == [0, 1]
    assert plan.deferred == (2, 3, 4)
    assert plan.reasons == {}


def test_max_host_caps_each_host_and_says_so():
    """MAX_HOST = 1: one VM per host per round; the third VM waits naming the limit."""
    plan = plan_of([vm(i) for i in range(3)], [host(1), host(2)], max_host=1)
    assert sorted(where(plan).values()) == ["host01", "host02"]
    assert plan.reasons[2] == (
        "host01: got 1 VM(s) this round (MAX_HOST = 1); "
        "host02: got 1 VM(s) this round (MAX_HOST = 1)"
    )


def test_a_vm_with_a_broken_expression_waits_naming_it():
    """A record stored before the allocate-time check: the reason names the column."""
    plan = plan_of([vm(1, requirements="CPU >> 2"), vm(2, rank="1 +")], [host(1)], max_host=2)
    assert plan.reasons[1] == "REQUIREMENTS: syntax error at column 6: unexpected '>', " + (
        "expecting a number"
    )
    assert plan.reasons[2].startswith("RANK: syntax error at column 4")


def test_a_vm_without_cpu_or_memory_fits_a_full_host():
    """NOTE: 0/0 demand, as OpenNebula: only MAX_HOST stops it."""
    plan = plan_of([vm(0, cpu=0), vm(1, memory=0)], [host(1, mem=0, cpu=0)], max_host=2)
    assert len(plan.placements) == 2


def test_vms_are_tried_in_the_order_given():
    """The first VMs get the room when there is not enough for all."""
    plan = plan_of([vm(5), vm(2), vm(9)], [host(1, mem=2 * GB)], max_host=3)
    assert [p.vm for p in plan.placements] == [5, 2]


# --- properties -------------------------------------------------------------------------------

_REQUIREMENTS = [
    "",
    'HOSTNAME = "host0*"',
    "ZONE = a | ZONE = b",
    "TOTALCPU > 400",
    '! (ARCH = "i686")',
    "ZONE != c & TOTALCPU < 1000",
]
_RANKS = ["", "FREECPU", "- RUNNING_VMS", "RUNNING_VMS", "FREE_MEM / 1024 - RUNNING_VMS * 10"]

_hosts = st.lists(
    st.builds(
        lambda i, cpu, mem, state, zone, arch: host(
            i, cpu=cpu, mem=mem, state=state, ZONE=zone, ARCH=arch, TOTALCPU=str(cpu)
        ),
        st.integers(0, 30),
        st.sampled_from([100, 200, 400, 800]),
        st.sampled_from([GB, 2 * GB, 4 * GB]),
        st.sampled_from([0, 2, 2, 2, 3, 4]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["x86_64", "i686"]),
    ),
    max_size=12,
    unique_by=lambda h: h.id,
)
_vms = st.lists(
    st.builds(
        lambda cpu, mem, req, rank: (cpu, mem, req, rank),
        st.sampled_from([0.5, 1.0, 2.0]),
        st.sampled_from([256, 1024, 3072]),
        st.sampled_from(_REQUIREMENTS),
        st.sampled_from(_RANKS),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_hosts, _vms, st.integers(1, 50), st.integers(1, 6), st.sampled_from([0.0, 0.1]))
def test_every_placement_honours_requirements_capacity_and_limits(hosts, specs, md, mh, hm):
    """Whatever the pools, no host goes over capacity and every limit holds."""
    vms = [vm(i, cpu=c, memory=m, requirements=r, rank=k) for i, (c, m, r, k) in enumerate(specs)]
    plan = place(vms, hosts, Limits(md, mh, hm), NOW)
    by_id, by_vm = {h.id: h for h in hosts}, {v.id: v for v in vms}
    assert len(plan.placements) <= md
    assert max(Counter(p.host for p in plan.placements).values(), default=0) <= mh
    for p in plan.placements:
        assert parse_requirements(by_vm[p.vm].requirements)(by_id[p.host].attrs)
        assert by_id[p.host].state in (0, 2)
    for h in hosts:
        given_away = [demand_of(by_vm[p.vm]) for p in plan.placements if p.host == h.id]
        assert sum(d.cpu for d in given_away) <= min(free_cpu_of(h), h.max_cpu)
        assert sum(d.mem for d in given_away) <= int(h.max_mem * (1 - hm))
    placed = [p.vm for p in plan.placements]
    accounted = sorted(placed + list(plan.reasons) + list(plan.deferred))
    assert accounted == [v.id for v in vms]
