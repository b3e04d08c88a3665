"""VM_HOOKs through the real one_hm: CREATE, RUNNING, SHUTDOWN, DONE and FAILED, with variables."""

from __future__ import annotations

import pyone

from tests.functional.oned_process import OnedProcess
from tests.waiting import wait_for


def test_vm_hooks_run_on_each_event_with_the_vm_variables_and_never_break_the_vm(tmp_path):
    """Each hook appends "<event> $VMID $NAME" to a file; a failing hook changes nothing."""
    out = tmp_path / "hooks.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    hook.chmod(0o755)
    extra = "".join(
        f'VM_HOOK = [ name = "h_{on}", on = "{on}", command = "{hook}", '
        f'arguments = "{on} $VMID $NAME $NIC[IP]" ]\n'
        for on in ("create", "running", "shutdown", "done")
    )
    extra += 'VM_HOOK = [ name = "broken", on = "running", command = "/nonexistent/hook" ]\n'
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        one.host.allocate("host01", "im_dummy", "vmm_dummy", "tm_dummy")
        wait_for(lambda: one.host.info(0).STATE == 2)
        vid = one.vm.allocate("NAME = web\nMEMORY = 64")
        one.vm.deploy(vid, 0)
        wait_for(lambda: one.vm.info(vid).LCM_STATE == 3)
        one.vm.action("shutdown", vid)
        wait_for(lambda: one.vm.info(vid).STATE == 6)
        lines = wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 4 and out)
        assert lines.read_text().splitlines() == [
            "create 0 web",
            "running 0 web",
            "shutdown 0 web",
            "done 0 web",
        ]
        assert "Hook broken for 0 failed" in oned.log
    finally:
        oned.stop()


def test_hostile_values_reach_the_hook_as_one_literal_argument_each(tmp_path):
    """Finding 2 of issue 10: hook arguments were re-split after expansion. A VM named
    'a  b; c' and an attribute holding backquotes, $() and a quote are one argument each, and
    nothing in them runs."""
    out, victim = tmp_path / "hooks.out", tmp_path / "victim"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\nprintf "%s\\n" "$#" "$@" >> {out}\n')
    hook.chmod(0o755)
    extra = (
        f'VM_HOOK = [ name = "args", on = "create", command = "{hook}", '
        'arguments = "$NAME $EVIL" ]\n'
    )
    evil = f"x; touch {victim} `touch {victim}` $(touch {victim}) 'q"
    oned = OnedProcess(tmp_path / "one", conf_extra=extra).start()
    try:
        one = pyone.OneServer(oned.endpoint, session="oneadmin:onecloud")
        one.vm.allocate(f'NAME = "a  b; c"\nMEMORY = 64\nEVIL = "{evil}"')
        lines = wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 3 and out)
        assert lines.read_text().splitlines() == ["2", "a  b; c", evil]
        assert not victim.exists()
    finally:
        oned.stop()
