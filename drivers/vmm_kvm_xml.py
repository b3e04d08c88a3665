"""The pure parts of one_vmm_kvm (VMM: virtual machine manager): the domain XML of a VM, where
its files are, and how libvirt's figures become POLL's.

Input is the VM's XML document as ``one.vm.info`` returns it (onecloud's deployment file), output
the ``<domain>`` that OpenNebula 1.4's LibVirtDriverKVM wrote for the same template: name
``one-<vid>``, MEMORY (MB), VCPU, OS, FEATURES, DISK ``i`` as ``<images>/disk.<i>``, the CONTEXT
cdrom as ``<images>/disk.<number of DISKs>``, NIC, GRAPHICS, INPUT, RAW (type kvm) appended
verbatim, plus a serial console written to a file. Every value goes through its allow-list
(drivers/values.py; RAW within what reaches no host file) and the images folder must be
``<VM_DIR>/<vid>/images`` of this VM: a template the domain cannot be made from raises RenderError
naming the attribute, and nothing is rewritten or dropped.
"""

from __future__ import annotations

import os
import re
import string
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from drivers import values
from drivers.values import BadValue

Value = str | dict[str, str]
DISK_DEVICES = {"disk": "disk", "fs": "disk", "swap": "disk", "block": "disk"}
DISK_DEVICES |= {"cdrom": "cdrom", "floppy": "floppy"}
BOOT_DEVICES = {"hd": "hd", "disk": "hd", "cdrom": "cdrom", "fd": "fd", "floppy": "fd"}
BOOT_DEVICES |= {"network": "network"}
BUS_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "xen": "xvd"}
BUSES = (*BUS_PREFIX, "ide", "fdc")
DRIVERS = ("raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx", "iso")
INPUTS, INPUT_BUSES = ("mouse", "tablet", "keyboard"), ("usb", "ps2", "virtio", "xen")
VECTORS = frozenset({"OS", "FEATURES", "DISK", "NIC", "INPUT", "GRAPHICS", "RAW", "CONTEXT"})
STATES = {1: "a", 2: "a", 3: "p", 4: "a", 5: "-", 6: "e", 7: "p"}  # virDomainState -> STATE
FAILED_PAUSES = frozenset({5, 6, 10, 13})  # paused by an I/O error, watchdog, panic, postcopy
_REMOTE_FILE = re.compile(r"/(\d+)/images/(deployment\.\d+)$")


class RenderError(ValueError):
    """The VM's document cannot become a domain; the message names the attribute."""


@dataclass(frozen=True)
class VmDoc:
    """A VM's id and template: each attribute's values in order, a vector as a dict."""

    id: int
    template: dict[str, list[Value]]

    def single(self, name: str, default: str = "") -> str:
        return next((v for v in self.template.get(name, ()) if isinstance(v, str)), default)

    def vectors(self, name: str) -> list[dict[str, str]]:
        return [v for v in self.template.get(name, ()) if isinstance(v, dict)]

    def vector(self, name: str) -> dict[str, str]:
        return next(iter(self.vectors(name)), {})


@dataclass(frozen=True)
class Placement:
    """Where the VM's files are on the host, and the domain type (kvm or qemu) to ask for."""

    images_dir: str  # <VM_DIR>/<vid>/images
    console_log: str  # the serial console's file
    domain_type: str = "kvm"
    emulator: str = ""


def local_deployment_file(remote: str, var: str) -> str:
    """``<var>/<vid>/deployment.<seq>`` for ``<VM_DIR>/<vid>/images/deployment.<seq>`` (as 1.4's
    one_vmm_kvm.rb recomputed it); RenderError for any other path."""
    match = _REMOTE_FILE.search(remote)
    if not match:
        raise RenderError(f"{remote} is not <VM_DIR>/<vid>/images/deployment.<seq>")
    return os.path.join(var, match.group(1), match.group(2))


