"""one_vmm_kvm: VM XML to domain XML on literal documents, and the actions on libvirt's test driver.

The action tests run in-process against ``test:///default`` (libvirt's built-in driver, no
daemon): it creates, saves, restores, shuts down and destroys domains but cannot migrate, so live
migration itself is covered by tests/e2e/test_vmm_kvm.py on two real libvirtds.
"""

from __future__ import annotations

import contextlib
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from drivers.protocol import Request
from drivers.serve import Logger, Output, run_action
from drivers.vmm_kvm import Context, actions, local_deployment_file
from drivers.vmm_kvm_xml import Placement, RenderError, parse_vm, render_domain

libvirt = pytest.importorskip("libvirt")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vmm"
AT = Placement("/srv/cloud/one/var/7/images", "/srv/cloud/one/var/7/console.log")


def vm(template: str, vid: int = 7) -> str:
    """A VM document around template elements (values without CDATA are fine too)."""
    return f"<VM><ID>{vid}</ID><TEMPLATE><MEMORY>64</MEMORY>{template}</TEMPLATE></VM>"


def render(template: str, at: Placement = AT) -> ET.Element:
    return ET.fromstring(render_domain(parse_vm(vm(template)), at))


def attrs(root: ET.Element, path: str) -> list[dict[str, str]]:
    return [element.attrib for element in root.iterfind(path)]


@pytest.mark.parametrize("name", ["ttylinux", "everything"])
def test_a_vm_document_renders_to_the_recorded_domain(name):
    """The seed's ttylinux and a template using every attribute give their recorded domains."""
    vid = {"ttylinux": 2, "everything": 42}[name]
    at = Placement(f"/srv/cloud/one/var/{vid}/images", f"/srv/cloud/one/var/{vid}/console.log")
    document = (FIXTURES / f"deploy_{name}.vm.xml").read_text()
    assert (
        render_domain(parse_vm(document), at)
        == (FIXTURES / f"deploy_{name}.domain.xml").read_text()
    )


def test_memory_vcpu_and_the_name_come_from_the_template():
    """MEMORY is MB (the domain has KiB), VCPU defaults to 1, the name is one-<vid>."""
    root = render("<VCPU>4</VCPU>")
    assert root.get("type") == "kvm" and root.findtext("name") == "one-7"
    assert root.find("memory").text == "65536" and root.find("memory").get("unit") == "KiB"
    assert root.findtext("vcpu") == "4"
    assert render("").findtext("vcpu") == "1"


def test_the_domain_type_is_the_one_asked_for():
    """qemu (TCG) where KVM does not work."""
    at = Placement(AT.images_dir, AT.console_log, domain_type="qemu")
    assert render("", at).get("type") == "qemu"


def test_direct_kernel_boot_puts_root_before_the_kernel_command_line():
    """OS KERNEL, INITRD, ROOT (under /dev/), KERNEL_CMD; no boot device unless BOOT is given."""
    root = render(
        "<OS><KERNEL>/k</KERNEL><INITRD>/i</INITRD><ROOT>vda</ROOT>"
        "<KERNEL_CMD>console=ttyS0</KERNEL_CMD></OS>"
    )
    assert root.findtext("os/kernel") == "/k" and root.findtext("os/initrd") == "/i"
    assert root.findtext("os/cmdline") == "root=/dev/vda console=ttyS0"
    assert root.find("os/boot") is None


@pytest.mark.parametrize(
    ("boot", "devices"),
    [("", ["hd"]), ("cdrom", ["cdrom"]), ("network,hd", ["network", "hd"]), ("fd", ["fd"])],
)
def test_boot_devices_default_to_the_hard_disk(boot, devices):
    """OS BOOT names the devices to boot from in order; hd without it."""
    root = render(f"<OS><BOOT>{boot}</BOOT></OS>" if boot else "")
    assert [a["dev"] for a in attrs(root, "os/boot")] == devices


