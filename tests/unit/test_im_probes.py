"""The host probes (share/im_probes) on recorded /proc and toolstack output, and their bundle."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from drivers.im_ssh import (
    Bundle,
    failure_reason,
    hypervisor_name,
    make_bundle,
    parse_monitor,
    probe_info,
)
from drivers.protocol import Request
from drivers.runner import RunResult

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "share" / "im_probes"
XEN = ROOT / "tests" / "fixtures" / "xen"
# KEY=VALUE with the value unquoted (no blank = # , [ ] ") or double-quoted with \" and \\
ATTRIBUTE = re.compile(r'^[A-Z][A-Z0-9_]*=(?:[^\s=#,\[\]"]+|"(?:[^"\\]|\\.)*")$')
REQUIRED = {
    "HYPERVISOR", "HOSTNAME", "ARCH", "MODELNAME", "CPUSPEED", "TOTALCPU", "USEDCPU", "FREECPU",
    "TOTALMEMORY", "USEDMEMORY", "FREEMEMORY", "NETRX", "NETTX",
}  # fmt: skip

STAT = """cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0
cpu0 1 0 1 1 0 0 0 0 0 0
cpu1 1 0 1 1 0 0 0 0 0 0
intr 123 0 0
ctxt 456
"""
MEMINFO = """MemTotal:       16000000 kB
MemFree:         1000000 kB
MemAvailable:   12000000 kB
Buffers:          200000 kB
Cached:          3000000 kB
"""
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)   CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2394.454

processor\t: 1
model name\t: Intel(R) Xeon(R)   CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2401.000
"""
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9999999     100    0    0    0     0          0         0  9999999     100    0    0    0     0       0          0
  eth0: 1000000    2000    0    0    0     0          0         0   300000    1500    0    0    0     0       0          0
  eth1:12345678901   10    0    0    0     0          0         0 22345678901  20    0    0    0     0       0          0
