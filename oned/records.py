"""Plain values for the objects oned keeps: users, hosts, VMs (with history), networks, leases.

These are what the pools hold in memory, what the store writes through to SQL and what the XML
views render. They carry no behaviour beyond small derived properties. Each has ``__slots__``
(issue 18): its fields in the object itself, about 50 bytes less per object than the values array
an instance without them carries (a VM with its history, every lease of every network).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oned.states import HistoryReason, HostState, ImageState, LcmState, VmState
from oned.template import Template


@dataclass(slots=True)
class User:
    id: int
    name: str
    password: str  # the stored, salted hash (see oned.auth); never a clear password
    enabled: bool = True


@dataclass(slots=True)
class HostShare:
    """Capacity of a host (reference §1.4). CPU in percent (100 per core), memory in KB."""

    disk_usage: int = 0
    mem_usage: int = 0  # allocated to VMs
    cpu_usage: int = 0  # allocated to VMs
    max_disk: int = 0
    max_mem: int = 0
    max_cpu: int = 0
    free_disk: int = 0
    free_mem: int = 0
    free_cpu: int = 0
    used_disk: int = 0
    used_mem: int = 0  # really used, as monitored
    used_cpu: int = 0  # really used, as monitored
    running_vms: int = 0


@dataclass(slots=True)
class Host:
    id: int
    name: str
    im_mad: str
    vm_mad: str
    tm_mad: str
    state: int = HostState.INIT
    prev_state: int = HostState.INIT
    last_mon_time: int = 0
    cluster: str = "default"
    share: HostShare = field(default_factory=HostShare)
    template: Template = field(default_factory=Template)  # the last monitoring attributes


@dataclass(slots=True)
class History:
    """One stay of a VM on a host (reference §3.5); primary key (vid, seq)."""

    vid: int
    seq: int
    host_name: str
    hid: int
    vm_dir: str
    vm_mad: str
    tm_mad: str
    stime: int = 0
    etime: int = 0
    pstime: int = 0
    petime: int = 0
    rstime: int = 0
    retime: int = 0
    estime: int = 0
    eetime: int = 0
    reason: int = HistoryReason.NONE


@dataclass(slots=True)
class Vm:
    id: int
    uid: int
    name: str
    template: Template
    state: int = VmState.PENDING
    lcm_state: int = LcmState.LCM_INIT
    prev_state: int = VmState.PENDING
    prev_lcm_state: int = LcmState.LCM_INIT
    last_poll: int = 0
    stime: int = 0
    etime: int = 0
    deploy_id: str = ""
    memory: int = 0  # monitored, KB
    cpu: int = 0  # monitored, percent
    net_tx: int = 0
    net_rx: int = 0
    resched: int = 0
    # USER_TEMPLATE (one.vm.update): what users and the scheduler add after allocation, such as
    # SCHED_MESSAGE; kept apart from the template the VM was created with.
    user_template: Template = field(default_factory=Template)
    history: list[History] = field(default_factory=list)

    @property
    def last_history(self) -> History | None:
        return self.history[-1] if self.history else None


@dataclass(slots=True)
class Lease:
    """One address of a virtual network (reference §8.2), IPv4 and MAC as integers.

    ``mac`` is 48 bits: the 16-bit MAC_PREFIX above the 32-bit suffix. ``vid`` is the VM that
    holds the lease, -1 while it is free (only FIXED networks keep free leases).
    """

    vnet: int
    ip: int
    mac: int
    vid: int = -1

    @property
    def used(self) -> bool:
        return self.vid >= 0


@dataclass(slots=True)
class Vnet:
    """A virtual network (reference §8.1). ``type`` is 0 RANGED or 1 FIXED (oned.vnet).

    ``leases`` maps IP to lease: the leases in use for a RANGED network, every lease of a FIXED
    one. The addresses of a RANGED network follow from NETWORK_ADDRESS and NETWORK_SIZE in
    ``template`` (oned.vnet.addresses).
    """

    id: int
    uid: int
    name: str
    type: int
    bridge: str
    public: bool
    template: Template
    leases: dict[int, Lease] = field(default_factory=dict)


@dataclass(slots=True)
class Image:
    """An image of the repository (reference §5.2; OpenNebula 2.0's Image).

    ``state`` is the stored one (INIT, READY, DISABLED, LOCKED or ERROR); whether a READY
    image is USED follows from the VMs that use it (``Pools.image_users``). ``source`` is the
    file VMs use ('' until there is one), ``path`` where it was copied from (PATH: a file on
    the front end or an http(s) URL; '' otherwise), ``size`` its size in MB, ``checksum``
    ``sha256:<hex>`` of its content once copied. The reason of an ERROR is the template's
    ERROR attribute, as OpenNebula writes it. ``done``/``total`` are the bytes of a copy in
    progress: kept in memory only, never stored.
    """

    id: int
    uid: int
    name: str
    type: int  # ImageType
    public: bool
    persistent: bool
    regtime: int
    template: Template
    source: str = ""
    path: str = ""
    size: int = 0
    fstype: str = ""
    checksum: str = ""
    state: int = ImageState.INIT
    done: int = 0
    total: int = 0
