"""`one` (cli/one.py, cli/services.py): pid files, the lock, oned.conf reading and its messages.

A fake `oned` written by the tests (a small Python script that binds the PORT of oned.conf and
writes its pid file, as the real one does) stands in for the daemon, and a fake `mm_sched`
(writes sched.pid and sched.log, records its arguments) for the scheduler; `one` itself runs as
a separate process, as a user runs it, so that the daemons it starts are really detached.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import one, services
from oned.locations import locations

REPO = Path(__file__).resolve().parents[2]

FAKE_ONED = """\
#!{python}
import os, re, signal, socket, sys

root = os.environ["ONE_LOCATION"]
with open(os.path.join(root, "etc", "oned.conf")) as conf:
    text = conf.read()
if "BROKEN" in text:
    print("oned: wrong value for PORT in oned.conf, line 1", file=sys.stderr)
    sys.exit(1)
port = int(re.search(r"PORT\\s*=\\s*(\\d+)", text).group(1))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
pid_file = os.path.join(root, "var", "oned.pid")
with open(pid_file, "w") as f:
    f.write(f"{{os.getpid()}}\\n")

def stop(signum, frame):
    os.unlink(pid_file)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
while True:
    server.accept()[0].close()
"""

FAKE_MM_SCHED = """\
#!{python}
import os, signal, sys, time

root = os.environ["ONE_LOCATION"]
conf = os.path.join(root, "etc", "sched.conf")
if os.path.exists(conf) and "BROKEN" in open(conf).read():
    print("mm_sched: sched.conf line 1: MAX_VM is not an integer", file=sys.stderr)
    sys.exit(1)
var = os.path.join(root, "var")
with open(os.path.join(var, "sched.args"), "w") as f:
    f.write(" ".join(sys.argv[1:]))
with open(os.path.join(var, "sched.log"), "a") as f:
    f.write("[SCHED][I]: Init Scheduler Log system\\n")
pid_file = os.path.join(var, "sched.pid")
with open(pid_file, "w") as f:
    f.write(f"{{os.getpid()}}\\n")

def stop(signum, frame):
    os.unlink(pid_file)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(1)
