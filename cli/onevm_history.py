"""onevm history: the hosts each VM has been on, one table for every VM named (reference §12.2).

Pure: ``<VM>`` documents in, lines out. A modern oned sends every record (HISTORY_RECORDS);
a 1.4/2.0 oned only the last one (HISTORY), which is then the whole table.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cli.common import int_of, parse_xml, text_of
from cli.table import Column, str_running_time, str_time, table_lines
from oned.states import HistoryReason

REASONS: dict[int, str] = {
    HistoryReason.NONE: "none",
    HistoryReason.ERROR: "erro",
    HistoryReason.STOP_RESUME: "stop",
    HistoryReason.USER: "user",
    HistoryReason.CANCEL: "canc",
}

Record = tuple[str, ET.Element]  # (VM id, one HISTORY element)


def _etime(record: Record) -> str:
    etime = int_of(record[1], "ETIME")
    return str_time(etime) if etime else "--"


def _running(record: Record, now: float | None) -> str:
    return str_running_time(int_of(record[1], "STIME"), int_of(record[1], "ETIME"), now)


def _reason(record: Record) -> str:
    value = int_of(record[1], "REASON")
    return REASONS.get(value, str(value))


def history_columns(now: float | None = None) -> dict[str, Column]:
    """The ``onevm history`` layout (1.4 sizes, reference §12.2); TIME runs to ``now``."""
    return {
        "id": Column("ID", 4, lambda r: r[0], desc="ONE identifier for the VM"),
        "seq": Column("SEQ", 3, lambda r: text_of(r[1], "SEQ"), desc="Sequence number"),
        "hostname": Column(
            "HOSTNAME", 15, lambda r: text_of(r[1], "HOSTNAME"), desc="Name of the host"
        ),
        "stime": Column("STIME", 14, lambda r: str_time(int_of(r[1], "STIME")), desc="Start"),
        "etime": Column("ETIME", 14, _etime, desc="End time (-- while on the host)"),
        "time": Column("TIME", 11, lambda r: _running(r, now), desc="Time on the host"),
        "reason": Column("REASON", 6, _reason, desc="Why the VM left the host"),
    }


HISTORY_COLUMNS = history_columns()
DEFAULT_HISTORY_COLUMNS = tuple(HISTORY_COLUMNS)


def history_records(vm_xml: str) -> list[Record]:
    """Every history record of a ``<VM>`` document in seq order: HISTORY_RECORDS, or the single
    last HISTORY of a 1.4/2.0 oned."""
    vm = parse_xml(vm_xml)
    records = vm.findall("HISTORY_RECORDS/HISTORY") or vm.findall("HISTORY")
    vid = text_of(vm, "ID")
    return sorted(((vid, r) for r in records), key=lambda record: int_of(record[1], "SEQ"))


def history_lines(
    vm_xmls: Sequence[str],
    columns: Sequence[Column] | None = None,
    tty: bool = False,
    now: float | None = None,
) -> list[str]:
    """``onevm history``: one table of the records of every VM document, VM after VM."""
    cols = columns or list(history_columns(now).values())
    return table_lines(cols, [r for text in vm_xmls for r in history_records(text)], tty)
