"""one_hm as oned runs it: local hooks on the front end, remote ones on a namespace host."""

from __future__ import annotations

import pytest

from drivers.hm import Hook, parse_execute
from drivers.protocol import DriverFailure, Request, encode_words
from tests.e2e.driver_process import DriverProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def hm():
    started: list[DriverProcess] = []

    def start(arguments: str = "") -> DriverProcess:
        driver = DriverProcess("one_hm", arguments)
        assert driver.init() == "INIT SUCCESS - -"
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.close()


def test_hm_parses_local_and_remote_execute_requests():
    """EXECUTE vid name LOCAL|host command args...; each argument is one word, never re-split."""
    local = Request("EXECUTE", "3", ("log", "LOCAL", "/bin/echo", "a b", "c; rm -rf /", ""))
    assert parse_execute(local) == Hook("log", None, ("/bin/echo", "a b", "c; rm -rf /", ""))
    remote = Request("EXECUTE", "3", ("net", "host01", "/srv/hook.sh", "-"))
    assert parse_execute(remote) == Hook("net", "host01", ("/srv/hook.sh", "-"))
    with pytest.raises(DriverFailure):
        parse_execute(Request("EXECUTE", "3", ("name", "LOCAL")))


def test_hm_runs_a_local_hook_and_answers_its_first_output_line(hm):
    """The reply is 'name: first line'; every output line is logged for the VM."""
    driver = hm()
    driver.send("EXECUTE 3 hello LOCAL /bin/echo hi there")
    assert driver.reply("EXECUTE", 3) == "EXECUTE SUCCESS 3 hello: hi there"
    assert "LOG - 3 hi there" in driver.seen


def test_hm_passes_the_dash_oned_sends_for_empty_arguments(hm):
    """NOTE: OpenNebula hands the literal '-' to the hook; so do we."""
    driver = hm()
    driver.send("EXECUTE 4 dash LOCAL /bin/echo -")
    assert driver.reply("EXECUTE", 4) == "EXECUTE SUCCESS 4 dash: -"


def test_hm_answers_failure_with_the_hooks_error(hm):
    """A non-zero exit is FAILURE with the first stderr line."""
    driver = hm()
    driver.send(
        encode_words(["EXECUTE", 5, "bad", "LOCAL", "/bin/sh", "-c", "echo nope >&2; exit 3"])
    )
    assert driver.reply("EXECUTE", 5) == "EXECUTE FAILURE 5 bad: nope"
    driver.send("EXECUTE 6 gone LOCAL /no/such/hook")
    assert driver.reply("EXECUTE", 6) == "EXECUTE FAILURE 6 gone: command not found: /no/such/hook"


def test_hm_cuts_a_hook_at_its_timeout(hm):
    """--timeout bounds every hook."""
    driver = hm("--timeout 1")
    driver.send("EXECUTE 7 slow LOCAL /bin/sleep 30")
    assert driver.reply("EXECUTE", 7) == "EXECUTE FAILURE 7 slow: timed out after 1 s"


def test_hm_runs_a_remote_hook_on_the_host_over_ssh(hm, test_hosts):
    """remote = yes: the hook runs on the VM's host (its own host name proves it)."""
    name, address = test_hosts[0]
    driver = hm()
    driver.send(f"EXECUTE 8 where {address} uname -n")
    assert driver.reply("EXECUTE", 8, timeout=30) == f"EXECUTE SUCCESS 8 where: {name}"


def test_hm_runs_a_hook_argument_with_spaces_and_shell_syntax_as_one_literal_argument(hm, tmp_path):
    """Finding 2 (issue 10): hook arguments were re-split after expansion. A VM name such as
    "x; touch FILE" reaches the hook as one argument, and nothing it names runs."""
    victim = tmp_path / "ran"
    name = f"x; touch {victim}\nsecond line"
    driver = hm()
    driver.send(
        encode_words(["EXECUTE", 9, "count", "LOCAL", "/bin/sh", "-c", 'echo "$#"', "sh", name])
    )
    assert driver.reply("EXECUTE", 9) == "EXECUTE SUCCESS 9 count: 1"
    assert not victim.exists()


def test_hm_runs_a_remote_hook_argument_as_one_literal_word_over_ssh(hm, test_hosts, tmp_path):
    """Finding 2 (issue 10), remote = yes: the SSH command line quotes every word, so an
    argument with a quote, $() and ; reaches the hook on the host as it was, and runs nothing.
    (The namespace hosts share this file system, so tmp_path is where the host would write.)"""
    _, address = test_hosts[0]
    victim = tmp_path / "injected"
    value = f"it's $(touch {victim}); `touch {victim}` done"
    driver = hm()
    driver.send(encode_words(["EXECUTE", 10, "echo", address, "printf", "%s|%s", value, "-"]))
    assert driver.reply("EXECUTE", 10, timeout=30) == f"EXECUTE SUCCESS 10 echo: {value}|-"
    assert not victim.exists()