"""
STARTED = "oned and scheduler started\n"
STOPPED = "oned and scheduler stopped\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reaped_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@dataclass
class Install:
    """A self-contained install in a temporary directory, with a fake oned on PATH."""

    root: Path
    port: int
    env: dict[str, str]

    @property
    def pid_file(self) -> Path:
        return self.root / "var" / "oned.pid"

    @property
    def sched_pid_file(self) -> Path:
        return self.root / "var" / "sched.pid"

    def one(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `one ARGS` as a user would, in its own process."""
        return subprocess.run(
            [sys.executable, "-m", "cli.one", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def spawn_oned(self) -> subprocess.Popen[bytes]:
        """Start the fake oned directly, as if an earlier `one start` had."""
        oned = subprocess.Popen([str(self.root / "fakebin" / "oned"), "-f"], env=self.env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # waits on a real process: no virtual time here
            if self.pid_file.exists() and services.port_answers(("127.0.0.1", self.port)):
                return oned
            time.sleep(0.01)
        oned.kill()
        oned.wait()
        raise AssertionError("the fake oned did not start")


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    root = tmp_path / "one"
    for folder in ("etc", "var", "fakebin"):
        (root / folder).mkdir(parents=True)
    port = free_port()
    (root / "etc" / "oned.conf").write_text(f"PORT = {port}\n")
    for name, script in (("oned", FAKE_ONED), ("mm_sched", FAKE_MM_SCHED)):
        fake = root / "fakebin" / name
        fake.write_text(script.format(python=sys.executable))
        fake.chmod(0o755)
    auth = tmp_path / "one_auth"
    auth.write_text("oneadmin:secret\n")
    auth.chmod(0o600)  # as an operator keeps it; the test process's umask must not decide
    env = dict(os.environ)
    env.update(
        ONE_LOCATION=str(root),
        ONE_AUTH=str(auth),
        PATH=f"{root / 'fakebin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
    )
    for name in ("ONE_LOCATION", "ONE_AUTH"):
        monkeypatch.setenv(name, env[name])
    yield Install(root, port, env)
    for name, pid_file in (("oned", "oned.pid"), ("mm_sched", "sched.pid")):
        pid = services.read_pid(str(root / "var" / pid_file))
        if pid is not None and services.pid_alive(pid, name):
            os.kill(pid, signal.SIGKILL)


# --- pure parts ------------------------------------------------------------------------------


def test_the_started_message_names_every_service_as_the_1_4_script_did() -> None:
    """One service reads "oned started"; with the scheduler, "oned and scheduler started"."""
    assert one.joined(["oned"]) + " started" == "oned started"
    assert one.joined(["oned", "scheduler"]) + " started" == "oned and scheduler started"


def test_the_still_running_message_is_opennebula_s() -> None:
    """The refusal text is OpenNebula's, word for word."""
    assert one.still_running_message(42) == (
        "ONE is still running (PID:42). Please try 'one stop' first."
    )


def test_settings_are_read_from_an_oned_conf_ignoring_comments() -> None:
    """PORT, LISTEN_ADDRESS and the DB backend come from the file; comments do not count."""
    text = textwrap.dedent(
        """\
        # PORT = 1
        PORT = 2700
        LISTEN_ADDRESS = "127.0.0.2"
        DB = [ BACKEND = "postgresql",
               SERVER = "localhost" ]
        """
    )
    assert one.settings_from_text(text) == services.Settings(2700, "127.0.0.2", "postgresql")


def test_settings_default_to_port_2633_and_sqlite() -> None:
    """An oned.conf that sets nothing gives OpenNebula's defaults."""
    assert one.settings_from_text("DEBUG_LEVEL = 3\n") == services.Settings(
        2633, "0.0.0.0", "sqlite"
    )


def test_a_missing_oned_conf_gives_the_default_settings(tmp_path: Path) -> None:
    """No oned.conf: `one` still knows where to wait (oned reports the missing file itself)."""
    assert one.read_settings(str(tmp_path / "oned.conf")) == services.Settings()


def test_oned_is_awaited_on_loopback_unless_it_listens_on_one_address() -> None:
    """A wildcard LISTEN_ADDRESS is checked on 127.0.0.1, a specific one on itself."""
    assert services.connect_address(services.Settings(2633, "0.0.0.0")) == ("127.0.0.1", 2633)
    assert services.connect_address(services.Settings(2700, "127.0.0.5")) == ("127.0.0.5", 2700)


@pytest.mark.parametrize("content", ["", "garbage\n", "-3\n"])
def test_an_unreadable_pid_file_names_no_process(tmp_path: Path, content: str) -> None:
    """An empty or garbled pid file is treated as no pid at all."""
    path = tmp_path / "oned.pid"
    path.write_text(content)
    assert services.read_pid(str(path)) is None
    assert services.read_pid(str(tmp_path / "missing.pid")) is None


def test_a_pid_is_alive_only_while_its_process_runs_the_named_program() -> None:
    """A reaped pid is dead, and a live pid running another program is not oned."""
    assert services.pid_alive(os.getpid())
    assert not services.pid_alive(os.getpid(), "oned")
    assert not services.pid_alive(reaped_pid())


def test_a_zombie_counts_as_dead() -> None:
    """A process that exited but was not reaped yet is not running."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT) is None:
        pass
    assert not services.pid_alive(child.pid)
    child.wait()


def test_stop_pid_kills_a_process_that_ignores_sigterm() -> None:
    """After the grace time SIGTERM is followed by SIGKILL."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print(1, flush=True); time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
        child.stdout.readline()
        services.stop_pid(child.pid, timeout=0.2)
        assert child.wait(timeout=5) == -signal.SIGKILL


def test_oned_is_looked_for_next_to_the_one_executable_first(tmp_path: Path) -> None:
    """An install's bin/one starts the bin/oned beside it, not one found on PATH."""
    (tmp_path / "one").touch()
    oned = tmp_path / "oned"
    oned.touch(mode=0o755)
    assert services.find_executable("oned", str(tmp_path / "one")) == str(oned)


def test_start_b_and_b_start_both_ask_for_a_log_backup() -> None:
    """`one -b start` (2.0's form) and `one start -b` are the same; plain start backs up nothing."""
    assert one.parser().parse_args(["-b", "start"]).backup
    assert one.parser().parse_args(["start", "-b"]).backup
    assert not one.parser().parse_args(["start"]).backup


def test_the_backup_moves_oned_log_aside(install: Install) -> None:
    """`-b` renames oned.log to oned.log.<timestamp> and keeps its content."""
    log = install.root / "var" / "oned.log"
    log.write_text("old run\n")
    one.backup_logs(services.SERVICES, locations())
    (backup,) = install.root.joinpath("var").glob("oned.log.*")
    assert backup.read_text() == "old run\n"
    assert not log.exists()


# --- the command -----------------------------------------------------------------------------


def test_start_without_one_auth_on_a_new_database_fails_with_one_line(
    install: Install, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first SQLite start needs the ONE_AUTH file to create oneadmin; nothing is started."""
    missing = str(install.root / "no_auth")
    monkeypatch.setenv("ONE_AUTH", missing)
    assert one.main(["start"]) == 1
    assert capsys.readouterr().err == f"one: {one.missing_auth_message(missing)}\n"
    assert not install.pid_file.exists()


def test_start_refuses_while_the_pid_file_names_a_live_oned(
    install: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    """A running oned is never started twice."""
    oned = install.spawn_oned()
    try:
        assert one.main(["start"]) == 1
        assert capsys.readouterr().err == f"one: {one.still_running_message(oned.pid)}\n"
    finally:
        oned.terminate()
        oned.wait()


def test_status_tells_whether_oned_runs(
    install: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    """`one status` prints one line per service and exits 3 when one is stopped."""
    assert one.main(["status"]) == 3
    assert capsys.readouterr().out == "oned: stopped\nmm_sched: stopped\n"
    oned = install.spawn_oned()
    try:
        assert one.main(["status"]) == 3
        assert capsys.readouterr().out == f"oned: running (PID {oned.pid})\nmm_sched: stopped\n"
    finally:
        oned.terminate()
        oned.wait()


def test_start_and_stop_run_oned_detached_and_clean_up(install: Install) -> None:
    """start waits until the port answers; stop ends oned and removes its pid file."""
    started = install.one("start")
    assert (started.returncode, started.stdout) == (0, STARTED), started.stderr
    pid = services.read_pid(str(install.pid_file))
    assert pid is not None and services.pid_alive(pid, "oned")
    assert services.port_answers(("127.0.0.1", install.port))
    stopped = install.one("stop")
    assert (stopped.returncode, stopped.stdout) == (0, STOPPED), stopped.stderr
    assert not install.pid_file.exists()
    assert not services.pid_alive(pid)


def test_stop_when_nothing_runs_says_so_and_succeeds(install: Install) -> None:
    """Stopping a stopped ONE is not an error."""
    result = install.one("stop")
    assert (result.returncode, result.stdout) == (0, "ONE is not running\n")


def test_a_stale_pid_file_and_lock_do_not_block_a_start(install: Install) -> None:
    """Leftovers of a crashed run (dead pid, lock file) are cleared and oned starts."""
    stale = reaped_pid()
    install.pid_file.write_text(f"{stale}\n")
    (install.root / "var" / ".lock").write_text("stale\n")
    result = install.one("start")
    assert (result.returncode, result.stdout) == (0, STARTED), result.stderr
    assert services.read_pid(str(install.pid_file)) not in (None, stale)
    install.one("stop")


def test_an_existing_database_needs_no_one_auth(install: Install) -> None:
    """oneadmin exists once the database does, so later starts need no ONE_AUTH file."""
    (install.root / "var" / "one.db").touch()
    install.env["ONE_AUTH"] = str(install.root / "no_auth")
    result = install.one("start")
    assert (result.returncode, result.stdout) == (0, STARTED), result.stderr
    install.one("stop")


def test_a_failing_oned_is_reported_with_its_last_line(install: Install) -> None:
    """When oned exits at start, `one` prints oned's own message and exits 1."""
    conf = install.root / "etc" / "oned.conf"
    conf.write_text(conf.read_text() + "# BROKEN\n")
    result = install.one("start")
    assert result.returncode == 1
    assert result.stderr == (
        "one: oned failed to start: oned: wrong value for PORT in oned.conf, line 1\n"
    )
    assert not install.pid_file.exists()


def test_start_refuses_a_port_already_taken(install: Install) -> None:
    """Another process on oned's port would make the readiness check lie, so start refuses."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", install.port))
        squatter.listen()
        result = install.one("start")
    assert result.returncode == 1
    assert result.stderr == f"one: port {install.port} is already in use by another process\n"


def test_a_second_one_command_fails_while_the_lock_is_held(install: Install) -> None:
    """Two `one` commands never start or stop at the same time."""
    with one.one_lock(locations()):
        result = install.one("stop")
    assert result.returncode == 1
    assert result.stderr == f"one: another 'one' command holds the lock {locations().lock}\n"


# --- the scheduler ---------------------------------------------------------------------------


def test_the_scheduler_is_started_after_oned_with_opennebula_s_file_names() -> None:
    """mm_sched comes second, with -p PORT only, and keeps sched.pid and sched.log."""
    oned, sched = services.SERVICES
    assert (oned.name, sched.name, sched.label, sched.args) == (
        "oned",
        "mm_sched",
        "scheduler",
        ("-p", "{port}"),
    )
    loc = locations({"ONE_LOCATION": "/srv/cloud/one"})
    assert sched.pid_file(loc) == "/srv/cloud/one/var/sched.pid"
    assert sched.log_file(loc) == "/srv/cloud/one/var/sched.log"
    system = locations({})
    assert (sched.pid_file(system), sched.log_file(system)) == (
        "/var/run/one/sched.pid",
        "/var/log/one/sched.log",
    )
    assert oned.pid_file(system) == "/var/run/one/oned.pid"


def test_start_runs_mm_sched_with_the_port_only_and_stop_ends_it(install: Install) -> None:
    """sched.conf keeps its say: `mm_sched -p PORT`; status shows both; stop ends both."""
    started = install.one("start")
    assert (started.returncode, started.stdout) == (0, STARTED), started.stderr
    assert (install.root / "var" / "sched.args").read_text() == f"-p {install.port}"
    oned, sched = (services.read_pid(str(p)) for p in (install.pid_file, install.sched_pid_file))
    assert sched is not None and services.pid_alive(sched, "mm_sched")
    status = install.one("status")
    assert (status.returncode, status.stdout) == (
        0,
        f"oned: running (PID {oned})\nmm_sched: running (PID {sched})\n",
    )
    stopped = install.one("stop")
    assert (stopped.returncode, stopped.stdout) == (0, STOPPED), stopped.stderr
    assert not install.sched_pid_file.exists() and not install.pid_file.exists()
    assert not services.pid_alive(sched)


def test_a_scheduler_that_fails_to_start_is_reported_and_oned_is_stopped_again(
    install: Install,
) -> None:
    """A half-started cloud is not left behind: mm_sched's last words, exit 1, nothing runs."""
    (install.root / "etc" / "sched.conf").write_text("MAX_VM = BROKEN\n")
    result = install.one("start")
    assert result.returncode == 1
    assert result.stderr == (
        "one: mm_sched failed to start: mm_sched: sched.conf line 1: MAX_VM is not an integer\n"
    )
    assert not install.pid_file.exists() and not install.sched_pid_file.exists()
    assert not services.port_answers(("127.0.0.1", install.port))


def test_stop_with_only_the_scheduler_left_stops_it(install: Install) -> None:
    """When oned died on its own, `one stop` still ends the scheduler and names it alone."""
    assert install.one("start").returncode == 0
    oned = services.read_pid(str(install.pid_file))
    assert oned is not None
    os.kill(oned, signal.SIGKILL)
    assert services.wait_gone(oned, 10)
    result = install.one("stop")
    assert (result.returncode, result.stdout) == (0, "scheduler stopped\n"), result.stderr
    assert not install.sched_pid_file.exists()


def test_the_backup_moves_sched_log_aside_too(install: Install) -> None:
    """`-b` keeps the scheduler's previous log as sched.log.<timestamp>."""
    log = install.root / "var" / "sched.log"
    log.write_text("old rounds\n")
    one.backup_logs(services.SERVICES, locations())
    (backup,) = install.root.joinpath("var").glob("sched.log.*")
    assert backup.read_text() == "old rounds\n"
    assert not log.exists()


# --- issue 10: files private, never root system-wide -----------------------------------------


def test_a_system_wide_start_as_root_is_refused_and_a_self_contained_one_is_not() -> None:
    """oned runs as oneadmin in a system-wide install; ONE_LOCATION installs are the user's."""
    with pytest.raises(services.OneError, match="sudo -u oneadmin one start"):
        one.check_user(locations({}), 0)
    one.check_user(locations({}), 1000)
    one.check_user(locations({"ONE_LOCATION": "/srv/one"}), 0)


@pytest.mark.parametrize(
    ("line", "umask"), [("", 0o077), ("UMASK = 027\n", 0o027), ("UMASK = 022\n", 0o027)]
)
def test_the_umask_comes_from_oned_conf_and_never_lets_others_read(line: str, umask: int) -> None:
    """UMASK (077 by default); one letting others read is narrowed (oned refuses it)."""
    assert one.settings_from_text(f"PORT = 2700\n{line}").umask == umask


def test_start_creates_its_files_with_oned_conf_s_umask_and_warns_of_a_readable_one_auth(
    install: Install,
) -> None:
    """Issue 10, finding 4: `one start` from a shell with umask 022 made 0644 pid and output
    files; they follow UMASK now, and a world-readable ONE_AUTH file is pointed out."""
    auth = Path(install.env["ONE_AUTH"])
    auth.chmod(0o644)
    old = os.umask(0o022)
    try:
        started = install.one("start")
    finally:
        os.umask(old)
    try:
        assert started.returncode == 0, started.stderr
        assert one.readable_auth_message(str(auth), 0o644) in started.stderr
        var = install.root / "var"
        modes = {name: (var / name).stat().st_mode & 0o777 for name in ("oned.out", "oned.pid")}
        assert modes == {"oned.out": 0o600, "oned.pid": 0o600}
    finally:
        install.one("stop")
