"""one_vmm_xen: the xl configuration from literal VM documents, and the actions against a fake xl.

No Xen host exists here. The command sequence is checked against ``tests/fixtures/xen/bin/xl``,
a fake xl on PATH that records its arguments and replays xl's messages kept in
``tests/fixtures/xen/xl_<what>.{out,err}`` (written after xl 4.17's output, not captured on a
Xen host).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from drivers.protocol import Request
from drivers.serve import Logger, Output, run_action
from drivers.ssh import SshPool
from drivers.vmm_xen import (
    Context,
    actions,
    parse_xl_list,
    render_config,
    runners,
    state_of,
    template_of,
)
from tests.e2e.driver_process import DriverProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
XL = FIXTURES / "xen" / "bin"


def config(template: str, vid: int = 5) -> str:
    document = f"<VM><ID>{vid}</ID><TEMPLATE><MEMORY>64</MEMORY>{template}</TEMPLATE></VM>"
    return render_config(*template_of(document), f"/vm/{vid}/images")


@pytest.mark.parametrize("name", ["ttylinux", "everything"])
def test_a_vm_document_renders_to_the_recorded_xl_configuration(name):
    """The seed's ttylinux (HVM: it has no kernel) and every attribute at once."""
    vid = {"ttylinux": 2, "everything": 42}[name]
    vid_, template = template_of((FIXTURES / "vmm" / f"deploy_{name}.vm.xml").read_text())
    rendered = render_config(vid_, template, f"/srv/cloud/one/var/{vid}/images")
    assert rendered == (FIXTURES / "xen" / f"deploy_{name}.xl.cfg").read_text()


def test_a_paravirtual_guest_gets_kernel_ramdisk_root_and_extra():
    """OS KERNEL, INITRD, ROOT (under /dev/), KERNEL_CMD as xl's keys; no HVM builder."""
    text = config(
        "<OS><KERNEL>/boot/vmlinuz-xen</KERNEL><INITRD>/boot/initrd.gz</INITRD>"
        "<ROOT>sda1</ROOT><KERNEL_CMD>ro</KERNEL_CMD></OS>"
    )
    assert 'kernel = "/boot/vmlinuz-xen"\nramdisk = "/boot/initrd.gz"\nextra = "ro"\n' in text
    assert 'root = "/dev/sda1"' in text and "hvm" not in text


def test_a_bootloader_replaces_the_kernel():
    """OS BOOTLOADER (pygrub) boots a PV guest from its own disk."""
    text = config("<OS><BOOTLOADER>/usr/bin/pygrub</BOOTLOADER></OS>")
    assert 'bootloader = "/usr/bin/pygrub"' in text


def test_disks_are_file_or_phy_with_their_target_and_mode_and_the_context_cdrom_last():
    """DISK i at <images>/disk.i; cdrom and read-only disks are r; CONTEXT after the disks."""
    text = config(
        "<DISK><TARGET>hda</TARGET></DISK><DISK><TYPE>cdrom</TYPE></DISK>"
        "<DISK><TYPE>block</TYPE><READONLY>yes</READONLY><BUS>xen</BUS></DISK>"
        "<CONTEXT><HOSTNAME>x</HOSTNAME></CONTEXT>"
    )
    assert (
        'disk = [ "file:/vm/5/images/disk.0,hda,w", "file:/vm/5/images/disk.1,hdb:cdrom,r", '
        '"phy:/vm/5/images/disk.2,xvda,r", "file:/vm/5/images/disk.3,hdc:cdrom,r" ]'
    ) in text