def test_a_bootloader_is_kept():
    """OS BOOTLOADER becomes the domain's <bootloader>."""
    assert render("<OS><BOOTLOADER>/usr/bin/pygrub</BOOTLOADER></OS>").findtext("bootloader") == (
        "/usr/bin/pygrub"
    )


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ("", ["acpi"]),
        ("<FEATURES><ACPI>no</ACPI></FEATURES>", []),
        ("<FEATURES><PAE>yes</PAE><ACPI>yes</ACPI></FEATURES>", ["pae", "acpi"]),
        ("<FEATURES><PAE>YES</PAE><ACPI>no</ACPI></FEATURES>", ["pae"]),
    ],
)
def test_acpi_is_on_unless_turned_off_and_pae_only_when_asked(features, expected):
    """SHUTDOWN needs ACPI, so it is the default; PAE is as 1.4 had it."""
    assert [e.tag for e in render(features).iterfind("features/*")] == expected


@pytest.mark.parametrize(
    ("disk", "kind", "device", "source", "target"),
    [
        ("<TYPE>disk</TYPE><TARGET>hda</TARGET>", "file", "disk", "file", "hda"),
        ("<TYPE>cdrom</TYPE>", "file", "cdrom", "file", "hda"),
        ("<TYPE>floppy</TYPE>", "file", "floppy", "file", "fda"),
        ("<TYPE>swap</TYPE><SIZE>512</SIZE><BUS>virtio</BUS>", "file", "disk", "file", "vda"),
        ("<TYPE>fs</TYPE><SIZE>512</SIZE><FORMAT>ext3</FORMAT>", "file", "disk", "file", "hda"),
        ("<TYPE>block</TYPE><SOURCE>/dev/sdb</SOURCE>", "block", "disk", "dev", "hda"),
        ("<SOURCE>/srv/a.img</SOURCE><BUS>scsi</BUS>", "file", "disk", "file", "sda"),
    ],
)
def test_every_disk_type_is_its_image_in_the_vm_directory(disk, kind, device, source, target):
    """DISK i is <images>/disk.i whatever its SOURCE; type and bus choose the libvirt device."""
    element = render(f"<DISK>{disk}</DISK>").find("devices/disk")
    assert (element.get("type"), element.get("device")) == (kind, device)
    assert element.find("source").attrib == {source: f"{AT.images_dir}/disk.0"}
    assert element.find("target").get("dev") == target
    assert (element.find("readonly") is not None) == (device == "cdrom")


def test_readonly_disks_and_buses_are_kept():
    """READONLY = yes gives <readonly/>, BUS the target's bus."""
    element = render("<DISK><TARGET>vdc</TARGET><BUS>virtio</BUS><READONLY>yes</READONLY></DISK>")
    disk = element.find("devices/disk")
    assert disk.find("target").attrib == {"dev": "vdc", "bus": "virtio"}
    assert disk.find("readonly") is not None


def test_disks_without_target_take_the_first_free_letter():
    """hda is taken by the first DISK, so the second gets hdb."""
    root = render("<DISK><TARGET>hda</TARGET></DISK><DISK><TYPE>disk</TYPE></DISK>")
    assert [a["dev"] for a in attrs(root, "devices/disk/target")] == ["hda", "hdb"]


def test_the_context_cdrom_follows_the_disks_at_its_target_or_the_next_hd_letter():
    """CONTEXT is disk.<number of DISKs>, read-only, at TARGET or hd + the next free letter."""
    root = render("<DISK><TARGET>hda</TARGET></DISK><DISK/><CONTEXT><IP>1.2.3.4</IP></CONTEXT>")
    cdrom = root.findall("devices/disk")[-1]
    assert cdrom.get("device") == "cdrom" and cdrom.find("readonly") is not None
    assert cdrom.find("source").get("file") == f"{AT.images_dir}/disk.2"
    assert cdrom.find("target").get("dev") == "hdc"
    with_target = render("<DISK/><CONTEXT><TARGET>hdd</TARGET></CONTEXT>")
    assert with_target.findall("devices/disk/target")[-1].get("dev") == "hdd"


