"""one_vmm_dummy as oned runs it: every action succeeds, unless the script says otherwise."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from drivers.vmm_dummy import parse_script
from tests.e2e.driver_process import DriverProcess

VM_XML = (
    "<VM><ID>{vid}</ID><MEMORY>0</MEMORY>"
    "<TEMPLATE><MEMORY><![CDATA[{mb}]]></MEMORY></TEMPLATE></VM>"
)


@pytest.fixture
def drivers(tmp_path):
    """Start one_vmm_dummy with ONE_LOCATION=tmp_path; every driver is finalized after."""
    started: list[DriverProcess] = []

    def start(arguments: str = "") -> DriverProcess:
        driver = DriverProcess("one_vmm_dummy", arguments, env={"ONE_LOCATION": str(tmp_path)})
        assert driver.init() == "INIT SUCCESS - -"
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.close()


def write_script(path: Path, text: str) -> None:
    """Replace the script atomically, as an operator's editor or a test harness would."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def deployment(tmp_path: Path, vid: int, mb: int) -> str:
    """Write <var>/<vid>/deployment.0 as oned does; returns the remote path DEPLOY names."""
    (tmp_path / "var" / str(vid)).mkdir(parents=True, exist_ok=True)
    (tmp_path / "var" / str(vid) / "deployment.0").write_text(VM_XML.format(vid=vid, mb=mb))
    return f"/srv/cloud/vm/{vid}/images/deployment.0"


def test_the_dummy_starts_and_answers_init_within_a_second():
    """A driver is a cheap executable: the handshake comes long before oned's 5 s."""
    started = time.monotonic()
    driver = DriverProcess("one_vmm_dummy")
    try:
        assert driver.init() == "INIT SUCCESS - -"
        assert time.monotonic() - started < 1.0
    finally:
        driver.close()


def test_every_action_succeeds_and_deploy_answers_a_dummy_deploy_id(drivers, tmp_path):
    """The 1.4 wire, one reply per request."""
    driver = drivers()
    driver.send(
        f"DEPLOY 3 host01 {deployment(tmp_path, 3, 256)} -",
        "SHUTDOWN 3 host01 dummy-3 -",
        "CANCEL 3 host01 dummy-3 -",
        "SAVE 3 host01 dummy-3 /srv/cloud/vm/3/images/checkpoint",
        "RESTORE 3 host01 dummy-3 /srv/cloud/vm/3/images/checkpoint",
        "MIGRATE 3 host01 dummy-3 host02",
    )
    assert driver.reply("DEPLOY", 3) == "DEPLOY SUCCESS 3 dummy-3"
    for action in ("SHUTDOWN", "CANCEL", "SAVE", "RESTORE", "MIGRATE"):
        assert driver.reply(action, 3) == f"{action} SUCCESS 3 -"


def test_poll_reports_the_memory_of_the_deployed_vm_and_plausible_figures(drivers, tmp_path):
    """USEDMEMORY is the VM's MEMORY in KB; CPU and traffic are numbers."""
    driver = drivers()
    driver.send(f"DEPLOY 4 host01 {deployment(tmp_path, 4, 512)} -")
    driver.reply("DEPLOY", 4)  # requests run concurrently: POLL only once the deploy is done
    driver.send("POLL 4 host01 dummy-4 -")
    info = dict(word.split("=") for word in driver.reply("POLL", 4).split()[3:])
    assert info["STATE"] == "a" and info["USEDMEMORY"] == str(512 * 1024)
    assert 0 < int(info["USEDCPU"]) <= 10 and int(info["NETRX"]) >= 0 <= int(info["NETTX"])


def test_poll_of_a_vm_it_never_deployed_still_answers_running(drivers):
    """After a driver restart oned polls VMs this process never saw: they are running."""
    driver = drivers()
    driver.send("POLL 9 host01 dummy-9 -")
    assert driver.reply("POLL", 9).startswith("POLL SUCCESS 9 STATE=a USEDMEMORY=131072 ")


def test_the_script_fails_the_first_deploy_only(drivers, tmp_path):
    """times: 1 — the first DEPLOY fails with the message, the next ones succeed."""
    script = tmp_path / "vmm.yaml"
    write_script(script, 'DEPLOY: {outcome: failure, message: "no room", times: 1}\n')
    driver = drivers(f"--script {script}")
    driver.send("DEPLOY 1 h /vm/1/images/deployment.0 -")
    assert driver.reply("DEPLOY", 1) == "DEPLOY FAILURE 1 no room"
    driver.send("DEPLOY 2 h /vm/2/images/deployment.0 -")
    assert driver.reply("DEPLOY", 2) == "DEPLOY SUCCESS 2 dummy-2"