"""  # noqa: E501
NODEINFO = """CPU model:           x86_64
CPU(s):              16
CPU frequency:       3000 MHz
CPU socket(s):       1
Core(s) per socket:  8
Thread(s) per core:  2
NUMA cell(s):        1
Memory size:         65843668 KiB
"""


@pytest.fixture
def host(tmp_path):
    """A fake host: its /proc, a state folder, and a bin folder put first on PATH."""
    proc, state, bin_dir = tmp_path / "proc", tmp_path / "state", tmp_path / "bin"
    (proc / "net").mkdir(parents=True)
    bin_dir.mkdir()
    (proc / "stat").write_text(STAT.format(user=1000, system=500, idle=8000, iowait=500))
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "cpuinfo").write_text(CPUINFO)
    (proc / "net" / "dev").write_text(NET_DEV)
    (proc / "uptime").write_text("100000.00 190000.00\n")
    fake_command(bin_dir, "virsh", "exit 1")  # no libvirt unless a test says so
    return {"proc": proc, "state": state, "bin": bin_dir}


def fake_command(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run_probe(script: Path, host: dict, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{host['bin']}:/usr/bin:/bin",
        "ONE_PROC": str(host["proc"]),
        "ONE_STATE": str(host["state"]),
        "LC_ALL": "C",
    }
    return subprocess.run(
        ["sh", str(script), *args], env=env, capture_output=True, text=True, timeout=30
    )


def attributes(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    bad = [line for line in lines if not ATTRIBUTE.match(line)]
    assert bad == [], f"not KEY=VALUE: {bad}"
    return dict(line.split("=", 1) for line in lines)


# ---------------------------------------------------------------------------------------------
# common probes


def test_every_probe_is_valid_posix_shell():
    """sh -n accepts every probe file (they run under the host's /bin/sh)."""
    for probe in PROBES.glob("*.d/*"):
        assert subprocess.run(["sh", "-n", str(probe)], capture_output=True).returncode == 0, probe


def test_common_probes_print_only_template_attributes(host):
    """Each common probe prints KEY=VALUE lines the template parser reads as they are."""
    seen: dict[str, str] = {}
    for probe in sorted((PROBES / "common.d").iterdir()):
        result = run_probe(probe, host)
        assert result.returncode == 0 and result.stderr == "", (probe, result.stderr)
        seen.update(attributes(result.stdout))
    assert set(seen) == {"HOSTNAME", "ARCH", "MODELNAME", "NETRX", "NETTX"}


def test_modelname_is_quoted_with_blanks_squeezed(host):
    """MODELNAME has spaces, so it is double-quoted (reference §1.3)."""
    result = run_probe(PROBES / "common.d" / "cpu.sh", host)
    assert result.stdout == 'MODELNAME="Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"\n'


def test_modelname_escapes_quotes_and_backslashes(host):
    """A model name holding " or \\ stays one quoted value."""
    (host["proc"] / "cpuinfo").write_text('model name\t: Odd "CPU" \\ 9000\n')
    result = run_probe(PROBES / "common.d" / "cpu.sh", host)
    assert result.stdout == 'MODELNAME="Odd \\"CPU\\" \\\\ 9000"\n'


def test_net_counts_bytes_of_every_interface_but_lo(host):
    """NETRX/NETTX sum all interfaces except loopback, without exponent notation."""
    result = run_probe(PROBES / "common.d" / "net.sh", host)
    assert attributes(result.stdout) == {"NETRX": "12346678901", "NETTX": "22345978901"}


# ---------------------------------------------------------------------------------------------
# kvm


def test_kvm_probe_reads_proc_when_libvirt_does_not_answer(host):
    """Cores x 100, MHz, KB; the first run's CPU use is the average since boot."""
    result = run_probe(PROBES / "kvm.d" / "kvm.sh", host)
    assert result.returncode == 0, result.stderr
    assert attributes(result.stdout) == {
        "HYPERVISOR": "kvm",
        "TOTALCPU": "200",
        "CPUSPEED": "2394",
        "TOTALMEMORY": "16000000",
        "USEDMEMORY": "4000000",
        "FREEMEMORY": "12000000",
        "USEDCPU": "30",
        "FREECPU": "170",
    }


def test_kvm_probe_cpu_use_is_the_delta_since_its_previous_run(host):
    """No sampling sleep: the counters of the previous run are kept in the state folder."""
    run_probe(PROBES / "kvm.d" / "kvm.sh", host)
    (host["proc"] / "stat").write_text(STAT.format(user=1100, system=550, idle=8300, iowait=550))
    second = attributes(run_probe(PROBES / "kvm.d" / "kvm.sh", host).stdout)
    assert (second["USEDCPU"], second["FREECPU"]) == ("60", "140")


def test_kvm_probe_asks_libvirt_for_cpus_and_speed_when_virsh_answers(host):
    """virsh nodeinfo gives CPU(s) and frequency; memory stays meminfo's."""
    fake_command(host["bin"], "virsh", f"cat <<'EOF'\n{NODEINFO}EOF")
    values = attributes(run_probe(PROBES / "kvm.d" / "kvm.sh", host).stdout)
    assert (values["TOTALCPU"], values["CPUSPEED"], values["TOTALMEMORY"]) == (
        "1600",
        "3000",
        "16000000",
    )


def test_kvm_probe_without_memavailable_counts_free_buffers_and_cache(host):
    """Kernels before 3.14 have no MemAvailable."""
    (host["proc"] / "meminfo").write_text(
        "\n".join(line for line in MEMINFO.splitlines() if "Available" not in line) + "\n"
    )
    values = attributes(run_probe(PROBES / "kvm.d" / "kvm.sh", host).stdout)
    assert (values["FREEMEMORY"], values["USEDMEMORY"]) == ("4200000", "11800000")


# ---------------------------------------------------------------------------------------------
# xen, on recorded `xl` / `xm` output


def fake_toolstack(host: dict, name: str, prefix: str) -> None:
    body = f'case "$1" in info) cat "{XEN}/{prefix}_info.txt" ;; list) cat "{XEN}/{prefix}_list.txt" ;; *) exit 1 ;; esac'  # noqa: E501
    fake_command(host["bin"], name, body)


def test_xen_probe_reads_xl_info_and_xl_list(host):
    """nr_cpus x 100, cpu_mhz, total/free memory MB -> KB; CPU from the domains' seconds."""
    fake_toolstack(host, "xl", "xl")
    host["state"].mkdir()
    (host["state"] / "xen").write_text("97000 9900000\n")  # 9700.0 CPU-s at uptime 99000 s
    result = run_probe(PROBES / "xen.d" / "xen.sh", host)
    assert result.returncode == 0, result.stderr
    assert attributes(result.stdout) == {
        "HYPERVISOR": "xen",
        "TOTALCPU": "800",
        "CPUSPEED": "3392",
        "TOTALMEMORY": str(32654 * 1024),
        "USEDMEMORY": str((32654 - 24977) * 1024),
        "FREEMEMORY": str(24977 * 1024),
        "USEDCPU": "9",  # 90.5 CPU-s over 1000 s of wall clock
        "FREECPU": "791",
    }
    assert (host["state"] / "xen").read_text() == "97905 10000000\n"


def test_xen_probe_first_run_averages_since_boot(host):
    """With no previous counters, the domains' total CPU time over the uptime."""
    fake_toolstack(host, "xl", "xl")
    values = attributes(run_probe(PROBES / "xen.d" / "xen.sh", host).stdout)
    assert (values["USEDCPU"], values["FREECPU"]) == ("10", "790")  # 9790.5 s over 100000 s


def test_xen_probe_falls_back_to_xm_and_its_max_free_memory(host):
    """Xen before 4.1 has only xm; xm info's max_free_memory is the free memory."""
    fake_command(host["bin"], "xl", "exit 1")
    fake_toolstack(host, "xm", "xm")
    values = attributes(run_probe(PROBES / "xen.d" / "xen.sh", host).stdout)
    assert values["TOTALCPU"] == "400" and values["CPUSPEED"] == "2660"
    assert values["FREEMEMORY"] == str(5890 * 1024)
    assert values["USEDMEMORY"] == str((8190 - 5890) * 1024)


def test_xen_probe_without_a_toolstack_fails_saying_so(host):
    """No xl and no xm: non-zero exit, a reason on stderr, nothing on stdout."""
    fake_command(host["bin"], "xl", "exit 1")
    fake_command(host["bin"], "xm", "exit 1")
    result = run_probe(PROBES / "xen.d" / "xen.sh", host)
    assert result.returncode == 1 and result.stdout == ""
    assert "neither 'xl info' nor 'xm info' answers" in result.stderr


# ---------------------------------------------------------------------------------------------
# the bundle one_im_ssh copies to hosts


@pytest.mark.parametrize("hypervisor", ["kvm", "xen"])
def test_the_bundle_holds_the_common_probes_then_the_hypervisor_ones(hypervisor):
    """One script per set, named after the sha256 of its text."""
    bundle = make_bundle(PROBES, hypervisor)
    labels = re.findall(r"^# --- (\S+)$", bundle.text, re.M)
    common = sorted(f"common.d/{p.name}" for p in (PROBES / "common.d").iterdir())
    own = sorted(f"{hypervisor}.d/{p.name}" for p in (PROBES / f"{hypervisor}.d").iterdir())
    assert labels == [*common, *own] and f"{hypervisor}.d/{hypervisor}.sh" in own
    assert re.fullmatch(r"probes-[0-9a-f]{16}\.sh", bundle.name)
    assert Bundle(hypervisor, bundle.text + "#").name != bundle.name


def test_the_bundle_name_depends_on_the_probes_not_on_where_they_are(tmp_path):
    """Two installs with the same probes copy the same file; an edited probe, another."""
    copy = tmp_path / "im_probes"
    shutil.copytree(PROBES, copy)
    assert make_bundle(copy, "kvm").name == make_bundle(PROBES, "kvm").name
    edited = copy / "kvm.d" / "kvm.sh"
    edited.write_text(edited.read_text() + "echo EXTRA=1\n")
    assert make_bundle(copy, "kvm").name != make_bundle(PROBES, "kvm").name


def test_the_kvm_bundle_run_on_a_host_reports_every_attribute(host, tmp_path):
    """All thirteen attributes, each a template attribute, state kept next to the bundle."""
    script = tmp_path / "im" / make_bundle(PROBES, "kvm").name
    script.parent.mkdir()
    script.write_text(make_bundle(PROBES, "kvm").text)
    result = run_probe(script, host, "host01")
    assert result.returncode == 0, result.stderr
    found = set(attributes(result.stdout))
    assert found - {"KVM_ACCEL", "KVM_ACCEL_REASON"} == REQUIRED and "KVM_ACCEL" in found
    assert (tmp_path / "im" / "state-host01" / "cpu").exists()


def test_a_failing_probe_fails_the_bundle_naming_it(host, tmp_path):
    """A probe exiting non-zero makes the run fail; the others still print."""
    for folder in ("common.d", "kvm.d"):
        (tmp_path / "probes" / folder).mkdir(parents=True)
    fake_command(tmp_path / "probes" / "common.d", "ok.sh", "echo A=1")
    fake_command(tmp_path / "probes" / "kvm.d", "broken.sh", "echo 'no libvirt' >&2; exit 3")
    script = tmp_path / "bundle.sh"
    script.write_text(make_bundle(tmp_path / "probes", "kvm").text)
    result = run_probe(script, host, "h")
    assert (result.returncode, result.stdout) == (1, "A=1\n")
    assert result.stderr.splitlines() == ["no libvirt", "probe kvm.d/broken.sh failed (exit 3)"]


def test_probe_files_that_are_not_executable_are_left_out(tmp_path):
    """As in OpenNebula 2.0's run_probes, chmod -x disables a probe."""
    for folder in ("common.d", "xen.d"):
        (tmp_path / folder).mkdir()
    fake_command(tmp_path / "common.d", "on.sh", "echo A=1")
    (tmp_path / "common.d" / "off.sh").write_text("echo B=2\n")
    assert "off.sh" not in make_bundle(tmp_path, "xen").text


# ---------------------------------------------------------------------------------------------
# what one_im_ssh does with probe output


def test_probe_output_is_joined_with_spaces_and_garbage_passed_through():
    """Lines are stripped and joined; nothing that is not KEY=VALUE is hidden."""
    assert probe_info('A=1\n\n  B="x y"  \n') == 'A=1 B="x y"'
    assert probe_info("Segmentation fault\nA=1\n") == "Segmentation fault A=1"


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (RunResult(124, "", "timed out after 4.98 s"), "probe timed out after 5 s"),
        (RunResult(255, "", "cannot resolve host nowhere"), "cannot resolve host nowhere"),
        (RunResult(1, "A=1", "oops\nprobe x failed (exit 1)"), "probes failed on h: oops"),
    ],
)
def test_failures_become_one_line_reasons(result, reason):
    """Timeouts, unreachable hosts and failing probes each say what happened."""
    assert failure_reason(result, "h", 5.0) == reason


