"""one_im_dummy as oned runs it: a real process on pipes, its outcomes scripted at run time."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from drivers.im_dummy import Rule, host_info, parse_rules, rule_for
from tests.e2e.driver_process import DriverProcess


@pytest.fixture
def drivers():
    started: list[DriverProcess] = []

    def start(arguments: str = "") -> DriverProcess:
        started.append(DriverProcess("one_im_dummy", arguments))
        return started[-1]

    yield start
    for driver in started:
        driver.close()


def write_script(path: Path, text: str) -> None:
    """Replace the script atomically, as an operator's editor or a test harness would."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_the_dummy_answers_init_soon_after_it_starts(drivers):
    """A driver is a cheap executable: the handshake comes well inside oned's 5 s."""
    started = time.monotonic()
    driver = drivers()
    assert driver.init() == "INIT SUCCESS - -"
    assert time.monotonic() - started < 2.0


def test_monitor_reports_opennebula_dummy_capacity(drivers):
    """800 CPU and 16 GB by default, everything free, in the 2.0 space-separated form."""
    driver = drivers()
    driver.init()
    driver.send("MONITOR 3 host03 0")
    assert driver.reply("MONITOR", 3) == (
        "MONITOR SUCCESS 3 HYPERVISOR=dummy HOSTNAME=host03 TOTALCPU=800 CPUSPEED=2200 "
        "TOTALMEMORY=16777216 USEDMEMORY=0 FREEMEMORY=16777216 FREECPU=800 USEDCPU=0 "
        "NETRX=0 NETTX=0"
    )


def test_capacity_comes_from_the_arguments_given_as_one_argv_element(drivers):
    """oned passes ARGUMENTS whole; the driver splits it."""
    driver = drivers("--cpu 400 --memory 1048576")
    driver.init()
    driver.send("MONITOR 1 small 1")
    reply = driver.reply("MONITOR", 1)
    assert "TOTALCPU=400" in reply and "TOTALMEMORY=1048576 " in reply


def test_a_1_4_monitor_request_without_the_update_flag_is_answered(drivers):
    """OpenNebula 1.4 sends MONITOR <id> <host> with no flag."""
    driver = drivers()
    driver.init()
    driver.send("MONITOR 9 old")
    assert driver.reply("MONITOR", 9).startswith("MONITOR SUCCESS 9 HYPERVISOR=dummy")


def test_the_script_flips_a_host_to_failure_while_the_driver_runs(drivers, tmp_path):
    """Fault injection: rewrite the script and the next MONITOR of that host fails."""
    script = tmp_path / "hosts.yaml"
    write_script(script, "")
    driver = drivers(f"--script {script}")
    driver.init()
    driver.send("MONITOR 1 h-1 0")
    assert driver.reply("MONITOR", 1).startswith("MONITOR SUCCESS 1 ")
    write_script(script, '"h-1": {outcome: failure, message: "disk on fire"}\n')
    driver.send("MONITOR 1 h-1 0", "MONITOR 2 h-2 0")
    assert driver.reply("MONITOR", 1) == "MONITOR FAILURE 1 disk on fire"
    assert driver.reply("MONITOR", 2).startswith("MONITOR SUCCESS 2 ")
    write_script(script, "")
    driver.send("MONITOR 1 h-1 0")
    assert driver.reply("MONITOR", 1).startswith("MONITOR SUCCESS 1 ")


def test_a_scripted_failure_without_message_uses_opennebula_text(drivers, tmp_path):
    """The default failure reads like OpenNebula's."""
    script = tmp_path / "hosts.yaml"
    write_script(script, '"bad*": {outcome: failure}\n')
    driver = drivers(f"--script {script}")
    driver.send("MONITOR 4 bad4 0")
    assert driver.reply("MONITOR", 4) == "MONITOR FAILURE 4 Could not monitor host bad4."


def test_a_garbage_outcome_answers_success_with_the_garbage(drivers, tmp_path):
    """Like a broken probe: SUCCESS whose info is not a template; oned must judge it."""
    script = tmp_path / "hosts.yaml"
    write_script(script, '"junk": {outcome: garbage, message: "Segmentation fault"}\n')
    driver = drivers(f"--script {script}")
    driver.send("MONITOR 5 junk 0")
    assert driver.reply("MONITOR", 5) == "MONITOR SUCCESS 5 Segmentation fault"


def test_a_hung_host_is_never_answered_and_delays_no_other(drivers, tmp_path):
    """A hang holds no worker: requests sent after it are answered, it never is."""
    script = tmp_path / "hosts.yaml"
    write_script(script, '"stuck": {outcome: hang}\n')
    driver = drivers(f"--script {script} --concurrency 1")
    driver.send("MONITOR 6 stuck 0", "MONITOR 7 fine 0", "MONITOR 8 fine2 0")
    driver.reply("MONITOR", 7)
    driver.reply("MONITOR", 8)
    assert not any(" 6 " in line for line in driver.seen)


def test_a_delayed_host_answers_after_hosts_asked_later(drivers, tmp_path):
    """A slow host occupies one worker, not the driver."""
    script = tmp_path / "hosts.yaml"
    write_script(script, '"slow": {delay: 1.0}\n')
    driver = drivers(f"--script {script}")
    driver.send("MONITOR 1 slow 0", "MONITOR 2 quick 0")
    first = driver.wait_line(lambda line: line.startswith("MONITOR "))
    assert first.startswith("MONITOR SUCCESS 2 ")
    assert driver.reply("MONITOR", 1).startswith("MONITOR SUCCESS 1 HYPERVISOR=dummy")


def test_a_script_that_does_not_parse_is_reported_and_the_old_rules_kept(drivers, tmp_path):
    """A typo in the script is logged once; hosts keep their previous outcome."""
    script = tmp_path / "hosts.yaml"
    write_script(script, '"h": {outcome: failure}\n')
    driver = drivers(f"--script {script}")
    driver.send("MONITOR 1 h 0")
    assert driver.reply("MONITOR", 1).startswith("MONITOR FAILURE 1 ")
    write_script(script, '"h": {outcome: explode}\n')
    driver.send("MONITOR 1 h 0")
    assert driver.reply("MONITOR", 1).startswith("MONITOR FAILURE 1 ")
    log = driver.wait_line(lambda line: line.startswith("LOG - 1 ignoring the changes"))
    assert "explode" in log


def test_rules_match_the_first_glob_in_file_order():
    """Earlier globs win, so specific hosts go before catch-alls."""
    rules = parse_rules({"web-1": {"cpu": 100}, "web-*": {"cpu": 200}, "*": None})
    assert rule_for(rules, "web-1").cpu == 100
    assert rule_for(rules, "web-2").cpu == 200
    assert rule_for(rules, "db").pattern == "*"
    assert rule_for(parse_rules(None), "db") is None


@pytest.mark.parametrize(
    "document",
    [["not", "a", "mapping"], {"h": {"colour": "red"}}, {"h": {"cpu": "lots"}}, {"h": 3}],
)
def test_malformed_rules_are_refused_naming_the_glob(document):
    """Unknown settings, bad numbers and non-mappings are errors."""
    with pytest.raises(ValueError):
        parse_rules(document)


def test_per_host_capacity_from_the_script_replaces_the_defaults():
    """cpu and memory in a rule override the driver's arguments for those hosts."""
    rule = parse_rules({"big": {"cpu": 6400, "memory": 268435456}})[0]
    assert rule == Rule("big", cpu=6400, memory=268435456)
    assert "TOTALCPU=6400" in host_info("big", rule.cpu, rule.memory)