def placement(remote: str, domain_type: str) -> Placement:
    """The VM's files beside its remote deployment file; the console one level up."""
    images = os.path.dirname(remote)
    return Placement(images, os.path.join(os.path.dirname(images), "console.log"), domain_type)


def domain_for(text: str, remote: str, domain_type: str) -> str:
    """The domain for a deployment file's text (always the VM's document: a ``<domain>`` would
    skip every check, so it is refused as not a VM document)."""
    return render_domain(parse_vm(text), placement(remote, domain_type))


def interface_devices(domain_xml: str) -> list[str]:
    """The host-side device names of a running domain's interfaces."""
    targets = ET.fromstring(domain_xml).iterfind("devices/interface/target")
    return [dev for dev in (target.get("dev") for target in targets) if dev]


def poll_state(state: int, reason: int) -> str:
    """POLL's STATE for libvirt's state and its reason: a domain QEMU paused because the guest
    crashed (or its disk failed) is ``e``, not a suspended VM."""
    return "e" if state == 3 and reason in FAILED_PAUSES else STATES.get(state, "-")


def cpu_percent(before: tuple[float, int] | None, now: tuple[float, int]) -> int | None:
    """% of one CPU between two (seconds, cpu time in ns) samples; None without a first one."""
    if before is None or now[0] <= before[0]:
        return None
    return max(0, round((now[1] - before[1]) / ((now[0] - before[0]) * 1e7)))


def parse_vm(text: str) -> VmDoc:
    """The id and template of a ``<VM>`` document; RenderError when it is not one."""
    try:
        root = ET.fromstring(text)
        vid = int(root.findtext("ID") or "")
    except (ET.ParseError, ValueError) as err:
        raise RenderError(f"not a VM document: {err}") from None
    if root.tag != "VM":
        raise RenderError(f"not a VM document: root element <{root.tag}>")
    template: dict[str, list[Value]] = {}
    for element in root.find("TEMPLATE") or ():
        value: Value = (
            {child.tag.upper(): (child.text or "").strip() for child in element}
            if len(element) or element.tag.upper() in VECTORS
            else (element.text or "").strip()
        )
        template.setdefault(element.tag.upper(), []).append(value)
    return VmDoc(vid, template)


def domain_name(vid: int) -> str:
    return f"one-{vid}"


