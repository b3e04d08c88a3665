"""The driver line protocol: the codec as tables, and serve() over in-memory pipes."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.protocol import (
    DriverFailure,
    NoReply,
    ProtocolError,
    Reply,
    Request,
    format_attribute,
    format_attributes,
    format_log,
    format_reply,
    one_line,
    parse_reply,
    parse_request,
)
from drivers.serve import Logger, host_lane, serve

WAIT = 10  # seconds: only ever reached when a test is about to fail


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MONITOR 3 host01 1", Request("MONITOR", "3", ("host01", "1"))),
        ("MONITOR 3 host01", Request("MONITOR", "3", ("host01",))),
        ("  monitor\t3   host01  \n", Request("MONITOR", "3", ("host01",))),
        ("INIT", Request("INIT", "-", ())),
        ("FINALIZE\n", Request("FINALIZE", "-", ())),
        ("DRIVER_CANCEL 12", Request("DRIVER_CANCEL", "12", ())),
        (
            "EXECUTE 4 hook LOCAL /bin/echo -",
            Request("EXECUTE", "4", ("hook", "LOCAL", "/bin/echo", "-")),
        ),
    ],
)
def test_parse_request_splits_action_id_and_arguments(line, expected):
    """A request is ACTION ID ARG..., the action upper-cased as the Ruby drivers do."""
    assert parse_request(line) == expected


@pytest.mark.parametrize("line", ["", "   \n", "MONITOR", "bad! 1 2", "1MONITOR 3", "é 3"])
def test_parse_request_refuses_malformed_lines(line):
    """Blank lines, non-word actions and actions without an id are protocol errors."""
    with pytest.raises(ProtocolError):
        parse_request(line)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("INIT SUCCESS - -", Reply("INIT", "SUCCESS", "-", "-")),
        ('MONITOR SUCCESS 3 A=1 B="x y"\n', Reply("MONITOR", "SUCCESS", "3", 'A=1 B="x y"')),
        (
            "MONITOR FAILURE 3 cannot resolve host h",
            Reply("MONITOR", "FAILURE", "3", "cannot resolve host h"),
        ),
        ("EXECUTE SUCCESS 7", Reply("EXECUTE", "SUCCESS", "7", "")),
        ("LOG - 3 copied probes", Reply("LOG", "-", "3", "copied probes")),
        ("LOG E - oops", Reply("LOG", "E", "-", "oops")),
    ],
)
def test_parse_reply_keeps_the_rest_of_the_line_as_info(line, expected):
    """INFO is everything after the id, spaces included."""
    assert parse_reply(line) == expected


@pytest.mark.parametrize("line", ["", "MONITOR", "MONITOR SUCCESS", "MONITOR MAYBE 3 x"])
def test_parse_reply_refuses_short_lines_and_unknown_results(line):
    """A reply needs action, SUCCESS/FAILURE (or a LOG severity) and an id."""
    with pytest.raises(ProtocolError):
        parse_reply(line)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("MONITOR", True, 3, "A=1 B=2"), "MONITOR SUCCESS 3 A=1 B=2\n"),
        (
            ("MONITOR", False, "3", "first\nsecond\r\nthird"),
            "MONITOR FAILURE 3 first second third\n",
        ),
        (("EXECUTE", True, 9, ""), "EXECUTE SUCCESS 9 -\n"),
        (("INIT", True, "-", "  \n "), "INIT SUCCESS - -\n"),
    ],
)
def test_format_reply_always_gives_exactly_one_line(args, expected):
    """Newlines in INFO become spaces; an empty INFO is a dash."""
    assert format_reply(*args) == expected


def test_format_log_puts_a_dash_in_the_result_field():
    """LOG lines are LOG - ID text (1.4/2.0 form), one line."""
    assert format_log(5, "a\nb") == "LOG - 5 a b\n"
    assert format_log("-", "") == "LOG - - -\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (800, "X=800"),
        ("kvm", "X=kvm"),
        ("AMD EPYC 7B13", 'X="AMD EPYC 7B13"'),
        ("a=b", 'X="a=b"'),
        ("a#b", 'X="a#b"'),
        ("a,b", 'X="a,b"'),
        ('say "hi"', 'X="say \\"hi\\""'),
        ("C:\\dir", 'X="C:\\\\dir"'),
        ("", 'X=""'),
        ("two\nlines", 'X="two lines"'),
    ],
)
def test_format_attribute_quotes_values_the_template_parser_would_split(value, expected):
    """Spaces, =, #, commas, brackets, quotes and backslashes force quoting with escapes."""
    assert format_attribute("X", value) == expected