def test_nics_and_vnc_graphics_become_vif_and_vfb_entries():
    """vif mac/ip/bridge/script/model/vifname; VNC port 5900+N is display N."""
    text = config(
        "<NIC><MAC>02:00:00:00:00:01</MAC><BRIDGE>xenbr0</BRIDGE><TARGET>one-5-0</TARGET></NIC>"
        "<GRAPHICS><TYPE>vnc</TYPE><LISTEN>0.0.0.0</LISTEN><PORT>5905</PORT></GRAPHICS>"
    )
    assert 'vif = [ "mac=02:00:00:00:00:01,bridge=xenbr0,vifname=one-5-0" ]' in text
    assert 'vfb = [ "type=vnc,vnclisten=0.0.0.0,vncdisplay=5" ]' in text
    assert 'vfb = [ "type=vnc,vncunused=1" ]' in config("<GRAPHICS><TYPE>vnc</TYPE></GRAPHICS>")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("<GRAPHICS><TYPE>spice</TYPE></GRAPHICS>", 'GRAPHICS/TYPE = "spice"'),
        ("<DISK><TYPE>tape</TYPE></DISK>", 'DISK/TYPE = "tape"'),
        ("<OS><BOOT>usb</BOOT></OS>", 'OS/BOOT = "usb"'),
        ("<RAW><TYPE>xen</TYPE><DATA>a\nb</DATA></RAW><NIC><MAC>a\nb</MAC></NIC>", "NIC/MAC"),
    ],
)
def test_a_template_xl_could_not_take_is_refused_naming_the_attribute(template, message):
    """ValueError with the attribute's name."""
    with pytest.raises(ValueError, match=message):
        config(template)


@pytest.mark.parametrize(
    ("template", "attribute"),
    [
        ("<NIC><BRIDGE>br0,script=/tmp/evil</BRIDGE></NIC>", "NIC/BRIDGE"),
        ("<NIC><MAC>02:00:00:00:00:01,script=/tmp/evil</MAC></NIC>", "NIC/MAC"),
        ("<NIC><IP>10.0.0.1,script=/tmp/evil</IP></NIC>", "NIC/IP"),
        ("<NIC><TARGET>one-5-0,script=/tmp/evil</TARGET></NIC>", "NIC/TARGET"),
        ("<NIC><MODEL>e1000,script=/tmp/evil</MODEL></NIC>", "NIC/MODEL"),
        ("<NIC><SCRIPT>/tmp/../etc/evil</SCRIPT></NIC>", "NIC/SCRIPT"),
        ("<GRAPHICS><TYPE>vnc</TYPE><LISTEN>0.0.0.0,vncpasswd=</LISTEN></GRAPHICS>", "LISTEN"),
        ("<GRAPHICS><TYPE>vnc</TYPE><KEYMAP>es,vnclisten=0.0.0.0</KEYMAP></GRAPHICS>", "KEYMAP"),
        ("<GRAPHICS><TYPE>vnc</TYPE><PASSWD>pw,vnclisten=::</PASSWD></GRAPHICS>", "PASSWD"),
        ("<GRAPHICS><TYPE>vnc</TYPE><PORT>22</PORT></GRAPHICS>", "GRAPHICS/PORT"),
        ("<GRAPHICS><TYPE>vnc</TYPE><PORT>5901,x=y</PORT></GRAPHICS>", "GRAPHICS/PORT"),
        ("<DISK><TARGET>hda,w,target=/etc/shadow</TARGET></DISK>", "DISK/TARGET"),
        ("<CONTEXT><TARGET>hdd:cdrom,r,target=/etc/shadow</TARGET></CONTEXT>", "CONTEXT/TARGET"),
        ("<OS><KERNEL>/boot/../etc/shadow</KERNEL></OS>", "OS/KERNEL"),
        ("<OS><INITRD>initrd.img</INITRD><KERNEL>/boot/k</KERNEL></OS>", "OS/INITRD"),
        ("<OS><BOOTLOADER>/usr/bin/pygrub -x</BOOTLOADER></OS>", "OS/BOOTLOADER"),
        ("<OS><ROOT>sda1 init=/bin/sh</ROOT><KERNEL>/boot/k</KERNEL></OS>", "OS/ROOT"),
        ("<VCPU>-3</VCPU>", "VCPU"),
        ("<CPU>inf</CPU>", "CPU"),
        ('<RAW><TYPE>xen</TYPE><DATA>disk = [ "file:/etc/shadow,xvdz,r" ]</DATA></RAW>', "RAW"),
        ("<RAW><TYPE>xen</TYPE><DATA>on_crash = preserve</DATA></RAW>", "RAW/DATA"),
        ('<RAW><TYPE>xen</TYPE><DATA>on_crash = "x"; kernel = "/x"</DATA></RAW>', "RAW/DATA"),
    ],
)
def test_a_value_that_would_add_a_key_or_reach_a_host_file_is_refused(template, attribute):
    """Finding 2: commas in NIC, GRAPHICS and DISK TARGET values added keys to the vif, vfb and
    disk specs, and RAW was appended as is; each is now refused with the attribute named."""
    with pytest.raises(ValueError, match=f"^[^ ]*{attribute}[^ ]* [=(]") as caught:
        config(template)
    assert "vnclisten=::" not in str(caught.value)  # a password is never shown


