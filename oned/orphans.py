"""Instances a cloud still runs for VMs that oned has finished: found by tag, cancelled.

The IM driver of a cloud region (im_ec2) lists in each MONITOR answer the instances it finds
tagged with this install's cloud id, as ``VM = [ ID = <vid>, DEPLOY_ID = <instance> ]`` (the
shape of modern OpenNebula's VM lists in monitoring). An instance whose VM is DONE in oned, or
that oned never had, is an orphan: oned stopped between the provider starting it and oned
recording the outcome, or a terminate was lost with a driver. oned sends its host's VMM driver
``CANCEL`` for it (vmm_ec2 terminates it and waits), once at a time per instance, and logs it;
the monitoring of every cycle, the first one after a start included, is the reconciliation.
VMs oned still has, in any state, are left alone: their life-cycle owns their instance.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from twisted.python.failure import Failure

from oned.records import Host
from oned.states import VmState
from oned.template import Template

TIMEOUT = 300.0
_VID = re.compile(r"\d{1,9}")
_DEPLOY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def listed_instances(template: Template) -> list[tuple[int, str]]:
    """The (vid, deploy id) pairs of the ``VM`` vectors of a monitoring answer; malformed ones
    are skipped. The vectors are taken out of ``template``: they are no host attribute."""
    found = []
    for entry in template.get_all("VM"):
        if isinstance(entry, dict):
            vid, deploy_id = entry.get("ID", ""), entry.get("DEPLOY_ID", "")
            if _VID.fullmatch(vid) and _DEPLOY_ID.fullmatch(deploy_id):
                found.append((int(vid), deploy_id))
    template.remove("VM")
    return found


class OrphanReaper:
    """Cancels the instances of finished VMs that a host's monitoring still lists."""

    def __init__(self, cloud: Any, vmm_channels: dict[str, Any], log: logging.Logger):
        self._cloud = cloud
        self._vmm = vmm_channels
        self._log = log
        self._cancelling: set[str] = set()  # deploy ids with a CANCEL in flight

    def check(self, host: Host, listed: list[tuple[int, str]]) -> None:
        for vid, deploy_id in listed:
            if deploy_id in self._cancelling or not self._finished(vid):
                continue
            channel = self._vmm.get(host.vm_mad)
            if channel is None:
                self._log.error(f"Host {host.name}: {deploy_id} of finished VM {vid} still runs")
                continue
            self._log.warning(
                f"Host {host.name}: {deploy_id} still runs for VM {vid}, which is finished; "
                "cancelling it"
            )
            self._cancelling.add(deploy_id)
            d = channel.request("CANCEL", vid, host.name, deploy_id, "-", timeout=TIMEOUT)
            d.addCallbacks(self._cancelled, self._failed, (host, vid, deploy_id), None,
                           (host, vid, deploy_id))  # fmt: skip

    def _finished(self, vid: int) -> bool:
        """DONE, or never a VM of this cloud; a VM in memory (any other state) is not."""
        pools = self._cloud.pools
        if vid in pools.vms:
            return False
        if vid >= pools.next_ids["vm"]:
            return True
        vm = self._cloud.store.get_vm(vid)
        return vm is None or vm.state == VmState.DONE

    def _cancelled(self, reply: Any, host: Host, vid: int, deploy_id: str) -> None:
        self._cancelling.discard(deploy_id)
        if reply.ok:
            self._log.info(f"Host {host.name}: {deploy_id} of finished VM {vid} cancelled")
        else:
            self._log.error(f"Host {host.name}: could not cancel {deploy_id}: {reply.info}")

    def _failed(self, failure: Failure, host: Host, vid: int, deploy_id: str) -> None:
        self._cancelling.discard(deploy_id)
        self._log.error(
            f"Host {host.name}: could not cancel {deploy_id}: {failure.getErrorMessage()}"
        )