@pytest.mark.parametrize(
    ("argument", "name"),
    [("kvm", "kvm"), ("xen", "xen"), ("im_kvm/im_kvm.conf", "kvm"), ("im_xen/im_xen.conf", "xen")],
)
def test_the_probe_set_argument_accepts_the_1_4_config_file_form(argument, name):
    """OpenNebula 1.4's oned.conf names im_kvm/im_kvm.conf; 2.0's names kvm."""
    assert hypervisor_name(argument) == name


def test_monitor_arguments_are_host_and_update_flag():
    """MONITOR id host 1 asks for a fresh copy of the probes; 1.4 sends no flag."""
    assert parse_monitor(Request("MONITOR", "3", ("h", "1"))) == ("h", True)
    assert parse_monitor(Request("MONITOR", "3", ("h", "0"))) == ("h", False)
    assert parse_monitor(Request("MONITOR", "3", ("h",))) == ("h", False)


@pytest.mark.parametrize(
    ("flags", "device", "want"),
    [
        ("fpu vmx sse2", True, {"KVM_ACCEL": "yes"}),
        ("fpu svm", True, {"KVM_ACCEL": "yes"}),
        ("fpu sse2 hypervisor", True, {"KVM_ACCEL": "no"}),
        ("fpu vmx", False, {"KVM_ACCEL": "no"}),
    ],
)
def test_the_kvm_accel_probe_says_whether_kvm_can_run_guests(host, tmp_path, flags, device, want):
    """Issue 16: a host whose CPU lacks vmx/svm (nested virtualisation off) or that has no
    /dev/kvm shows KVM_ACCEL=no with the reason in `onehost show`."""
    cpuinfo = host["proc"] / "cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text() + f"flags\t\t: {flags}\n")
    kvm = tmp_path / "kvm"
    if device:
        kvm.write_text("")
    probe = PROBES / "kvm.d" / "accel.sh"
    env = {"PATH": "/usr/bin:/bin", "ONE_PROC": str(host["proc"]), "ONE_KVM_DEVICE": str(kvm)}
    result = subprocess.run(["sh", str(probe)], env=env, capture_output=True, text=True, timeout=30)
    found = attributes(result.stdout)
    assert found["KVM_ACCEL"] == want["KVM_ACCEL"]
    assert ("KVM_ACCEL_REASON" in found) == (want["KVM_ACCEL"] == "no")