def test_the_images_folder_must_be_this_vms_own():
    """The disks are <images>/disk.i, so <images> must be <VM_DIR>/<vid>/images of this VM."""
    document = "<VM><ID>5</ID><TEMPLATE><MEMORY>64</MEMORY></TEMPLATE></VM>"
    for images in ("/vm/6/images", "/vm/5/../6/images", "relative/5/images", "/vm 1/5/images"):
        with pytest.raises(ValueError, match="images folder"):
            render_config(*template_of(document), images)


def test_xl_list_is_parsed_by_name_and_the_state_flags_mapped():
    """The recorded `xl list` of the IM tests: Domain-0 and two VMs; r/b a, p p, c e."""
    domains = parse_xl_list((FIXTURES / "xen" / "xl_list.txt").read_text())
    assert sorted(domains) == ["Domain-0", "one-12", "one-15"]
    assert domains["one-15"].memory_mb == 2048 and domains["one-15"].cpu_seconds == 1045.3
    assert [state_of(f) for f in ("r-----", "-b----", "--p---", "----c-", "------")] == list(
        "aapea"
    )


class Driver:
    """The driver's actions in-process; host01 runs here, so the fake xl answers."""

    def __init__(self, tmp_path: Path, monkeypatch, **settings: object) -> None:
        monkeypatch.setenv("PATH", f"{XL}:{os.environ['PATH']}")
        monkeypatch.setenv("XL_CALLS", str(tmp_path / "calls"))
        monkeypatch.setenv("XL_STATE", str(tmp_path / "state"))
        run, put = runners(SshPool(), frozenset({"host01"}))
        self.ctx = Context(run, put, str(tmp_path / "var"), **settings)
        self.actions, self.stream, self.tmp = actions(self.ctx), io.BytesIO(), tmp_path

    def __call__(self, line: str) -> str:
        words = line.split()
        request = Request(words[0], words[1], tuple(words[2:]))
        log = Logger(Output(self.stream), request.id)
        return (run_action(self.actions[request.action], request, log) or "").rstrip("\n")

    def calls(self) -> list[str]:
        return (self.tmp / "calls").read_text().splitlines()

    def set_state(self, state: str) -> None:
        (self.tmp / "state").write_text(state + "\n")


@pytest.fixture
def xen(tmp_path, monkeypatch):
    (tmp_path / "var" / "5").mkdir(parents=True)
    (tmp_path / "var" / "5" / "deployment.0").write_text(
        "<VM><ID>5</ID><TEMPLATE><MEMORY>64</MEMORY><DISK><TARGET>hda</TARGET></DISK></TEMPLATE></VM>"
    )
    return Driver(tmp_path, monkeypatch, shutdown_timeout=0.3, interval=0.05)