def test_a_nic_carries_bridge_mac_target_script_and_model():
    """A bridged NIC with everything; without BRIDGE a plain tap (type ethernet)."""
    root = render(
        "<NIC><BRIDGE>br0</BRIDGE><MAC>02:00:01:02:03:04</MAC><TARGET>one-7-0</TARGET>"
        "<SCRIPT>/sbin/ifup-one</SCRIPT><MODEL>virtio</MODEL><IP>1.2.3.4</IP></NIC><NIC/>"
    )
    bridged, plain = root.findall("devices/interface")
    assert bridged.get("type") == "bridge" and bridged.find("source").get("bridge") == "br0"
    assert bridged.find("mac").get("address") == "02:00:01:02:03:04"
    assert bridged.find("target").get("dev") == "one-7-0"
    assert bridged.find("script").get("path") == "/sbin/ifup-one"
    assert bridged.find("model").get("type") == "virtio"
    assert plain.get("type") == "ethernet" and list(plain) == []


def test_vnc_graphics_keep_listen_port_password_and_keymap():
    """GRAPHICS vnc as the seed writes it; without PORT libvirt picks one."""
    root = render(
        "<GRAPHICS><TYPE>VNC</TYPE><LISTEN>0.0.0.0</LISTEN><PORT>5902</PORT>"
        "<PASSWD>pw</PASSWD><KEYMAP>es</KEYMAP></GRAPHICS>"
    )
    assert attrs(root, "devices/graphics") == [
        {"type": "vnc", "port": "5902", "listen": "0.0.0.0", "passwd": "pw", "keymap": "es"}
    ]
    assert attrs(render("<GRAPHICS><TYPE>vnc</TYPE></GRAPHICS>"), "devices/graphics") == [
        {"type": "vnc", "autoport": "yes"}
    ]
    assert attrs(render("<GRAPHICS><TYPE>sdl</TYPE></GRAPHICS>"), "devices/graphics") == [
        {"type": "sdl"}
    ]


def test_inputs_are_rendered():
    """INPUT type and bus."""
    root = render(
        "<INPUT><TYPE>tablet</TYPE><BUS>usb</BUS></INPUT><INPUT><TYPE>mouse</TYPE></INPUT>"
    )
    assert attrs(root, "devices/input") == [{"type": "tablet", "bus": "usb"}, {"type": "mouse"}]


def test_raw_kvm_data_is_appended_verbatim_and_xen_data_ignored():
    """RAW type=kvm elements land in <domain>; RAW of another hypervisor is not ours."""
    root = render(
        "<RAW><TYPE>kvm</TYPE><DATA><![CDATA[<cpu mode='host-model'/>]]></DATA></RAW>"
        "<RAW><TYPE>xen</TYPE><DATA>on_crash = 'preserve'</DATA></RAW>"
    )
    assert root[-1].tag == "cpu" and root[-1].get("mode") == "host-model"


def test_the_serial_console_goes_to_the_vm_directory():
    """The guest's console is a file QEMU appends to (kept over save, restore, migration)."""
    assert attrs(render(""), "devices/serial/source") == [{"path": AT.console_log, "append": "on"}]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("<RAW><TYPE>kvm</TYPE><DATA><![CDATA[<clock>]]></DATA></RAW>", "RAW/DATA is not well"),
        ("<RAW><TYPE>kvm</TYPE><DATA>just text</DATA></RAW>", "RAW/DATA must hold XML elements"),
        ("<DISK><TYPE>tape</TYPE></DISK>", 'DISK/TYPE = "tape": not one of disk'),
        ("<GRAPHICS><TYPE>spice</TYPE></GRAPHICS>", 'GRAPHICS/TYPE = "spice": must be vnc or sdl'),
        ("<OS><BOOT>usb</BOOT></OS>", 'OS/BOOT = "usb": not one of hd, cdrom, fd, network'),
        ("<VCPU>two</VCPU>", 'VCPU = "two": must be a positive integer'),
        ("<FEATURES><ACPI>maybe</ACPI></FEATURES>", 'ACPI = "maybe": must be yes or no'),
    ],
)
def test_a_template_libvirt_could_not_take_is_refused_naming_the_attribute(template, message):
    """The message says which attribute is wrong, before anything reaches the host."""
    with pytest.raises(RenderError, match="^" + message.replace("(", r"\(")):
        render(template)