def yes(vector: dict[str, str], key: str, default: bool = False) -> bool:
    value = vector.get(key, "").lower()
    if value not in ("", "yes", "no"):
        raise RenderError(f'{key} = "{vector[key]}": must be yes or no')
    return default if not value else value == "yes"


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A child element; attributes whose value is empty are left out."""
    element = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v})
    element.text = text
    return element


def render_domain(vm: VmDoc, at: Placement) -> str:
    """The ``<domain>`` document for ``vm`` placed ``at`` on its host."""
    try:
        return _render(vm, at)
    except BadValue as err:
        raise RenderError(str(err)) from None


def check_placement(vm: VmDoc, at: Placement) -> None:
    """The images folder is ``<VM_DIR>/<vid>/images`` of this VM: every disk stays inside it."""
    values.path("the images folder", at.images_dir)
    values.path("the console log", at.console_log)
    if not at.images_dir.rstrip("/").endswith(f"/{vm.id}/images"):
        raise BadValue(f"the images folder {at.images_dir} is not <VM_DIR>/{vm.id}/images")


def _render(vm: VmDoc, at: Placement) -> str:
    check_placement(vm, at)
    domain = ET.Element("domain", type=at.domain_type)
    sub(domain, "name", domain_name(vm.id))
    sub(domain, "memory", str(memory_mb(vm) * 1024), unit="KiB")
    sub(domain, "vcpu", values.positive("VCPU", vm.single("VCPU", "1")))
    render_os(domain, vm)
    render_features(domain, vm)
    devices = sub(domain, "devices")
    if at.emulator:
        sub(devices, "emulator", at.emulator)
    render_disks(devices, vm, at)
    for nic in vm.vectors("NIC"):
        render_nic(devices, nic)
    render_graphics(devices, vm.vector("GRAPHICS"))
    for vector in vm.vectors("INPUT"):
        kind = values.one_of("INPUT/TYPE", vector.get("TYPE", "mouse"), INPUTS)
        bus = vector.get("BUS", "") and values.one_of("INPUT/BUS", vector["BUS"], INPUT_BUSES)
        sub(devices, "input", type=kind, bus=bus)
    serial = sub(devices, "serial", type="file")
    sub(serial, "source", path=at.console_log, append="on")
    sub(serial, "target", port="0")
    render_raw(domain, vm)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def memory_mb(vm: VmDoc) -> int:
    if not vm.single("MEMORY"):
        raise RenderError("MEMORY is missing")
    return int(values.positive("MEMORY", vm.single("MEMORY")))


def render_os(domain: ET.Element, vm: VmDoc) -> None:
    """OS: direct kernel boot (KERNEL, INITRD, ROOT, KERNEL_CMD) or BOOT devices; BOOTLOADER."""
    vector = os_vector(vm)
    os_element = sub(domain, "os")
    sub(os_element, "type", "hvm", arch=vector.get("ARCH", ""), machine=vector.get("MACHINE", ""))
    if vector.get("KERNEL"):
        sub(os_element, "kernel", vector["KERNEL"])
        if vector.get("INITRD"):
            sub(os_element, "initrd", vector["INITRD"])
        root = vector.get("ROOT", "")
        root = root if not root or root.startswith("/") else f"/dev/{root}"  # NOTE: 1.4's /dev/
        cmdline = " ".join(filter(None, [f"root={root}" if root else "", vector.get("KERNEL_CMD")]))
        if cmdline:
            sub(os_element, "cmdline", cmdline)
    for device in vector.get("BOOT", "" if vector.get("KERNEL") else "hd").split(","):
        if device.strip():
            if device.strip().lower() not in BOOT_DEVICES:
                raise RenderError(f'OS/BOOT = "{device}": not one of hd, cdrom, fd, network')
            sub(os_element, "boot", dev=BOOT_DEVICES[device.strip().lower()])
    if vector.get("BOOTLOADER"):
        sub(domain, "bootloader", vector["BOOTLOADER"])


def os_vector(vm: VmDoc) -> dict[str, str]:
    """OS, each value checked: host paths (KERNEL, INITRD, BOOTLOADER) absolute without '..'."""
    return values.checked(vm.vector("OS"), "OS", values.OS)


def render_features(domain: ET.Element, vm: VmDoc) -> None:
    """FEATURES: NOTE: ACPI is on unless "no" (as later OpenNebula defaults; SHUTDOWN needs
    it), PAE only when "yes" (1.4)."""
    vector = vm.vector("FEATURES")
    wanted = (("pae", yes(vector, "PAE")), ("acpi", yes(vector, "ACPI", default=True)))
    features = [name for name, on in wanted if on]
    if features:
        element = sub(domain, "features")
        for name in features:
            sub(element, name)


class Targets:
    """Device names for disks without TARGET: the first free letter of their bus's prefix."""

    def __init__(self, taken: list[str]) -> None:
        self.taken = set(taken)

    def next(self, prefix: str) -> str:
        for letter in string.ascii_lowercase:
            if prefix + letter not in self.taken:
                self.taken.add(prefix + letter)
                return prefix + letter
        raise RenderError(f"no free {prefix}* device name left")


def render_disks(devices: ET.Element, vm: VmDoc, at: Placement) -> None:
    disks = vm.vectors("DISK")
    context = vm.vectors("CONTEXT")
    targets = Targets([v["TARGET"] for v in disks + context if v.get("TARGET")])
    for index, disk in enumerate(disks):
        render_disk(devices, index, disk, at, targets)
    if context:
        wanted = context[0].get("TARGET", "")
        target = values.device("CONTEXT/TARGET", wanted) if wanted else targets.next("hd")
        cdrom = {"TYPE": "cdrom", "TARGET": target, "READONLY": "yes"}
        render_disk(devices, len(disks), cdrom, at, targets)


