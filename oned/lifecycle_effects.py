"""What a life-cycle row asks for: history changes and effects (reference §3, §3.5).

A row of oned/lifecycle_table.py lists history changes (``OpenHistory``, ``SetHistory``),
applied in order in the event's transaction, and effects the shell executes one by one, in order:
``in_transaction`` ones change the database with the VM, the others (driver requests, hooks) go
out after the commit. A time written ``NOW`` is the event's time. Hosts are named relative to the
history *after* the row's history changes: ``"current"`` is the last record's host,
``"previous"`` the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

HostSide = Literal["current", "previous"]
Record = Literal["last", "previous"]
CURRENT: Literal["current"] = "current"
PREVIOUS: Literal["previous"] = "previous"  # a host side and a record
LAST: Literal["last"] = "last"
NOW = -1  # a placeholder in the table: step() writes the event's time instead


@dataclass(frozen=True)
class HostRef:
    """The host an action takes the VM to, as the new history record stores it."""

    hid: int
    name: str
    vm_mad: str
    tm_mad: str
    vm_dir: str


# -- History changes: applied in order, in the event's transaction (reference §3.5) ------------


@dataclass(frozen=True)
class OpenHistory:
    """Append a record (seq = last seq + 1, or 0) on ``host``, or, when ``copy_of`` names a
    record, on that record's host with all times reset; then set ``values``."""

    values: tuple[tuple[str, int], ...] = ()
    copy_of: Record | None = None
    host: HostRef | None = None


@dataclass(frozen=True)
class SetHistory:
    """Set fields (times, ``reason``) of the last record or of the one before it."""

    record: Record
    values: tuple[tuple[str, int], ...]


HistoryChange = OpenHistory | SetHistory


# -- Effects: executed by the shell one by one, in order -----------------------------------------


@dataclass(frozen=True)
class Effect:
    """``in_transaction`` effects change the DB with the VM; the others go out after commit."""

    in_transaction: ClassVar[bool] = False


@dataclass(frozen=True)
class AddCapacity(Effect):
    """Count the VM's CPU, MEMORY and DISK as allocated on the host (HOST_SHARE)."""

    host: HostSide = CURRENT
    in_transaction: ClassVar[bool] = True


@dataclass(frozen=True)
class DelCapacity(Effect):
    """Give the VM's CPU, MEMORY and DISK back to the host."""

    host: HostSide = CURRENT
    in_transaction: ClassVar[bool] = True


@dataclass(frozen=True)
class ReleaseLeases(Effect):
    """Give the VM's network leases back to their networks (reference §8.2)."""

    in_transaction: ClassVar[bool] = True


@dataclass(frozen=True)
class DriverCancel(Effect):
    """``DRIVER_CANCEL <vid>`` to the VM's VMM or TM driver: drop what is in flight for it."""

    driver: Literal["VMM", "TM"]


@dataclass(frozen=True)
class VmmAction(Effect):
    """A VMM request (reference §1.5) through the vm_mad of ``host``'s record. MIGRATE goes to
    the previous host with the current one as destination; SAVE writes ``images/checkpoint``.
    REBOOT and RESET (OpenNebula 3.x/4.x) restart the guest in place: ACPI and hard."""

    action: Literal[
        "DEPLOY", "SHUTDOWN", "CANCEL", "SAVE", "RESTORE", "MIGRATE", "POLL", "REBOOT", "RESET"
    ]
    host: HostSide = CURRENT


@dataclass(frozen=True)
class TmTransfer(Effect):
    """Write ``$VAR/<vid>/transfer.<seq>.<script>`` (reference §1.6) and send ``TRANSFER``.

    1.4's TM actions: prolog=PROLOG, migrate=PROLOG_MIGR, resume=PROLOG_RESUME,
    epilog=EPILOG, stop=EPILOG_STOP, delete=EPILOG_DELETE, delete_prev=EPILOG_DELETE_PREVIOUS.
    """

    script: Literal["prolog", "migrate", "resume", "epilog", "stop", "delete", "delete_prev"]


@dataclass(frozen=True)
class RunHooks(Effect):
    """Run the VM_HOOKs registered ``on`` this (reference §2 "Hooks"); never fails the VM."""

    on: Literal["CREATE", "RUNNING", "SHUTDOWN", "STOP", "DONE", "FAILED"]
