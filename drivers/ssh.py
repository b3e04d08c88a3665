"""SSH to the hosts: one reused paramiko connection per host, shared by a driver's threads.

``SshPool.run`` answers every outcome as a ``RunResult`` (drivers/runner.py), never an exception
for the host's sake: an unreachable host is code 255 with a one-line reason such as "cannot
resolve host X", a timeout 124, a cancel 130. Commands are argv lists, quoted with ``shlex.join``
for the remote shell; no shell string is ever built from input.

Each host gets ONE paramiko connection (TCP_NODELAY, keepalive), reused by every command.
Commands without input run in a long-lived ``/bin/sh`` on a channel of that connection (a small
pool per host): the user's login shell and its rc files (tens to hundreds of ms on some hosts)
are paid once per shell, not once per command. Commands with input (``put``) open one exec
channel each. Logging in (and known_hosts) is drivers/ssh_connect.py.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.runner import CANCELLED, UNREACHABLE, CancelHook, RunResult, _text, timed_out
from drivers.ssh_connect import Unreachable, connect, stderr_note

READ_SIZE = 65536


# ---------------------------------------------------------------------------------------------
# Channels


class _Timeout(Exception):
    pass


class _Closed(Exception):
    """The channel ended before the command's end marker: the shell or the connection died."""

    def __init__(self, got_output: bool) -> None:
        super().__init__("connection closed")
        self.got_output = got_output


def _recv(channel: Any, deadline: float) -> bytes:
    """The next chunk of the channel's stdout (b"" at its end), waiting at most to ``deadline``.

    Blocking recv, not select: Channel.close() from a cancelling thread wakes it at once.
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout()
    channel.settimeout(remaining)
    try:
        return channel.recv(READ_SIZE)
    except TimeoutError as err:
        raise _Timeout() from err


class _Shell:
    """A ``/bin/sh`` reading commands from its channel's stdin.

    Each command's stdout, exit code and stderr (kept in a temporary file on the host) come
    back on the one stdout stream, framed by a random marker, so output cannot forge the end.
    """

    SETUP = (
        'ONE_ERR=$(mktemp 2>/dev/null) || ONE_ERR="${TMPDIR:-/tmp}/one-sh-$$.err"; '
        "trap 'rm -f \"$ONE_ERR\"' EXIT\n"
    )
    FRAME = (
        '{{ {command}\n}} </dev/null 2>"$ONE_ERR"; '
        "printf '\\n%s %d\\n' {mark} \"$?\"; cat \"$ONE_ERR\"; printf '\\n%s\\n' {mark}\n"
    )

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.reused = False  # taken from the idle pool rather than just started
        self.cancelled = False

    @classmethod
    def start(cls, transport: Any, deadline: float) -> _Shell:
        channel = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
        channel.exec_command("exec /bin/sh")
        shell = cls(channel)
        channel.sendall(cls.SETUP.encode())
        shell.run(":", deadline)  # swallows whatever the login shell's rc files print
        return shell

    def run(self, cmdline: str, deadline: float) -> RunResult:
        mark = "__ONE_" + secrets.token_hex(8)
        self.channel.sendall(self.FRAME.format(command=cmdline, mark=mark).encode())
        head = re.compile(rb"\n" + mark.encode() + rb" (\d+)\n")
        tail = b"\n" + mark.encode() + b"\n"
        buf = bytearray()
        while True:
            found = head.search(buf)
            end = buf.find(tail, found.end()) if found else -1
            if found and end >= 0:
                self._drain_stderr()
                out, err = buf[: found.start()], buf[found.end() : end]
                return RunResult(int(found.group(1)), _text(out), _text(err))
            chunk = _recv(self.channel, deadline)
            if not chunk:
                raise _Closed(bool(buf))
            buf += chunk

    def _drain_stderr(self) -> None:
        while self.channel.recv_stderr_ready():  # the login shell's own noise; keeps the window
            self.channel.recv_stderr(READ_SIZE)

    def abort(self) -> None:
        """Close the channel: a reader blocked on it wakes at once; the command's pipes close."""
        self.channel.close()

    def cancel(self) -> None:
        self.cancelled = True
        self.abort()