def render_disk(
    devices: ET.Element, index: int, disk: dict[str, str], at: Placement, targets: Targets
) -> None:
    """DISK ``index``: TYPE disk, fs, swap, block, cdrom or floppy; TARGET, BUS, READONLY."""
    kind = disk.get("TYPE", "").lower() or "disk"
    if kind not in DISK_DEVICES:
        raise RenderError(f'DISK/TYPE = "{disk["TYPE"]}": not one of {", ".join(DISK_DEVICES)}')
    bus = disk.get("BUS", "") and values.one_of("DISK/BUS", disk["BUS"], BUSES)
    target = disk.get("TARGET", "") and values.device("DISK/TARGET", disk["TARGET"])
    driver = disk.get("DRIVER", "") and values.one_of("DISK/DRIVER", disk["DRIVER"], DRIVERS)
    prefix = "fd" if kind == "floppy" else BUS_PREFIX.get(bus, "hd")
    path = f"{at.images_dir}/disk.{index}"
    element = sub(
        devices, "disk", type="block" if kind == "block" else "file", device=DISK_DEVICES[kind]
    )
    qcow2 = kind == "fs" and disk.get("FORMAT", "").lower() == "qcow2"
    sub(element, "driver", name="qemu", type=driver or ("qcow2" if qcow2 else "raw"))
    sub(element, "source", **({"dev": path} if kind == "block" else {"file": path}))
    sub(element, "target", dev=target or targets.next(prefix), bus=bus)
    if kind == "cdrom" or yes(disk, "READONLY"):
        sub(element, "readonly")


def render_nic(devices: ET.Element, nic: dict[str, str]) -> None:
    """NIC: on BRIDGE (else a plain tap, type ethernet), with MAC, TARGET, SCRIPT, MODEL."""
    nic = values.checked(nic, "NIC", values.NIC)
    bridge = nic.get("BRIDGE", "")
    element = sub(devices, "interface", type="bridge" if bridge else "ethernet")
    if bridge:
        sub(element, "source", bridge=bridge)
    for tag, key, attr in (("mac", "MAC", "address"), ("target", "TARGET", "dev")):
        if nic.get(key):
            sub(element, tag, **{attr: nic[key]})
    if nic.get("SCRIPT"):
        sub(element, "script", path=nic["SCRIPT"])
    if nic.get("MODEL"):
        sub(element, "model", type=nic["MODEL"])


def render_graphics(devices: ET.Element, vector: dict[str, str]) -> None:
    """GRAPHICS: vnc (LISTEN, PORT or an automatic one, PASSWD, KEYMAP) or sdl."""
    if not vector:
        return
    vector = values.checked(vector, "GRAPHICS", values.GRAPHICS)
    kind = vector.get("TYPE", "").lower()
    if kind == "sdl":
        sub(devices, "graphics", type="sdl")
    elif kind == "vnc":
        port = vector.get("PORT", "")
        sub(
            devices, "graphics", type="vnc", port=port, autoport="" if port else "yes",
            listen=vector.get("LISTEN", ""), passwd=vector.get("PASSWD", ""),
            keymap=vector.get("KEYMAP", ""),
        )  # fmt: skip
    else:
        raise RenderError(f'GRAPHICS/TYPE = "{vector.get("TYPE", "")}": must be vnc or sdl')


def render_raw(domain: ET.Element, vm: VmDoc) -> None:
    """RAW with TYPE kvm: DATA's elements appended to the domain (well-formed XML elements,
    within values.LIBVIRT_RAW)."""
    for raw in vm.vectors("RAW"):
        if raw.get("TYPE", "").lower() == "kvm":
            domain.extend(values.libvirt_raw("RAW/DATA", raw.get("DATA", "")))