def test_format_attributes_joins_pairs_with_spaces():
    """The 2.0 MONITOR SUCCESS info is space-separated attributes."""
    assert format_attributes({"A": 1, "B": "x y"}) == 'A=1 B="x y"'


@given(st.text(), st.booleans(), st.integers(min_value=0))
def test_any_info_survives_a_reply_round_trip_on_one_line(info, ok, ident):
    """Whatever the INFO, the reply is one line and parses back to the same fields."""
    line = format_reply("MONITOR", ok, ident, info)
    assert line.endswith("\n") and "\n" not in line[:-1] and "\r" not in line
    reply = parse_reply(line)
    assert (reply.ok, reply.id) == (ok, str(ident))
    assert " ".join(reply.info.split()) == (" ".join(one_line(info).split()) or "-")


# ---------------------------------------------------------------------------------------------
# serve() over in-memory pipes


class Wire:
    """serve() in a thread: lines go in through a queue, every write() call is kept."""

    def __init__(self, actions: dict[str, Callable[[Request, Logger], str]], **options) -> None:
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.writes: list[bytes] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(
            target=serve, args=(actions,), kwargs={"stdin": self, "stdout": self, **options}
        )
        self.thread.start()

    def __iter__(self) -> Iterator[bytes]:
        while (line := self.inbox.get()) is not None:
            yield line

    def write(self, data: bytes) -> int:
        with self.changed:
            self.writes.append(bytes(data))
            self.changed.notify_all()
        return len(data)

    def flush(self) -> None:
        pass

    def send(self, *lines: str) -> None:
        for line in lines:
            self.inbox.put(line.encode() + b"\n")

    def close(self) -> None:
        self.inbox.put(None)
        self.thread.join(WAIT)

    @property
    def lines(self) -> list[str]:
        with self.changed:
            return [w.decode() for w in self.writes]

    def wait_for(self, predicate: Callable[[list[str]], bool]) -> list[str]:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.lines), WAIT), self.lines
        return self.lines

    def wait_for_line(self, text: str) -> list[str]:
        return self.wait_for(lambda lines: text + "\n" in lines)


@pytest.fixture
def wire_factory():
    wires: list[Wire] = []

    def make(actions, **options) -> Wire:
        wires.append(Wire(actions, **options))
        return wires[-1]

    yield make
    for wire in wires:
        wire.close()


def echo(request: Request, log: Logger) -> str:
    return " ".join(request.args)


def test_serve_answers_init_with_success_and_dashes(wire_factory):
    """The handshake oned waits 5 s for."""
    wire = wire_factory({})
    wire.send("INIT")
    assert wire.wait_for_line("INIT SUCCESS - -") == ["INIT SUCCESS - -\n"]


def test_serve_replies_with_what_the_action_returns(wire_factory):
    """A handler's return value is the SUCCESS info."""
    wire = wire_factory({"MONITOR": echo})
    wire.send("MONITOR 4 host04 0")
    wire.wait_for_line("MONITOR SUCCESS 4 host04 0")


def test_driver_failure_answers_failure_with_its_message(wire_factory):
    """DriverFailure is the normal way for an action to fail."""

    def fail(request, log):
        raise DriverFailure("cannot resolve host nowhere")

    wire = wire_factory({"MONITOR": fail})
    wire.send("MONITOR 2 nowhere 0")
    wire.wait_for_line("MONITOR FAILURE 2 cannot resolve host nowhere")


def test_unexpected_exception_answers_a_one_line_failure(wire_factory):
    """Any other exception is a FAILURE with its text on one line; the driver keeps serving."""

    def crash(request, log):
        raise ValueError("line one\nline two")

    wire = wire_factory({"MONITOR": crash, "PING": echo})
    wire.send("MONITOR 1 h 0", "PING 2 pong")
    wire.wait_for_line("PING SUCCESS 2 pong")
    wire.wait_for_line("MONITOR FAILURE 1 ValueError: line one line two")