def test_the_life_of_a_vm_is_this_sequence_of_xl_commands(xen, tmp_path):
    """DEPLOY, POLL, SAVE, RESTORE, MIGRATE, SHUTDOWN as xl create/list/save/restore/migrate."""
    remote = f"{tmp_path}/vm/5/images/deployment.0"
    checkpoint = f"{tmp_path}/vm/5/images/checkpoint"
    assert xen(f"DEPLOY 5 host01 {remote} -") == "DEPLOY SUCCESS 5 one-5"
    assert Path(remote).read_text().startswith('name = "one-5"\nmemory = 64\n')
    assert xen("POLL 5 host01 one-5 -") == "POLL SUCCESS 5 STATE=a USEDMEMORY=65536"
    assert xen("POLL 5 host01 one-5 -") == "POLL SUCCESS 5 STATE=a USEDMEMORY=65536 USEDCPU=0"
    assert xen(f"SAVE 5 host01 one-5 {checkpoint}") == "SAVE SUCCESS 5 -"
    assert xen("POLL 5 host01 one-5 -") == "POLL SUCCESS 5 STATE=d"
    assert xen(f"RESTORE 5 host01 one-5 {checkpoint}") == "RESTORE SUCCESS 5 -"
    assert xen("MIGRATE 5 host01 one-5 host02") == "MIGRATE SUCCESS 5 -"
    xen.set_state("running")
    assert xen("SHUTDOWN 5 host01 one-5 -") == "SHUTDOWN SUCCESS 5 -"
    assert xen.calls() == [
        f"create {remote}", "list one-5", "list one-5", f"save one-5 {checkpoint}",
        "list one-5", f"restore {checkpoint}", "migrate one-5 host02", "shutdown one-5",
        "list one-5",
    ]  # fmt: skip


@pytest.mark.parametrize(("state", "letter"), [("paused", "p"), ("crashed", "e")])
def test_poll_maps_paused_and_crashed_domains(xen, state, letter):
    """--p--- polls as p, ----c- as e."""
    xen.set_state(state)
    assert xen("POLL 5 host01 one-5 -").startswith(f"POLL SUCCESS 5 STATE={letter} ")


def test_a_shutdown_the_guest_ignores_fails_after_the_timeout(xen, monkeypatch):
    """The domain is still listed after --shutdown-timeout: FAILURE, the domain keeps running."""
    xen.set_state("running")
    monkeypatch.setenv("XL_SHUTDOWN", "ignore")
    assert xen("SHUTDOWN 5 host01 one-5 -") == (
        "SHUTDOWN FAILURE 5 one-5 still running 0.3 s after shutdown"
    )
    assert xen("POLL 5 host01 one-5 -").startswith("POLL SUCCESS 5 STATE=a ")


def test_cancel_destroys_and_a_domain_already_gone_is_a_success(xen):
    """xl destroy; xl's 'invalid domain identifier' means there is nothing left to cancel."""
    xen.set_state("running")
    assert xen("CANCEL 5 host01 one-5 -") == "CANCEL SUCCESS 5 -"
    assert xen("CANCEL 5 host01 one-5 -") == "CANCEL SUCCESS 5 -"
    assert xen.calls() == ["destroy one-5", "destroy one-5"]


def test_each_action_sent_again_after_a_crash_answers_success_when_it_is_done(xen, tmp_path):
    """Issue 11 (drivers make every action idempotent): oned re-issues the action in flight
    at a crash. A DEPLOY whose domain runs answers its name, SHUTDOWN of a domain gone, SAVE
    whose domain is gone and checkpoint there, RESTORE whose domain runs: SUCCESS each."""
    remote = f"{tmp_path}/vm/5/images/deployment.0"
    checkpoint = tmp_path / "vm" / "5" / "images" / "checkpoint"
    assert xen(f"DEPLOY 5 host01 {remote} -") == "DEPLOY SUCCESS 5 one-5"
    assert xen(f"DEPLOY 5 host01 {remote} -") == "DEPLOY SUCCESS 5 one-5"
    assert xen(f"SAVE 5 host01 one-5 {checkpoint}") == "SAVE SUCCESS 5 -"
    checkpoint.write_text("saved")  # the fake xl writes none
    assert xen(f"SAVE 5 host01 one-5 {checkpoint}") == "SAVE SUCCESS 5 -"
    assert xen(f"RESTORE 5 host01 one-5 {checkpoint}") == "RESTORE SUCCESS 5 -"
    assert xen(f"RESTORE 5 host01 one-5 {checkpoint}") == "RESTORE SUCCESS 5 -"
    assert xen("SHUTDOWN 5 host01 one-5 -") == "SHUTDOWN SUCCESS 5 -"
    assert xen("SHUTDOWN 5 host01 one-5 -") == "SHUTDOWN SUCCESS 5 -"