SHADOW_DISK = (
    "<devices><disk type='file' device='disk'><source file='/etc/shadow'/>"
    "<target dev='vdz'/></disk></devices>"
)


@pytest.mark.parametrize(
    ("template", "attribute"),
    [
        (f"<RAW><TYPE>kvm</TYPE><DATA><![CDATA[{SHADOW_DISK}]]></DATA></RAW>", "RAW/DATA"),
        (
            "<RAW><TYPE>kvm</TYPE><DATA><![CDATA[<qemu:commandline xmlns:qemu="
            "'http://libvirt.org/schemas/domain/qemu/1.0'><qemu:arg value='-hdb'/>"
            "<qemu:arg value='/etc/shadow'/></qemu:commandline>]]></DATA></RAW>",
            "RAW/DATA",
        ),
        (
            "<RAW><TYPE>kvm</TYPE><DATA><![CDATA[</raw></domain><domain>]]></DATA></RAW>",
            "RAW/DATA",
        ),
        ("<DISK><TARGET>vda' bus='usb</TARGET></DISK>", "DISK/TARGET"),
        ("<DISK><TARGET>../../dev/sda</TARGET></DISK>", "DISK/TARGET"),
        ("<DISK><BUS>virtio-scsi-evil</BUS></DISK>", "DISK/BUS"),
        ("<DISK><DRIVER>raw,file=/etc/shadow</DRIVER></DISK>", "DISK/DRIVER"),
        ("<CONTEXT><TARGET>hdd/x</TARGET></CONTEXT>", "CONTEXT/TARGET"),
        ("<NIC><BRIDGE>br0 evil</BRIDGE></NIC>", "NIC/BRIDGE"),
        ("<NIC><MAC>02:00:00:00:00:01,evil</MAC></NIC>", "NIC/MAC"),
        ("<NIC><TARGET>vnet0/../x</TARGET></NIC>", "NIC/TARGET"),
        ("<NIC><SCRIPT>/var/tmp/../../tmp/evil</SCRIPT></NIC>", "NIC/SCRIPT"),
        ("<NIC><MODEL>virtio,addr=0x3</MODEL></NIC>", "NIC/MODEL"),
        ("<GRAPHICS><TYPE>vnc</TYPE><LISTEN>0.0.0.0 ::</LISTEN></GRAPHICS>", "GRAPHICS/LISTEN"),
        ("<GRAPHICS><TYPE>vnc</TYPE><PORT>-1</PORT></GRAPHICS>", "GRAPHICS/PORT"),
        ("<GRAPHICS><TYPE>vnc</TYPE><KEYMAP>../../x</KEYMAP></GRAPHICS>", "GRAPHICS/KEYMAP"),
        ("<OS><KERNEL>/srv/../etc/shadow</KERNEL></OS>", "OS/KERNEL"),
        ("<OS><KERNEL>/k</KERNEL><INITRD>relative.img</INITRD></OS>", "OS/INITRD"),
        ("<OS><BOOTLOADER>/usr/bin/pygrub -q</BOOTLOADER></OS>", "OS/BOOTLOADER"),
        ("<OS><ARCH>x86_64 evil</ARCH></OS>", "OS/ARCH"),
        ("<OS><MACHINE>pc,evil=1</MACHINE></OS>", "OS/MACHINE"),
        ("<INPUT><TYPE>evdev</TYPE></INPUT>", "INPUT/TYPE"),
        ("<INPUT><TYPE>mouse</TYPE><BUS>i2c</BUS></INPUT>", "INPUT/BUS"),
    ],
)
def test_a_value_libvirt_would_read_as_something_else_is_refused(template, attribute):
    """Finding 2: RAW for kvm attached /etc/shadow as a disk, and every other rendered value
    went to the domain as it came; now each must match its allow-list, the attribute named."""
    with pytest.raises(RenderError, match=f"^{attribute}"):
        render(template)