def test_unknown_action_answers_failure(wire_factory):
    """An action the driver does not know is refused, naming nothing else."""
    wire = wire_factory({})
    wire.send("DEPLOY 7 file")
    wire.wait_for_line("DEPLOY FAILURE 7 unknown action")


def test_malformed_lines_are_logged_and_ignored(wire_factory):
    """Garbage on stdin gives a LOG line, no reply, and the next request is served."""
    wire = wire_factory({"PING": echo})
    wire.inbox.put(b"\xff\xfe garbage\n")
    wire.send("", "MONITOR", "PING 1 ok")
    lines = wire.wait_for_line("PING SUCCESS 1 ok")
    logs = [line for line in lines if line.startswith("LOG - - malformed request ignored")]
    assert len(logs) == 2 and len(lines) == 3


def test_a_request_argument_that_is_not_a_word_answers_failure_instead_of_silence(wire_factory):
    """oned waits for every request it sent: a malformed argument gets a FAILURE at once."""
    wire = wire_factory({"DEPLOY": lambda request, log: "ok"})
    wire.send("DEPLOY 3 host01 it's")
    wire.wait_for_line('DEPLOY FAILURE 3 bad request: malformed word "it\'s"')


def test_actions_never_run_more_at_once_than_the_concurrency(wire_factory):
    """With concurrency 3 and 10 blocked actions, at most 3 run; all are answered."""
    lock, release = threading.Condition(), threading.Event()
    state = {"running": 0, "peak": 0}

    def block(request, log):
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
            lock.notify_all()
        release.wait(WAIT)
        with lock:
            state["running"] -= 1
        return "done"

    wire = wire_factory({"WORK": block}, concurrency=3)
    wire.send(*[f"WORK {n}" for n in range(10)], "INIT")
    wire.wait_for_line("INIT SUCCESS - -")  # every WORK has been handed to the workers
    with lock:
        assert lock.wait_for(lambda: state["running"] == 3, WAIT)
    release.set()
    wire.wait_for(lambda lines: sum(line.startswith("WORK SUCCESS") for line in lines) == 10)
    assert state["peak"] == 3


def test_actions_of_a_hung_host_never_hold_up_another_hosts_actions(wire_factory):
    """Issue 11 finding 5: with every thread busy on one host's hung actions and more queued to
    it, an action for another host is answered at once (the old shared pool made it wait)."""
    release, hung = threading.Event(), queue.SimpleQueue()

    def work(request, log):
        if request.args[0] == "frozen":
            hung.put(request.id)
            release.wait(WAIT)
        return request.args[0]

    wire = wire_factory({"DEPLOY": work}, concurrency=3, lane=host_lane)
    wire.send(*[f"DEPLOY {n} frozen f" for n in range(20)])
    for _ in range(3):
        hung.get(timeout=WAIT)
    wire.send("DEPLOY 99 healthy f")
    lines = wire.wait_for_line("DEPLOY SUCCESS 99 healthy")
    assert lines == ["DEPLOY SUCCESS 99 healthy\n"] and hung.empty()
    release.set()
    wire.wait_for(lambda lines: sum(line.startswith("DEPLOY SUCCESS") for line in lines) == 21)


def test_each_host_lane_runs_at_most_the_concurrency_and_answers_all(wire_factory):
    """Per host, no more than ``concurrency`` actions run at once; every one is answered."""
    lock, release = threading.Condition(), threading.Event()
    running: dict[str, int] = {}
    peak: dict[str, int] = {}

    def block(request, log):
        host = request.args[0]
        with lock:
            running[host] = running.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), running[host])
            lock.notify_all()
        release.wait(WAIT)
        with lock:
            running[host] -= 1
        return "done"

    wire = wire_factory({"WORK": block}, concurrency=2, lane=host_lane)
    wire.send(*[f"WORK {n} h{n % 2}" for n in range(8)])
    with lock:
        assert lock.wait_for(lambda: running.get("h0") == 2 and running.get("h1") == 2, WAIT)
    release.set()
    wire.wait_for(lambda lines: sum(line.startswith("WORK SUCCESS") for line in lines) == 8)
    assert peak == {"h0": 2, "h1": 2}