def test_a_save_whose_domain_is_gone_without_a_checkpoint_still_fails(xen, tmp_path):
    """Nothing says it was saved: FAILURE with xl's reason (oned then polls the domain)."""
    assert xen(f"SAVE 5 host01 one-5 {tmp_path}/none") == (
        "SAVE FAILURE 5 xl save failed on host01: one-5 is an invalid domain identifier (rc=-6)"
    )


def test_a_deploy_of_a_value_outside_its_allow_list_fails_and_runs_nothing(xen, tmp_path):
    """Finding 2 at the driver's edge: DEPLOY FAILURE names the attribute; no xl command ran."""
    (tmp_path / "var" / "5" / "deployment.0").write_text(
        "<VM><ID>5</ID><TEMPLATE><MEMORY>64</MEMORY>"
        "<NIC><BRIDGE>br0,script=/tmp/evil</BRIDGE></NIC></TEMPLATE></VM>"
    )
    reply = xen(f"DEPLOY 5 host01 {tmp_path}/vm/5/images/deployment.0 -")
    assert reply == (
        f"DEPLOY FAILURE 5 cannot make the Xen configuration from {tmp_path}/var/5/deployment.0: "
        'NIC/BRIDGE = "br0,script=/tmp/evil": not a network interface name (15 characters at most)'
    )
    assert not (tmp_path / "calls").exists()
    assert not (tmp_path / "vm").exists()


def test_the_deployment_file_is_written_for_its_owner_only(xen, tmp_path):
    """Finding 4: it may hold CONTEXT values; it was written 0644 (on a host: put's 0644)."""
    remote = tmp_path / "vm" / "5" / "images" / "deployment.0"
    assert xen(f"DEPLOY 5 host01 {remote} -") == "DEPLOY SUCCESS 5 one-5"
    assert remote.stat().st_mode & 0o777 == 0o600


def test_a_failing_xl_command_fails_the_action_with_xls_message(xen, tmp_path):
    """SAVE of a domain xl does not know: FAILURE quoting xl."""
    assert xen(f"SAVE 5 host01 one-5 {tmp_path}/ckpt") == (
        "SAVE FAILURE 5 xl save failed on host01: one-5 is an invalid domain identifier (rc=-6)"
    )


def test_one_vmm_xen_answers_as_oned_runs_it_with_xl_on_localhost(tmp_path):
    """The executable on pipes; localhost is the front-end, so the fake xl runs here."""
    (tmp_path / "var" / "5").mkdir(parents=True)
    (tmp_path / "var" / "5" / "deployment.0").write_text(
        "<VM><ID>5</ID><TEMPLATE><MEMORY>64</MEMORY></TEMPLATE></VM>"
    )
    env = {
        "ONE_LOCATION": str(tmp_path), "PATH": f"{XL}:{os.environ['PATH']}",
        "XL_CALLS": str(tmp_path / "calls"), "XL_STATE": str(tmp_path / "state"),
    }  # fmt: skip
    driver = DriverProcess("one_vmm_xen", "", env=env)
    try:
        assert driver.init() == "INIT SUCCESS - -"
        driver.send(f"DEPLOY 5 localhost {tmp_path}/vm/5/images/deployment.0 -")
        assert driver.reply("DEPLOY", 5) == "DEPLOY SUCCESS 5 one-5"
        driver.send("POLL 5 localhost one-5 -")
        assert driver.reply("POLL", 5) == "POLL SUCCESS 5 STATE=a USEDMEMORY=65536"
    finally:
        driver.close()