def test_the_images_folder_must_be_this_vms_own():
    """The disks are <images>/disk.i, so <images> must be <VM_DIR>/<vid>/images of this VM."""
    for images in ("/srv/one/var/8/images", "/srv/one/var/7/../8/images", "var/7/images"):
        with pytest.raises(RenderError, match="images folder"):
            render("", Placement(images, "/srv/one/var/7/console.log"))


def test_a_vm_without_memory_or_a_document_that_is_not_a_vm_is_refused():
    """MEMORY is required; a document must be a <VM> with an <ID>."""
    with pytest.raises(RenderError, match=r"^MEMORY is missing$"):
        render_domain(parse_vm("<VM><ID>7</ID><TEMPLATE/></VM>"), AT)
    with pytest.raises(RenderError, match="not a VM document"):
        parse_vm("<TEMPLATE><MEMORY>64</MEMORY></TEMPLATE>")


def test_the_local_deployment_file_is_found_from_the_remote_path():
    """As 1.4's one_vmm_kvm.rb did: <VM_DIR>/<vid>/images/deployment.<seq> -> <var>/<vid>/..."""
    remote = "/srv/cloud/vm/12/images/deployment.3"
    assert local_deployment_file(remote, "/one/var") == "/one/var/12/deployment.3"


# ---------------------------------------------------------------------------------------------
# The actions on libvirt's test driver


class Driver:
    """The driver's actions in-process on test:///default, answering like serve() would."""

    def __init__(self, var: Path, probe: bool = False, **settings: object) -> None:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        settings.setdefault("uri", "test:///default")
        settings.setdefault("check_seconds", 0.05)
        self.ctx = Context(var_dir=str(var), **settings)
        if not probe:  # the test driver has no domain capabilities: KVM is taken as working
            for host in ("host01", "host02", "old"):
                self.ctx.verdicts.set(host, "kvm")
        self.actions = actions(self.ctx)
        self.stream = io.BytesIO()

    def __call__(self, line: str) -> str:
        words = line.split()
        request = Request(words[0], words[1], tuple(words[2:]))
        log = Logger(Output(self.stream), request.id)
        return (run_action(self.actions[request.action], request, log) or "").rstrip("\n")

    @property
    def logs(self) -> list[str]:
        return self.stream.getvalue().decode().splitlines()


@pytest.fixture
def driver(tmp_path):
    """A driver whose deployment files are written for VMs 7 and 8; their domains go after."""
    for vid in (7, 8):
        (tmp_path / "var" / str(vid)).mkdir(parents=True)
        (tmp_path / "var" / str(vid) / "deployment.0").write_text(
            vm(f"<NIC><BRIDGE>br0</BRIDGE><TARGET>one-{vid}-0</TARGET></NIC>", vid)
        )
    made = Driver(tmp_path / "var", shutdown_timeout=2.0)
    yield made
    conn = libvirt.open("test:///default")
    for name in ("one-7", "one-8"):
        with contextlib.suppress(libvirt.libvirtError):
            conn.lookupByName(name).destroy()
    conn.close()


def remote(tmp_path: Path, vid: int = 7) -> str:
    return f"{tmp_path}/vm/{vid}/images/deployment.0"


def test_deploy_writes_the_domain_to_the_remote_path_and_answers_its_name(driver, tmp_path):
    """DEPLOY SUCCESS <vid> one-<vid>; the rendered domain is at the remote path."""
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == "DEPLOY SUCCESS 7 one-7"
    written = ET.fromstring(Path(remote(tmp_path)).read_text())
    assert written.findtext("name") == "one-7"
    assert written.find("devices/serial/source").get("path") == f"{tmp_path}/vm/7/console.log"


