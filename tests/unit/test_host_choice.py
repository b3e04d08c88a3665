"""host_choice.check_host: which hosts one.vm.deploy and one.vm.migrate accept for a VM, as a
table of (host, VM, enforce) -> refusal or not (issue 10, finding 3)."""

from __future__ import annotations

import pytest

from oned.api.host_choice import check_host
from oned.errors import ActionNotAllowed
from oned.records import Host, HostShare, Vm
from oned.states import HostState
from oned.template import parse

GB = 1024 * 1024  # KB


def a_host(state: int = HostState.MONITORED, **share: int) -> Host:
    fields = {"max_cpu": 800, "max_mem": 16 * GB, **share}
    return Host(3, "host03", "im_dummy", "vmm_dummy", "tm_dummy", state, share=HostShare(**fields))


def a_vm(cpu: str = "1", memory: str = "1024") -> Vm:
    return Vm(5, 1, "web", parse(f"CPU = {cpu}\nMEMORY = {memory}\n"))


REFUSED = [
    pytest.param(
        a_host(), a_vm("10000", "1000000000"), False,
        r"VM \[5\] does not fit in host \[3\] \(host03\): CPU \(8 in total < 10000 asked\)",
        id="absurd-cpu-without-enforce",
    ),
    pytest.param(
        a_host(), a_vm("1", "1000000000"), False,
        r"does not fit in host \[3\] \(host03\): memory \(16384 MB in total < 1000000000 MB",
        id="absurd-memory-without-enforce",
    ),
    pytest.param(
        a_host(HostState.DISABLED), a_vm(), False,
        r"\[one.vm.deploy\] Host \[3\] \(host03\) is DISABLED",
        id="disabled",
    ),
    pytest.param(
        a_host(mem_usage=16 * GB - 512 * 1024), a_vm("1", "1024"), True,
        r"Host \[3\] \(host03\) has not enough memory \(512 MB free < 1024 MB asked\)",
        id="full-with-enforce",
    ),
    pytest.param(
        a_host(cpu_usage=750), a_vm("1", "64"), True,
        r"has not enough CPU \(0.5 free < 1 asked\)",
        id="busy-cpu-with-enforce",
    ),
    pytest.param(
        a_host(HostState.INIT, max_cpu=0, max_mem=0), a_vm(), True,
        r"has not been monitored yet: its capacity is unknown",
        id="unmonitored-with-enforce",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("host", "vm", "enforce", "message"), REFUSED)
def test_check_host_refuses_with_0x800_naming_the_host(host, vm, enforce, message):
    """Each refusal is an ActionNotAllowed that names the host and what does not fit."""
    with pytest.raises(ActionNotAllowed, match=message):
        check_host(host, vm, enforce, "one.vm.deploy")


ACCEPTED = [
    pytest.param(a_host(cpu_usage=800, mem_usage=16 * GB), a_vm(), False,
                 id="full-without-enforce"),
    pytest.param(a_host(), a_vm("8", str(16 * 1024)), True, id="exactly-the-whole-host"),
    pytest.param(a_host(HostState.ERROR), a_vm(), True, id="error-state-is-not-disabled"),
    pytest.param(a_host(HostState.INIT, max_cpu=0, max_mem=0), a_vm("10000", "1000000000"), False,
                 id="unmonitored-without-enforce"),
]  # fmt: skip


@pytest.mark.parametrize(("host", "vm", "enforce"), ACCEPTED)
def test_check_host_accepts_what_fits(host, vm, enforce):
    """Without enforce only the totals count; a host not monitored yet is the admin's call."""
    check_host(host, vm, enforce, "one.vm.deploy")


def test_enforce_counts_the_host_s_reservations():
    """RESERVED_CPU / RESERVED_MEM of the host's template, as mm_sched counts them: a positive
    one keeps room back, a negative one over-commits (issue 16)."""
    full = a_host(cpu_usage=800)
    full.template = parse("RESERVED_CPU = -100\n")
    check_host(full, a_vm("1", "64"), True, "one.vm.deploy")  # one more CPU over-committed
    kept = a_host(mem_usage=8 * GB)
    kept.template = parse(f"RESERVED_MEM = {8 * GB}\n")
    with pytest.raises(ActionNotAllowed, match=r"not enough memory \(0 MB free < 64 MB"):
        check_host(kept, a_vm("1", "64"), True, "one.vm.deploy")