def test_rules_can_target_vm_ids_by_glob_and_set_the_poll_state(drivers, tmp_path):
    """POLL of VMs 10-19 says paused, the others running; the first matching glob wins."""
    script = tmp_path / "vmm.yaml"
    write_script(script, 'POLL:\n  "1?": {state: p}\n  "2*": {state: e}\n  "*": {}\n')
    driver = drivers(f"--script {script}")
    driver.send("POLL 12 h dummy-12 -", "POLL 21 h dummy-21 -", "POLL 3 h dummy-3 -")
    assert driver.reply("POLL", 12).startswith("POLL SUCCESS 12 STATE=p ")
    assert driver.reply("POLL", 21).startswith("POLL SUCCESS 21 STATE=e ")
    assert driver.reply("POLL", 3).startswith("POLL SUCCESS 3 STATE=a ")


def test_a_delayed_action_does_not_hold_up_the_others(drivers, tmp_path):
    """SAVE waits its seconds; a POLL sent after it is answered first."""
    script = tmp_path / "vmm.yaml"
    write_script(script, "SAVE: {outcome: delay, seconds: 0.5}\n")
    driver = drivers(f"--script {script}")
    started = time.monotonic()
    driver.send("SAVE 5 h dummy-5 /c", "POLL 6 h dummy-6 -")
    first, second = driver.next_lines(2, timeout=10)
    assert first.startswith("POLL SUCCESS 6 ") and second == "SAVE SUCCESS 5 -"
    assert time.monotonic() - started >= 0.5


def test_a_hung_action_is_never_answered_and_driver_cancel_reaches_it(drivers, tmp_path):
    """hang: no reply (oned's timeout deals with it); DRIVER_CANCEL finds it in flight."""
    script = tmp_path / "vmm.yaml"
    write_script(script, "CANCEL: {outcome: hang}\nSHUTDOWN: {delay: 30}\n")
    driver = drivers(f"--script {script}")
    driver.send("SHUTDOWN 7 h dummy-7 -", "CANCEL 8 h dummy-8 -", "DRIVER_CANCEL 7")
    assert driver.wait_line(lambda line: line.startswith("LOG - 7 ")) == (
        "LOG - 7 Driver command for 7 cancelled"
    )
    driver.send("POLL 9 h dummy-9 -")
    assert driver.reply("POLL", 9).startswith("POLL SUCCESS 9 ")
    assert not any(line.startswith(("CANCEL", "SHUTDOWN")) for line in driver.seen)


def test_the_script_is_reread_when_it_changes(drivers, tmp_path):
    """Fault injection at run time: rewrite the script and the next MIGRATE fails."""
    script = tmp_path / "vmm.yaml"
    write_script(script, "")
    driver = drivers(f"--script {script}")
    driver.send("MIGRATE 1 h dummy-1 h2")
    assert driver.reply("MIGRATE", 1) == "MIGRATE SUCCESS 1 -"
    write_script(script, "MIGRATE: {outcome: failure}\n")
    driver.send("MIGRATE 1 h dummy-1 h2")
    assert driver.reply("MIGRATE", 1) == "MIGRATE FAILURE 1 MIGRATE failed (scripted)"


def test_a_broken_script_is_reported_and_the_previous_rules_kept(drivers, tmp_path):
    """A script that does not parse changes nothing; the reason goes to a LOG line."""
    script = tmp_path / "vmm.yaml"
    write_script(script, "DEPLOY: {outcome: failure}\n")
    driver = drivers(f"--script {script}")
    driver.send("DEPLOY 1 h /vm/1/images/deployment.0 -")
    driver.reply("DEPLOY", 1)
    write_script(script, "DEPLOY: {outcome: explode}\n")
    driver.send("DEPLOY 2 h /vm/2/images/deployment.0 -")
    assert driver.reply("DEPLOY", 2) == "DEPLOY FAILURE 2 DEPLOY failed (scripted)"
    assert "outcome 'explode' is not one of" in driver.wait_line(lambda ln: ln.startswith("LOG"))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (["DEPLOY"], "the script must map actions to rules"),
        ({"BOOT": {}}, "BOOT: not one of DEPLOY"),
        ({"POLL": {"state": "x"}}, "POLL: state 'x' is not one of a, p, e, d, -"),
        ({"SAVE": {"1*": {"colour": "red"}}}, "SAVE 1\\*: settings must be a mapping of"),
        ({"SAVE": {"times": "many"}}, "SAVE: invalid literal"),
        ({"SAVE": 3}, "SAVE: must be a rule or a mapping of VM id globs to rules"),
    ],
)
def test_a_wrong_script_is_refused_naming_the_place(document, message):
    """Every mistake names the action (and glob) it is in."""
    with pytest.raises(ValueError, match=message):
        parse_script(document)


def test_the_dummy_answers_thousands_of_pipelined_requests(drivers):
    """5,000 POLLs sent at once all get their answer (throughput is measured in bench/)."""
    driver = drivers()
    lines = [f"POLL {vid} h dummy-{vid} -" for vid in range(5000)]
    started = time.monotonic()
    driver.send(*lines)
    replies = driver.next_lines(5000, timeout=30)
    elapsed = time.monotonic() - started
    assert all(line.startswith("POLL SUCCESS ") for line in replies)
    print(f"TIMING 5000 POLL {elapsed:.2f} s ({5000 / elapsed:.0f}/s)")