def test_a_deploy_repeated_for_a_running_domain_answers_it_again(driver, tmp_path):
    """A DEPLOY oned re-issues after a restart finds its domain already there: success."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == "DEPLOY SUCCESS 7 one-7"


def test_a_deploy_without_its_deployment_file_fails_naming_the_file(driver, tmp_path):
    """The local copy is <var>/<vid>/deployment.<seq>; missing, it is named."""
    reply = driver(f"DEPLOY 9 host01 {tmp_path}/vm/9/images/deployment.0 -")
    assert reply == (
        f"DEPLOY FAILURE 9 cannot read the deployment file {tmp_path}/var/9/deployment.0: "
        "No such file or directory"
    )


def test_a_deploy_of_a_bad_template_fails_naming_the_attribute(driver, tmp_path):
    """Nothing is created when the domain cannot be rendered."""
    (tmp_path / "var" / "8" / "deployment.0").write_text(vm("<DISK><TYPE>tape</TYPE></DISK>", 8))
    reply = driver(f"DEPLOY 8 host01 {remote(tmp_path, 8)} -")
    assert reply.startswith(f"DEPLOY FAILURE 8 cannot make the domain from {remote(tmp_path, 8)}: ")
    assert 'DISK/TYPE = "tape"' in reply
    assert driver("POLL 8 host01 one-8 -") == "POLL SUCCESS 8 STATE=d"


def test_a_deploy_of_raw_that_attaches_a_host_file_fails_naming_it(driver, tmp_path):
    """Finding 2 at the driver's edge: nothing is written to the host, no domain is created."""
    raw = f"<RAW><TYPE>kvm</TYPE><DATA><![CDATA[{SHADOW_DISK}]]></DATA></RAW>"
    (tmp_path / "var" / "8" / "deployment.0").write_text(vm(raw, 8))
    reply = driver(f"DEPLOY 8 host01 {remote(tmp_path, 8)} -")
    assert reply == (
        f"DEPLOY FAILURE 8 cannot make the domain from {remote(tmp_path, 8)}: RAW/DATA: "
        "a device in <devices> must be one of controller, input, memballoon, panic, sound, "
        "video, watchdog"
    )
    assert not Path(remote(tmp_path, 8)).exists()
    assert driver("POLL 8 host01 one-8 -") == "POLL SUCCESS 8 STATE=d"


def test_a_deployment_file_that_is_a_domain_already_is_refused(driver, tmp_path):
    """A <domain> would skip every check (it was taken as it is); oned always writes the VM."""
    (tmp_path / "var" / "8" / "deployment.0").write_text(
        "<domain type='test'><name>one-8</name><memory>1024</memory><devices><disk type='file'>"
        "<source file='/etc/shadow'/><target dev='vda'/></disk></devices></domain>"
    )
    reply = driver(f"DEPLOY 8 host01 {remote(tmp_path, 8)} -")
    assert reply.startswith("DEPLOY FAILURE 8 ") and "not a VM document" in reply
    assert driver("POLL 8 host01 one-8 -") == "POLL SUCCESS 8 STATE=d"


def test_the_deployment_file_is_written_for_its_owner_only(driver, tmp_path):
    """Finding 4: the domain may hold the VNC password; it was written 0644."""
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == "DEPLOY SUCCESS 7 one-7"
    assert Path(remote(tmp_path)).stat().st_mode & 0o777 == 0o600


def test_poll_reports_state_memory_and_traffic_and_cpu_from_the_second_poll(driver, tmp_path):
    """STATE=a, USEDMEMORY in KB, NETRX/NETTX; USEDCPU needs two samples."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    first = driver("POLL 7 host01 one-7 -")
    assert first.startswith("POLL SUCCESS 7 STATE=a USEDMEMORY=65536 NETRX=")
    assert "USEDCPU" not in first and " NETTX=" in first
    assert " USEDCPU=" in driver("POLL 7 host01 one-7 -")


def test_a_paused_domain_polls_as_p_and_a_missing_one_as_d(driver, tmp_path):
    """The STATE map: paused -> p, not found -> d."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    conn = libvirt.open("test:///default")
    conn.lookupByName("one-7").suspend()
    conn.close()
    assert driver("POLL 7 host01 one-7 -").startswith("POLL SUCCESS 7 STATE=p ")
    assert driver("POLL 8 host01 one-8 -") == "POLL SUCCESS 8 STATE=d"