def test_each_reply_is_one_write_call_holding_one_whole_line(wire_factory):
    """Concurrent replies never interleave: each write() is exactly one complete line."""
    wire = wire_factory({"BIG": lambda request, log: request.id * 5000}, concurrency=8)
    wire.send(*[f"BIG {n}" for n in range(40)])
    writes = wire.wait_for(lambda lines: len(lines) == 40)
    for n, line in enumerate(sorted(writes, key=lambda w: int(w.split()[2]))):
        assert line == f"BIG SUCCESS {n} {str(n) * 5000}\n"


def test_the_logger_writes_one_log_line_per_line_of_text(wire_factory):
    """log(text) gives LOG - ID lines, blank lines skipped, before the reply."""

    def chatty(request, log):
        log("copying probes\n\nrunning them")
        return "A=1"

    wire = wire_factory({"MONITOR": chatty})
    wire.send("MONITOR 3 h 0")
    lines = wire.wait_for_line("MONITOR SUCCESS 3 A=1")
    assert lines == [
        "LOG - 3 copying probes\n",
        "LOG - 3 running them\n",
        "MONITOR SUCCESS 3 A=1\n",
    ]


def test_driver_cancel_runs_the_cancel_hook_and_drops_the_reply(wire_factory):
    """DRIVER_CANCEL ID calls what the running action registered; it answers nothing."""
    started, stopped = threading.Event(), threading.Event()

    def long_job(request, log):
        log.on_cancel(stopped.set)
        started.set()
        stopped.wait(WAIT)
        return "finished anyway"

    wire = wire_factory({"DEPLOY": long_job, "PING": echo})
    wire.send("DEPLOY 7 file")
    assert started.wait(WAIT)
    wire.send("DRIVER_CANCEL 7")
    wire.wait_for_line("LOG - 7 Driver command for 7 cancelled")
    wire.send("PING 8 after")
    lines = wire.wait_for_line("PING SUCCESS 8 after")
    assert not any(line.startswith("DEPLOY") for line in lines)


def test_driver_cancel_of_a_queued_action_means_it_never_runs(wire_factory):
    """With one worker busy, a cancelled queued action is skipped."""
    release, ran = threading.Event(), []

    def job(request, log):
        ran.append(request.id)
        if request.id == "1":
            release.wait(WAIT)
        return "ok"

    wire = wire_factory({"JOB": job}, concurrency=1)
    wire.send("JOB 1", "JOB 2", "DRIVER_CANCEL 2", "JOB 3")
    wire.wait_for_line("LOG - 2 Driver command for 2 cancelled")
    release.set()
    lines = wire.wait_for_line("JOB SUCCESS 3 ok")
    assert ran == ["1", "3"] and "JOB SUCCESS 1 ok\n" in lines


def test_driver_cancel_with_nothing_in_flight_only_logs(wire_factory):
    """A cancel for an id with no action is harmless."""
    wire = wire_factory({})
    wire.send("DRIVER_CANCEL 5")
    wire.wait_for_line("LOG - 5 Driver command for 5 not cancelled: nothing in flight")


def test_no_reply_leaves_the_request_unanswered(wire_factory):
    """An action raising NoReply (a simulated hang) writes nothing."""

    def hang(request, log):
        raise NoReply()

    wire = wire_factory({"MONITOR": hang, "PING": echo})
    wire.send("MONITOR 1 h 0", "PING 2 x")
    assert wire.wait_for_line("PING SUCCESS 2 x") == ["PING SUCCESS 2 x\n"]


def test_finalize_returns_even_while_an_action_hangs(wire_factory):
    """FINALIZE ends serve() at once; a hung action does not hold it."""
    hung = threading.Event()

    def hang(request, log):
        hung.set()
        threading.Event().wait(WAIT)
        return "late"

    wire = wire_factory({"MONITOR": hang})
    wire.send("MONITOR 1 h 0")
    assert hung.wait(WAIT)
    wire.send("FINALIZE")
    wire.thread.join(WAIT)
    assert not wire.thread.is_alive()


def test_end_of_input_ends_serve(wire_factory):
    """oned closing the pipe stops the driver like FINALIZE."""
    wire = wire_factory({})
    wire.inbox.put(None)
    wire.thread.join(WAIT)
    assert not wire.thread.is_alive()
