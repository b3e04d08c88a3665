"""oned's opt-in memory report (oned/memprofile.py): off unless ONECLOUD_TRACEMALLOC is set,
written at shutdown with the pools broken down by category and tracemalloc's sites."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from oned import memprofile
from oned.pools import Pools
from oned.records import Vm
from oned.template import parse


class Reactor:
    """Just what dump_at_shutdown uses: the system event triggers it adds."""

    def __init__(self) -> None:
        self.triggers: list[tuple] = []

    def addSystemEventTrigger(self, phase: str, event: str, f: object, *args: object) -> None:
        self.triggers.append((phase, event, f, args))


def pools_with_vms(count: int) -> Pools:
    pools = Pools()
    for vid in range(count):
        text = f'NAME = "vm{vid}"\nMEMORY = 64\nDISK = [ SOURCE = "/img/{vid}", TARGET = hda ]'
        vm = Vm(vid, 0, f"vm{vid}", parse(text))
        pools.vms.put(vm)
        pools.vms.xml(vm)
        pools.vms.xml_short(vm)
    return pools


def test_nothing_is_traced_or_registered_without_the_variable():
    reactor = Reactor()
    assert memprofile.start_from_env({}) is None
    memprofile.dump_at_shutdown(reactor, Pools(), {})
    assert reactor.triggers == []


def test_with_the_variable_tracing_starts_and_the_report_is_due_before_shutdown(tmp_path: Path):
    reactor = Reactor()
    path = str(tmp_path / "mem.json")
    was_tracing = tracemalloc.is_tracing()
    try:
        assert memprofile.start_from_env({memprofile.ENV: path}) == path
        assert tracemalloc.is_tracing()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    pools = Pools()
    memprofile.dump_at_shutdown(reactor, pools, {memprofile.ENV: path})
    assert reactor.triggers == [("before", "shutdown", memprofile.write_report, (path, pools))]


def test_the_breakdown_puts_each_byte_of_the_pools_in_one_category():
    small, large = (
        memprofile.breakdown(pools_with_vms(10)),
        memprofile.breakdown(pools_with_vms(200)),
    )
    for part in ("vms.records", "vms._xml", "vms._short", "vms.index", "changes"):
        assert small[part] > 0, part
    per_vm = (large["vms.records"] - small["vms.records"]) / 190
    assert 500 < per_vm < 5000
    assert large["vms._xml"] > 190 * 500  # every full fragment, counted once
    assert "users._marks" not in large  # the change log is shared: under its own name


def test_the_report_is_written_with_the_snapshot_when_tracing(tmp_path: Path):
    path = tmp_path / "mem.json"
    tracemalloc.start(memprofile.FRAMES)
    try:
        pools = pools_with_vms(20)
        report = memprofile.write_report(str(path), pools)
    finally:
        tracemalloc.stop()
    assert json.loads(path.read_text())["objects"] == report["objects"]
    traced = report["traced"]
    assert traced["total"] > 0 and traced["top"] and "oned/template.py" in traced["by_file"]
    snapshot = tracemalloc.Snapshot.load(str(path) + ".snapshot")
    assert snapshot.statistics("filename")


def test_without_tracing_the_report_has_the_walk_only(tmp_path: Path):
    if tracemalloc.is_tracing():
        pytest.skip("something else traces this process")
    report = memprofile.write_report(str(tmp_path / "mem.json"), pools_with_vms(3))
    assert "traced" not in report and report["objects"]["vms.records"] > 0
    assert not (tmp_path / "mem.json.snapshot").exists()


def test_oned_fixes_glibcs_mmap_threshold_unless_the_operator_set_one() -> None:
    assert memprofile.fix_mmap_threshold({}) == memprofile.MMAP_THRESHOLD
    assert memprofile.fix_mmap_threshold({memprofile.MMAP_ENV: "131072"}) is None
