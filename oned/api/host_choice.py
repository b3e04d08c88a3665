"""Whether a VM may go to the host an administrator (or mm_sched) chose for it: the checks of
one.vm.deploy and one.vm.migrate on the host's state and capacity.

Every check only reads and raises ActionNotAllowed (0x800) naming the host: a refused call
has reserved nothing. An accepted deploy waiting for its group commit has reserved its CPU and
memory in the host's share already (``oned.api.deploy_group``), so the next deploy of the same
turn is checked against what the host will hold.

* A DISABLED host takes no VM, whoever asks.
  NOTE: OpenNebula >= 5 refuses an OFFLINE host at deploy and migrate ("Host is offline,
  cannot use it to deploy VM"); onecloud, like 1.4/2.0, has no OFFLINE state and
  ``one.host.status`` maps OFFLINE to DISABLED, so DISABLED is the state refused.
* A VM whose CPU or MEMORY exceeds the host's monitored total capacity (TOTALCPU,
  TOTALMEMORY) never fits there, with or without ``enforce``: such a VM would make the host
  look full to the scheduler for nothing.
* With ``enforce`` (the scheduler always sets it) the host's free allocated capacity (total
  minus what its VMs hold, minus the host's RESERVED_CPU / RESERVED_MEM: a negative one
  over-commits) must take the VM, as OpenNebula's ``enforce`` flag does.
* A host not monitored yet (both totals 0) has an unknown capacity: refused with ``enforce``,
  allowed without (the administrator's explicit choice; the totals are checked again at the
  next deploy or migrate once the host is monitored).
"""

from __future__ import annotations

from oned.errors import ActionNotAllowed
from oned.lcm import demand
from oned.records import Host, Vm
from oned.states import HostState


def check_host(host: Host, vm: Vm, enforce: bool, method: str) -> None:
    """Refuse ``host`` for ``vm`` when it is DISABLED or cannot hold it (see the module)."""
    where = f"host [{host.id}] ({host.name})"
    if host.state == HostState.DISABLED:
        raise ActionNotAllowed(
            f"[{method}] {where.capitalize()} is DISABLED: it takes no VMs until it is enabled."
        )
    share = host.share
    if share.max_cpu <= 0 and share.max_mem <= 0:
        if enforce:
            raise ActionNotAllowed(
                f"[{method}] {where.capitalize()} has not been monitored yet: its capacity is "
                "unknown, so it cannot be enforced."
            )
        return
    cpu, memory = demand(vm)
    too_big = _shortage(cpu, memory, share.max_cpu, share.max_mem, "in total")
    if too_big:
        raise ActionNotAllowed(f"[{method}] VM [{vm.id}] does not fit in {where}: {too_big}.")
    if enforce:
        free_cpu = share.max_cpu - share.cpu_usage - _reserved(host, "RESERVED_CPU")
        free_mem = share.max_mem - share.mem_usage - _reserved(host, "RESERVED_MEM")
        short = _shortage(cpu, memory, free_cpu, free_mem, "free")
        if short:
            raise ActionNotAllowed(f"[{method}] {where.capitalize()} has not enough {short}.")


def _reserved(host: Host, name: str) -> int:
    """RESERVED_CPU (percent) or RESERVED_MEM (KB) of the host's template, 0 when unset
    (one.host.update refuses a value that is not an integer)."""
    value = host.template.get_str(name, "") or ""
    try:
        return int(value)
    except ValueError:
        return 0


def _shortage(cpu: int, memory: int, room_cpu: int, room_mem: int, kind: str) -> str:
    """What does not fit, as in "CPU (8 in total < 10000 asked)"; "" when both fit.

    ``cpu`` and ``room_cpu`` count 100 per core, ``memory`` and ``room_mem`` are KB.
    """
    if cpu > room_cpu:
        return f"CPU ({max(room_cpu, 0) / 100:g} {kind} < {cpu / 100:g} asked)"
    if memory > room_mem:
        return f"memory ({max(room_mem, 0) // 1024} MB {kind} < {memory // 1024} MB asked)"
    return ""
