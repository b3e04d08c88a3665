"""How one_vmm_kvm live-migrates a VM: safe without libvirt's check when its disks are shared.

libvirt refuses a live migration ("Migration without shared storage is unsafe") unless it
recognises the disks' file system as a cluster one and their cache mode as safe; it cannot know
that the hosts' VM_DIR is one NFS export. The VM's transfer manager does: with ``tm_nfs`` every
host sees the same ``<VM_DIR>/<vid>/images``, so the driver passes VIR_MIGRATE_UNSAFE (as
``--unsafe-migration`` does for every VM). The TM is read from the VM's newest deployment file on
the front-end (``<var>/<vid>/deployment.<seq>``, the VM's XML with its HISTORY's TM_MAD; oned
writes one for the destination's history record before a MIGRATE, as before a DEPLOY); a VM
whose TM is not shared gets libvirt's refusal with the fix named.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

SHARED_TMS = frozenset({"tm_nfs"})
_DEPLOYMENT = re.compile(r"deployment\.(\d+)$")


def newest_deployment(var: str, vid: str) -> str | None:
    """The path of ``<var>/<vid>/deployment.<seq>`` with the highest seq, or None."""
    folder = os.path.join(var, vid)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    seqs = [int(m.group(1)) for m in map(_DEPLOYMENT.fullmatch, names) if m]
    return os.path.join(folder, f"deployment.{max(seqs)}") if seqs else None


def tm_of(text: str) -> str:
    """The TM_MAD of the VM document's last history record ("" when it has none)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return ""
    records = root.findall("HISTORY_RECORDS/HISTORY") or root.findall("HISTORY")
    return (records[-1].findtext("TM_MAD") or "").strip() if records else ""


def vm_tm(var: str, vid: str) -> str:
    """The VM's TM as its newest deployment file names it ("" when there is none to read)."""
    path = newest_deployment(var, vid)
    if path is None:
        return ""
    try:
        with open(path) as file:
            return tm_of(file.read())
    except (OSError, UnicodeDecodeError):
        return ""


def unsafe_allowed(tm: str, forced: bool) -> bool:
    """Whether to pass VIR_MIGRATE_UNSAFE: always with ``--unsafe-migration``, else on shared
    storage only."""
    return forced or tm in SHARED_TMS


def unsafe_hint(tm: str) -> str:
    """What to add to libvirt's "unsafe" refusal: why the driver did not override it, the fix."""
    which = f"its TM is {tm}" if tm else "its TM is unknown"
    return (
        f"{which}, not shared storage: put the hosts on tm_nfs, "
        "or start one_vmm_kvm with --unsafe-migration"
    )