def _exec(transport: Any, cmdline: str, data: bytes, deadline: float) -> RunResult:
    """One exec channel: send ``data`` as stdin, collect both outputs and the exit code."""
    channel = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
    try:
        channel.exec_command(cmdline)
        channel.sendall(data)
        channel.shutdown_write()
        out = bytearray()
        while chunk := _recv(channel, deadline):
            out += chunk
        if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            raise _Timeout()
        err = bytearray()
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(READ_SIZE)
        return RunResult(channel.recv_exit_status(), _text(out), _text(err))
    finally:
        channel.close()


class _Attempt:
    """One connection attempt to a host, which the other commands for it wait for (each up to
    its own deadline) instead of each dialling a host that does not answer."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.client: Any = None
        self.error: BaseException | None = None


@dataclass
class _Host:
    client: Any = None
    idle: list[_Shell] = field(default_factory=list)
    connecting: _Attempt | None = None


class SshPool:
    """One reused SSH connection per host, shared by threads (a channel per command or shell).

    ``run`` never raises for the host's sake: unreachable hosts give code 255 with the reason.
    A cached connection found dead is re-opened once per command.
    """

    def __init__(
        self,
        *,
        user: str | None = None,
        connect_timeout: float = 10.0,
        known_hosts: str = "~/.ssh/known_hosts",
        max_idle: int = 4,
        note: Callable[[str], None] = stderr_note,
    ) -> None:
        self.user = user or getpass.getuser()
        self.connect_timeout, self.max_idle, self.note = connect_timeout, max_idle, note
        self.known_hosts = os.path.expanduser(known_hosts)
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    def run(
        self,
        host: str,
        argv: Sequence[str],
        *,
        timeout: float,
        input: bytes | None = None,
        on_cancel: CancelHook | None = None,
    ) -> RunResult:
        """Run ``argv`` on ``host`` (``[user@]name[:port]``) within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        try:
            if input is not None:
                transport, _ = self._transport(host, deadline)
                return _exec(transport, shlex.join(argv), input, deadline)
            return self._in_shell(host, shlex.join(argv), deadline, on_cancel)
        except Unreachable as err:
            return RunResult(UNREACHABLE, "", str(err))
        except _Timeout:
            return timed_out(timeout)
        except Exception as err:  # paramiko's own errors too: the next command reconnects
            self._forget(host)
            return RunResult(UNREACHABLE, "", f"ssh to {host} failed: {err or type(err).__name__}")

    def put(
        self, host: str, path: str, data: bytes, mode: int = 0o600, *, timeout: float = 30.0
    ) -> RunResult:
        """Write ``data`` to ``path`` on ``host`` atomically (temporary file, chmod, rename),
        creating the directory; returns the RunResult of doing so. The file is the owner's
        alone (0600) unless ``mode`` says otherwise, and no one else can read it meanwhile."""
        script = (
            'mkdir -p -- "$(dirname -- "$1")" && umask 077 && cat > "$1.tmp.$$" '
            '&& chmod "$2" "$1.tmp.$$" && mv -f -- "$1.tmp.$$" "$1" '
            '|| { rm -f -- "$1.tmp.$$"; exit 1; }'
        )
        argv = ["sh", "-c", script, "put", path, format(mode, "o")]
        return self.run(host, argv, timeout=timeout, input=data)

    def _in_shell(
        self, host: str, cmdline: str, deadline: float, on_cancel: CancelHook | None
    ) -> RunResult:
        """Run in a pooled shell. A shell or connection found dead before the command printed
        anything is replaced once (the host rebooted, sshd restarted)."""
        for attempt in (1, 2):
            shell = self._shell(host, deadline, retry=attempt == 1)
            if shell is None:
                continue
            if on_cancel:
                on_cancel(shell.cancel)
            try:
                result = shell.run(cmdline, deadline)
            except _Timeout:
                shell.abort()
                raise
            except (_Closed, OSError, EOFError) as err:
                shell.abort()
                if shell.cancelled:
                    return RunResult(CANCELLED, "", "cancelled")
                if attempt == 1 and shell.reused and not getattr(err, "got_output", False):
                    self._forget(host)
                    continue
                return RunResult(UNREACHABLE, "", f"connection to {host} closed during the command")
            self._release(host, shell)
            return result
        raise Unreachable(f"cannot open a shell on {host}")

    def _entry(self, host: str) -> _Host:
        with self._lock:
            return self._hosts.setdefault(host, _Host())

    def _transport(self, host: str, deadline: float) -> tuple[Any, bool]:
        """The host's live transport, and whether it was just made. One thread connects; the
        others for that host wait for its attempt, bounded by their own deadline, and holding
        no lock meanwhile; a connection refused or unanswered fails them all at once."""
        entry = self._entry(host)
        while True:
            with self._lock:
                transport = entry.client.get_transport() if entry.client else None
                if transport is not None and transport.is_active():
                    return transport, False
                attempt, mine = entry.connecting, entry.connecting is None
                if mine:
                    attempt = entry.connecting = _Attempt()
            assert attempt is not None
            if mine:
                return self._dial(host, entry, attempt, deadline).get_transport(), True
            if not attempt.done.wait(max(0.0, deadline - time.monotonic())):
                raise _Timeout()
            if isinstance(attempt.error, Unreachable):
                raise Unreachable(str(attempt.error))
            if attempt.error is not None and time.monotonic() >= deadline:
                raise _Timeout()  # else its own time ran out before ours: try again

    def _dial(self, host: str, entry: _Host, attempt: _Attempt, deadline: float) -> Any:
        """Make ``attempt``: drop the dead connection, open a new one, tell the waiters."""
        try:
            self._forget(host)
            budget = min(self.connect_timeout, deadline - time.monotonic())
            if budget <= 0:
                raise _Timeout()
            attempt.client = self._connect(host, budget, deadline)
            return attempt.client
        except BaseException as err:
            attempt.error = err
            raise
        finally:
            with self._lock:
                entry.connecting, entry.client = None, attempt.client
            attempt.done.set()

    def _connect(self, host: str, budget: float, deadline: float) -> Any:
        """A new connection; giving up because the command's own time ran out is a timeout."""
        try:
            return connect(
                host, user=self.user, timeout=budget, known_hosts=self.known_hosts, note=self.note
            )
        except Unreachable:
            if time.monotonic() >= deadline - 0.01:
                raise _Timeout() from None
            raise

    def _shell(self, host: str, deadline: float, *, retry: bool) -> _Shell | None:
        """An idle shell of the host, or a new one; None when a cached connection proved dead
        and ``retry`` allows another go."""
        entry = self._entry(host)
        with self._lock:
            if entry.idle:
                shell = entry.idle.pop()
                shell.reused = True
                return shell
        transport, fresh = self._transport(host, deadline)
        try:
            return _Shell.start(transport, deadline)
        except _Timeout:
            raise
        except Exception as err:  # paramiko.SSHException, EOFError, OSError, _Closed
            self._start_failed(host, err, deadline, retry and not fresh)
            return None

    def _start_failed(self, host: str, err: Exception, deadline: float, retry: bool) -> None:
        """Why a new shell did not start: the time ran out, sshd refused one more session
        (MaxSessions; the connection is fine), or the connection is dead (returns: retry)."""
        import paramiko

        if time.monotonic() >= deadline:
            raise _Timeout() from err
        if isinstance(err, paramiko.ChannelException):
            raise Unreachable(f"{host} refused another session: {err}") from err
        self._forget(host)
        if not retry:
            why = err or type(err).__name__
            raise Unreachable(f"cannot open a shell on {host}: {why}") from err

    def _release(self, host: str, shell: _Shell) -> None:
        entry = self._entry(host)
        with self._lock:
            if len(entry.idle) < self.max_idle:
                entry.idle.append(shell)
                return
        shell.abort()

    def _forget(self, host: str) -> None:
        """Drop the host's shells and connection (closing them); the next command reconnects."""
        entry = self._entry(host)
        with self._lock:
            idle, entry.idle = entry.idle, []
            client, entry.client = entry.client, None
        for shell in idle:
            shell.abort()
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close every shell and connection; the pool can still be used afterwards."""
        with self._lock:
            hosts = list(self._hosts)
        for host in hosts:
            self._forget(host)