def test_save_stops_the_domain_into_the_checkpoint_and_restore_brings_it_back(driver, tmp_path):
    """SAVE, POLL d, RESTORE, POLL a."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    checkpoint = f"{tmp_path}/vm/7/images/checkpoint"
    assert driver(f"SAVE 7 host01 one-7 {checkpoint}") == "SAVE SUCCESS 7 -"
    assert Path(checkpoint).exists()
    assert driver("POLL 7 host01 one-7 -") == "POLL SUCCESS 7 STATE=d"
    assert driver(f"RESTORE 7 host01 one-7 {checkpoint}") == "RESTORE SUCCESS 7 -"
    assert driver("POLL 7 host01 one-7 -").startswith("POLL SUCCESS 7 STATE=a ")


def test_save_of_a_domain_that_is_not_there_fails_naming_it(driver, tmp_path):
    """SAVE FAILURE with the domain and the host."""
    assert driver(f"SAVE 8 host01 one-8 {tmp_path}/ckpt") == (
        "SAVE FAILURE 8 one-8 is not running on host01"
    )


def test_restore_from_a_missing_checkpoint_fails_with_libvirts_reason(driver, tmp_path):
    """The file is named in the message."""
    reply = driver(f"RESTORE 7 host01 one-7 {tmp_path}/nothing")
    assert reply.startswith(f"RESTORE FAILURE 7 cannot restore host01:{tmp_path}/nothing: ")


def test_shutdown_and_cancel_end_the_domain_and_succeed_when_it_is_already_gone(driver, tmp_path):
    """SHUTDOWN waits for the domain to go; CANCEL destroys; both are idempotent."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    assert driver("SHUTDOWN 7 host01 one-7 -") == "SHUTDOWN SUCCESS 7 -"
    assert driver("POLL 7 host01 one-7 -") == "POLL SUCCESS 7 STATE=d"
    assert driver("SHUTDOWN 7 host01 one-7 -") == "SHUTDOWN SUCCESS 7 -"
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    assert driver("CANCEL 7 host01 one-7 -") == "CANCEL SUCCESS 7 -"
    assert driver("CANCEL 7 host01 one-7 -") == "CANCEL SUCCESS 7 -"
    assert "LOG - 7 one-7 is not running on host01: nothing to cancel" in driver.logs


def test_save_and_restore_sent_again_after_a_crash_answer_success(driver, tmp_path):
    """Issue 11 (every action idempotent): a SAVE whose domain is gone and checkpoint there,
    and a RESTORE whose domain runs again, were done before the crash: SUCCESS, not FAILURE."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    checkpoint = f"{tmp_path}/vm/7/images/checkpoint"
    assert driver(f"SAVE 7 host01 one-7 {checkpoint}") == "SAVE SUCCESS 7 -"
    assert driver(f"SAVE 7 host01 one-7 {checkpoint}") == "SAVE SUCCESS 7 -"
    assert driver(f"RESTORE 7 host01 one-7 {checkpoint}") == "RESTORE SUCCESS 7 -"
    assert driver(f"RESTORE 7 host01 one-7 {checkpoint}") == "RESTORE SUCCESS 7 -"
    assert "LOG - 7 one-7 is running on host01 already: restored before" in driver.logs


NODE = (
    "<node><cpu><mhz>1000</mhz><model>i686</model><active>1</active><total>1</total>"
    "<nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads></cpu>"
    "<memory>1048576</memory></node>"
)


def test_a_migrate_sent_again_when_the_domain_runs_on_the_destination_answers_success(
    driver, tmp_path
):
    """Issue 11: the migration finished before the crash; the source (an empty libvirt test
    node) no longer has the domain, the destination runs it: SUCCESS. A domain on neither
    host still fails naming the source."""
    node = tmp_path / "empty-node.xml"
    node.write_text(NODE)
    driver.ctx.host_uris = {"old": f"test://{node}"}
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    assert driver("MIGRATE 7 old one-7 host01") == "MIGRATE SUCCESS 7 -"
    assert driver("MIGRATE 8 old one-8 host01") == "MIGRATE FAILURE 8 one-8 is not running on old"


def test_migrate_reports_what_the_hypervisor_said_when_it_cannot(driver, tmp_path):
    """The test driver cannot migrate: MIGRATE FAILURE names both hosts and libvirt's reason."""
    driver(f"DEPLOY 7 host01 {remote(tmp_path)} -")
    reply = driver("MIGRATE 7 host01 one-7 host02")
    assert reply.startswith("MIGRATE FAILURE 7 cannot migrate one-7 from host01 to host02: ")
    assert "not supported" in reply


