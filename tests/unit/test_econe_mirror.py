"""A user's VM rows kept by oned's change feed (`econe.vm_rows`, `econe.feed`) against a
scripted feed: loaded whole once, then only what the feed lists is read again; other users'
VMs (oneadmin's feed) are never kept; removed VMs are read from the store and stay DONE; a
reset or another epoch loads again; the mirrors kept are bounded."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from econe import feed, instances, vm_rows

ME, OTHER = 7, 8


def vm(vid: int, uid: int = ME, state: int = 3, etime: int = 0) -> str:
    return (
        f"<VM><ID>{vid}</ID><UID>{uid}</UID><STATE>{state}</STATE><LCM_STATE>3</LCM_STATE>"
        f"<STIME>100</STIME><ETIME>{etime}</ETIME><TEMPLATE/></VM>"
    )


class ScriptedFeed:
    """oned as a mirror asks it: `vms` (id -> XML, DONE ones too) and the next reply."""

    def __init__(self, *vms: str) -> None:
        self.vms_now = {int(ET.fromstring(v).findtext("ID") or 0): v for v in vms}
        self.epoch, self.seq = "e1", 100
        self.listed: list[str] = []
        self.removed: list[int] = []
        self.calls: list[tuple] = []

    def change(self, text: str, gone: bool = False) -> None:
        vid = int(ET.fromstring(text).findtext("ID") or 0)
        self.vms_now[vid] = text
        (self.removed if gone else self.listed).append(vid if gone else text)  # type: ignore[arg-type]
        self.seq += 1

    def changes(self, since: int, epoch: str) -> feed.Changes:
        self.calls.append(("changes", since, epoch))
        reset = since == 0 or epoch != self.epoch
        pools = "" if reset else "".join(self.listed).join(("<VM_POOL>", "</VM_POOL>"))
        removed = "" if reset else "".join(f"<VM>{i}</VM>" for i in self.removed)
        self.listed, self.removed = [], []
        text = f'<CHANGES EPOCH="{self.epoch}" SEQ="{self.seq}" RESET="{int(reset)}">'
        return feed.read(ET.fromstring(f"{text}{pools}<REMOVED>{removed}</REMOVED></CHANGES>"))

    def listing(self) -> ET.Element:
        self.calls.append(("listing",))
        mine = [self.vms_now[i] for i in sorted(self.vms_now) if f"<UID>{ME}<" in self.vms_now[i]]
        return ET.fromstring("".join(mine).join(("<VM_POOL>", "</VM_POOL>")))

    def vms(self, ids: list[int]) -> ET.Element:
        self.calls.append(("vms", *ids))
        found = [self.vms_now[i] for i in sorted(ids) if i in self.vms_now]
        return ET.fromstring("".join(found).join(("<VM_POOL>", "</VM_POOL>")))


def states(rows: list[dict]) -> list[tuple[int, str]]:
    return [(r["vid"], r["state"]) for r in rows]


def test_the_listing_is_read_once_then_only_what_the_feed_lists():
    oned = ScriptedFeed(vm(1), vm(2), vm(3, uid=OTHER))
    mirror = vm_rows.Mirror(ME, instances._row)
    first = mirror.sync(oned)
    assert states(first) == [(1, "running"), (2, "running")] and mirror.loads == 1
    again = mirror.sync(oned)
    assert again[0] is first[0] and again[1] is first[1]  # kept rows keep their <item>
    oned.change(vm(2, state=5))
    oned.change(vm(4, uid=OTHER))  # oneadmin's feed lists everyone's VMs
    assert states(mirror.sync(oned)) == [(1, "running"), (2, "stopped")]
    assert mirror.loads == 1 and oned.calls[-1] == ("changes", 100, "e1") and mirror.seq == 102


def test_a_vm_that_left_memory_is_read_from_the_store_and_stays_terminated():
    oned = ScriptedFeed(vm(1), vm(2))
    mirror = vm_rows.Mirror(ME, instances._row)
    mirror.sync(oned)
    oned.change(vm(1, state=6, etime=500), gone=True)
    oned.removed.append(9)  # another user's VM, for oneadmin: not found for the caller
    rows = mirror.sync(oned)
    assert states(rows) == [(1, "terminated"), (2, "running")] and rows[0]["etime"] == 500
    assert ("vms", 1, 9) in oned.calls
    del oned.vms_now[2]  # purged from the store meanwhile: no longer listed
    oned.removed.append(2)
    assert states(mirror.sync(oned)) == [(1, "terminated")]


def test_a_reset_or_another_epoch_reads_the_listing_again():
    oned = ScriptedFeed(vm(1))
    mirror = vm_rows.Mirror(ME, instances._row)
    mirror.sync(oned)
    oned.epoch = "e2"  # oned restarted
    oned.vms_now[5] = vm(5)
    assert states(mirror.sync(oned)) == [(1, "running"), (5, "running")] and mirror.loads == 2
    assert oned.calls[-2] == ("changes", 100, "e1")


def test_a_vm_listed_late_with_a_lower_id_keeps_the_rows_in_id_order():
    oned = ScriptedFeed(vm(3))
    mirror = vm_rows.Mirror(ME, instances._row)
    mirror.sync(oned)
    oned.change(vm(9))
    oned.change(vm(2))
    assert [r["vid"] for r in mirror.sync(oned)] == [2, 3, 9]


def test_a_failed_call_leaves_the_mirror_where_it_was_and_the_next_one_applies_it_all():
    oned = ScriptedFeed(vm(1))
    mirror = vm_rows.Mirror(ME, instances._row)
    mirror.sync(oned)
    oned.change(vm(1, state=6, etime=5), gone=True)

    def down(ids):
        raise OSError("oned went away")

    real, oned.vms = oned.vms, down  # type: ignore[method-assign]
    with pytest.raises(OSError):
        mirror.sync(oned)
    oned.vms = real  # type: ignore[method-assign]
    oned.removed.append(1)  # oned repeats the changes after the SEQ the mirror kept
    assert mirror.seq == 100 and states(mirror.sync(oned)) == [(1, "terminated")]


def test_mirrors_are_bounded_by_rows_and_users_keeping_the_one_in_use():
    mirrors = vm_rows.Mirrors(instances._row, limit=3, users=2)
    big = mirrors.of(1)
    big.rows = {i: {"vid": i} for i in range(5)}  # over the limit alone: kept while in use
    assert mirrors.of(1) is big and len(mirrors) == 1
    small = mirrors.of(2)
    assert len(mirrors) == 1 and mirrors.of(2) is small  # the big one was let go
    mirrors.of(3)
    mirrors.of(2)
    mirrors.of(4)  # two users at most: 3, the least recently used, goes
    assert mirrors.of(2) is small and len(mirrors) == 2
    assert mirrors.of(1) is not big


def test_the_feed_document_reads_as_plain_values():
    root = ET.fromstring(
        '<CHANGES EPOCH="ab" SEQ="12" RESET="0"><VM_POOL><VM><ID>1</ID></VM></VM_POOL>'
        "<HOST_POOL><HOST><ID>0</ID></HOST></HOST_POOL>"
        "<REMOVED><VM>4</VM><HOST>2</HOST><VM> x</VM></REMOVED></CHANGES>"
    )
    found = feed.read(root)
    assert (found.epoch, found.seq, found.reset) == ("ab", 12, False)
    assert [e.findtext("ID") for e in found.listed["VM"]] == ["1"]
    assert found.removed == {"VM": [4], "HOST": [2]}
    assert feed.arguments(0, "") == (0, 0) and feed.arguments(12, "ab") == (12, 0, "ab")
