"""oned.vmfiles: vm.log lines and whole files, written in order by one thread, completions
handed back to the reactor in batches."""

from __future__ import annotations

import os
import queue
import stat

import pytest

from oned.vmfiles import VmFiles, vm_folder


class Reactor:
    """Stands in for reactor.callFromThread: calls arrive from the writer thread and are run
    when the test says so, in the test's own thread (as the reactor would)."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue = queue.SimpleQueue()

    def call_from_thread(self, f, *args) -> None:
        self.calls.put((f, args))

    def run_one(self, timeout: float = 10) -> None:
        f, args = self.calls.get(timeout=timeout)
        f(*args)

    def run_pending(self) -> int:
        ran = 0
        while not self.calls.empty():
            self.run_one()
            ran += 1
        return ran


@pytest.fixture
def reactor():
    return Reactor()


def test_log_lines_keep_their_order_and_format(tmp_path, reactor):
    files = VmFiles(str(tmp_path), reactor.call_from_thread)
    for n in range(50):
        files.log(7, "LCM", f"line {n}")
    files.log(7, "VMM", "first", "second", level="E")
    files.close()
    lines = (tmp_path / "7" / "vm.log").read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [f"line {n}" for n in range(50)] + [
        "first",
        "second",
    ]
    assert "[LCM][I]: line 0" in lines[0]
    assert "[VMM][E]: second" in lines[-1]


def test_write_fires_in_the_reactor_after_the_files_are_on_disk(tmp_path, reactor):
    files = VmFiles(str(tmp_path), reactor.call_from_thread)
    path = tmp_path / "3" / "deployment.0"
    d = files.write([(str(path), "<VM/>"), (str(tmp_path / "3" / "context.sh"), "A=1\n")])
    seen: list[str] = []
    d.addCallback(lambda _: seen.append(path.read_text()))
    assert seen == []  # nothing fires in the writer thread
    reactor.run_one()
    assert seen == ["<VM/>"]
    assert (tmp_path / "3" / "context.sh").read_text() == "A=1\n"
    files.close()


def test_a_failed_write_errbacks_with_the_os_error_and_the_others_carry_on(tmp_path, reactor):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    files = VmFiles(str(tmp_path), reactor.call_from_thread)
    bad = files.write([(str(tmp_path / "blocker" / "deployment.0"), "x")])
    good = files.write([(str(tmp_path / "1" / "deployment.0"), "y")])
    errors: list[BaseException] = []
    bad.addErrback(lambda f: errors.append(f.value))
    oks: list[None] = []
    good.addCallback(oks.append)
    files.close()
    reactor.run_pending()
    assert len(errors) == 1 and isinstance(errors[0], OSError)
    assert oks == [None]


def test_a_batch_comes_back_in_one_call(tmp_path, reactor):
    """Writes queued while the thread is busy come back together: one reactor wake-up."""
    files = VmFiles(str(tmp_path), reactor.call_from_thread)
    fired: list[int] = []
    for vid in range(200):
        files.write([(f"{vm_folder(str(tmp_path), vid)}/deployment.0", "x")]).addCallback(
            lambda _, vid=vid: fired.append(vid)
        )
    files.close()
    calls = reactor.run_pending()
    assert fired == list(range(200))
    assert calls < 200


def test_unthreaded_writes_at_once(tmp_path):
    files = VmFiles(str(tmp_path), threaded=False)
    files.log(1, "DiM", "deploy requested")
    done: list[None] = []
    files.write([(str(tmp_path / "1" / "transfer.0.prolog"), "CLONE a b\n")]).addCallback(
        done.append
    )
    assert done == [None]
    assert "deploy requested" in (tmp_path / "1" / "vm.log").read_text()
    files.close()


def test_threaded_needs_a_way_back_to_the_reactor(tmp_path):
    with pytest.raises(ValueError, match="callFromThread"):
        VmFiles(str(tmp_path))


def test_vm_folders_and_files_are_never_readable_by_others_even_under_umask_022(tmp_path):
    """Issue 10, finding 4: deployment.N and context.sh (CONTEXT values) were 0644 in 0755
    folders, vm.log opened 0644; now at most 0640 in 0750 (0600/0700 under oned's UMASK 077)."""
    old = os.umask(0o022)
    try:
        files = VmFiles(str(tmp_path), threaded=False)
        files.log(4, "DiM", "deploy requested")
        files.write([(str(tmp_path / "5" / "deployment.0"), "<VM/>")])
        files.write([(str(tmp_path / "4" / "context.sh"), 'TOKEN="s"\n')])
        files.close()
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE((tmp_path / p).stat().st_mode) for p in ("4", "5")}
    assert modes == {"4": 0o750, "5": 0o750}
    for path in ("4/vm.log", "4/context.sh", "5/deployment.0"):
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == 0o640, path


def test_a_vm_log_message_with_a_newline_stays_one_line(tmp_path):
    """Issue 10, finding 5: a driver's or user's newline cannot forge a vm.log line."""
    files = VmFiles(str(tmp_path), threaded=False)
    files.log(1, "VMM", "failed: no room\nFri Jan 01 00:00:00 2027 [LCM][I]: New VM state is DONE")
    files.close()
    lines = (tmp_path / "1" / "vm.log").read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "no room\\nFri Jan 01 00:00:00 2027 [LCM][I]: New VM state is DONE"
    )