def test_an_unreachable_host_fails_the_action_naming_the_uri(tmp_path):
    """A URI libvirt cannot open: FAILURE with the URI and libvirt's reason."""
    driver = Driver(tmp_path, uri="test:///no/such/file-{host}.xml")
    reply = driver("POLL 7 host01 one-7 -")
    assert reply.startswith("POLL FAILURE 7 cannot connect to test:///no/such/file-host01.xml: ")


def test_a_host_may_have_its_own_uri():
    """--host-uri NAME=URI wins over the --uri template."""
    ctx = Context(host_uris={"host02": "qemu+tls://h2.example.com/system"})
    assert ctx.uri_of("host01") == "qemu+ssh://host01/system?no_tty=1"
    assert ctx.uri_of("host02") == "qemu+tls://h2.example.com/system"


def test_auto_falls_back_to_qemu_where_kvm_is_not_available_and_remembers_it(
    driver, tmp_path, monkeypatch
):
    """libvirt's 'Domain requires KVM, but it is not available': qemu, and qemu from then on."""
    import drivers.vmm_kvm as vmm_kvm

    real_create, types = vmm_kvm.create, []

    def create(conn, xml):
        types.append(ET.fromstring(xml).get("type"))
        if types[-1] == "kvm":
            libvirt.virResetLastError()  # else libvirtError() takes libvirt's last message
            raise libvirt.libvirtError(
                "unsupported configuration: Domain requires KVM, but it is not available."
            )
        return real_create(conn, xml)

    monkeypatch.setattr(vmm_kvm, "create", create)
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == "DEPLOY SUCCESS 7 one-7"
    assert "LOG W 7 KVM is not available on host01: domain type qemu (TCG)" in driver.logs
    assert ET.fromstring(Path(remote(tmp_path)).read_text()).get("type") == "qemu"
    assert driver(f"DEPLOY 8 host01 {remote(tmp_path, 8)} -") == "DEPLOY SUCCESS 8 one-8"
    assert types == ["kvm", "qemu", "qemu"]


def test_a_forced_domain_type_never_falls_back(tmp_path, monkeypatch):
    """--domain-type kvm: the KVM error is the answer."""
    import drivers.vmm_kvm as vmm_kvm

    def create(conn, xml):
        libvirt.virResetLastError()
        raise libvirt.libvirtError("Domain requires KVM, but it is not available.")

    monkeypatch.setattr(vmm_kvm, "create", create)
    (tmp_path / "var" / "7").mkdir(parents=True)
    (tmp_path / "var" / "7" / "deployment.0").write_text(vm(""))
    driver = Driver(tmp_path / "var", domain_type="kvm")
    assert driver(f"DEPLOY 7 host01 {remote(tmp_path)} -") == (
        "DEPLOY FAILURE 7 cannot create the domain on host01: "
        "Domain requires KVM, but it is not available."
    )
