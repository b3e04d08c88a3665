"""Placement by allocated capacity (issue 16 item 3): HOST_SHARE's CPU_USAGE/MEM_USAGE against
MAX_CPU/MAX_MEM less RESERVED_CPU/RESERVED_MEM; the monitored figures only for REQUIREMENTS/RANK.

Hosts are built from ``<HOST>`` XML as oned sends it, so the parsing of the reservations from
the host TEMPLATE is tested with them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from scheduler.placement import Limits, allocatable, place
from scheduler.pools import HostView, PendingVm, host_from_xml
from tests.unit.test_sched_process import dispatcher_for, fake  # noqa: F401 (the fixture)

NOW = 1_800_000_000
GB = 1024 * 1024  # KB


def host(
    hid: int = 0,
    *,
    cpu: int = 800,
    mem: int = 16 * GB,
    cpu_usage: int = 0,
    mem_usage: int = 0,
    free_cpu: int | None = None,
    free_mem: int | None = None,
    **template: object,
) -> HostView:
    """A MONITORED host as oned's XML has it; ``template``: its TEMPLATE (RESERVED_CPU...)."""
    free_cpu = cpu - cpu_usage if free_cpu is None else free_cpu
    free_mem = mem - mem_usage if free_mem is None else free_mem
    share = {
        "MAX_CPU": cpu,
        "MAX_MEM": mem,
        "CPU_USAGE": cpu_usage,
        "MEM_USAGE": mem_usage,
        "FREE_CPU": free_cpu,
        "FREE_MEM": free_mem,
        "RUNNING_VMS": 0,
    }
    monitored = {"FREECPU": free_cpu, "FREEMEMORY": free_mem, "TOTALCPU": cpu, **template}
    xml = (
        f"<HOST><ID>{hid}</ID><NAME>host{hid:02d}</NAME><STATE>2</STATE>"
        f"<LAST_MON_TIME>{NOW - 10}</LAST_MON_TIME>"
        f"<HOST_SHARE>{''.join(f'<{k}>{v}</{k}>' for k, v in share.items())}</HOST_SHARE>"
        f"<TEMPLATE>{''.join(f'<{k}>{v}</{k}>' for k, v in monitored.items())}</TEMPLATE></HOST>"
    )
    return host_from_xml(ET.fromstring(xml))


def vms(count: int, *, cpu: float = 1.0, memory: int = 1024, requirements: str = "") -> list:
    return [PendingVm(i, 0, f"vm{i}", cpu, memory, requirements) for i in range(count)]


def placed(hosts: list[HostView], pending: list[PendingVm], hypervisor_mem: float = 0.0):
    limits = Limits(max_dispatch=100, max_host=100, hypervisor_mem=hypervisor_mem)
    return place(pending, hosts, limits, NOW)


def test_a_host_busy_with_other_processes_but_no_vms_gets_vms():
    """FREECPU 0 and little FREEMEMORY (loaded by others), nothing allocated: 8 one-CPU VMs."""
    busy = host(cpu=800, free_cpu=0, free_mem=100 * 1024)
    plan = placed([busy], vms(9))
    assert len(plan.placements) == 8
    assert plan.reasons[8] == "host00: not enough CPU (0 < 1)"


def test_what_oned_allocated_is_what_counts():
    """CPU_USAGE 700 of 800: one more one-CPU VM; MEM_USAGE 15 of 16 GB: one more 1 GB VM."""
    assert len(placed([host(cpu_usage=700)], vms(3)).placements) == 1
    plan = placed([host(mem_usage=15 * GB)], vms(3, cpu=0.1))
    assert len(plan.placements) == 1
    assert plan.reasons[1] == "host00: not enough memory (0 < 1024)"


def test_the_monitored_figures_stay_for_requirements_and_rank():
    """REQUIREMENTS = "FREECPU > 100" still keeps the VM off the loaded host."""
    busy, idle = host(0, free_cpu=0), host(1)
    plan = placed([busy, idle], vms(1, requirements="FREECPU > 100"))
    assert [p.host_name for p in plan.placements] == ["host01"]


def test_a_negative_reserved_cpu_lets_one_more_cpu_in():
    """RESERVED_CPU = -100 on a full 2-CPU host: one more one-CPU VM, then no more."""
    full = host(cpu=200, cpu_usage=200, RESERVED_CPU=-100)
    plan = placed([full], vms(2))
    assert len(plan.placements) == 1
    assert plan.reasons[1] == "host00: not enough CPU (0 < 1)"
    assert placed([host(cpu=200, cpu_usage=200)], vms(1)).placements == ()


def test_a_reservation_keeps_vms_out():
    """RESERVED_CPU = 100 of 200 leaves one CPU; RESERVED_MEM 15 GB of 16 leaves one 1 GB VM."""
    (only,) = placed([host(cpu=200, RESERVED_CPU=100)], vms(2)).placements
    plan = placed([host(RESERVED_MEM=15 * GB)], vms(2, cpu=0.1))
    assert len(plan.placements) == 1
    assert plan.reasons[1] == "host00: not enough memory (0 < 1024)"


def test_reserved_mem_replaces_the_hypervisor_mem_share_of_sched_conf():
    """HYPERVISOR_MEM 0.5 keeps 1 of 2 GB; a host's RESERVED_MEM = 0 gives both to VMs."""
    assert len(placed([host(mem=2 * GB)], vms(2), 0.5).placements) == 1
    assert len(placed([host(mem=2 * GB, RESERVED_MEM=0)], vms(2), 0.5).placements) == 2


def test_reservations_are_read_from_the_host_template():
    """Numbers as text in TEMPLATE; absent: no CPU reserved, HYPERVISOR_MEM for memory."""
    h = host(cpu=400, mem=4 * GB, RESERVED_CPU="-150", RESERVED_MEM="524288")
    assert (h.reserved_cpu, h.reserved_mem) == (-150, 524288)
    assert allocatable(h, Limits(hypervisor_mem=0.5)) == (550, 4 * GB - 524288)
    plain = host(cpu=400, mem=4 * GB)
    assert (plain.reserved_cpu, plain.reserved_mem) == (0, None)
    assert allocatable(plain, Limits(hypervisor_mem=0.5)) == (400, 2 * GB)
