"""Logging in to a host over SSH: ``connect`` gives a paramiko client or ``Unreachable``.

The reason a host cannot be used is one line naming it (cannot resolve, refused, timed out,
authentication, a changed host key). A new host's key is appended to known_hosts (trust on first
use, as OpenNebula's guides set up); a changed one is refused. drivers/ssh.py's ``SshPool``
keeps the connections.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any


class Unreachable(Exception):
    """The host could not be reached or logged into; the message is one line naming it."""


def split_target(target: str, default_user: str) -> tuple[str, str, int]:
    """``[user@]host[:port]`` -> (user, host, port); a bare IPv6 address keeps its colons."""
    user, _, host = target.rpartition("@")
    port = 22
    if host.count(":") == 1:
        host, _, text = host.partition(":")
        port = int(text)
    return user or default_user, host.strip("[]"), port


def connect(
    target: str, *, user: str, timeout: float, known_hosts: str, note: Callable[[str], None]
) -> Any:
    """A logged-in ``paramiko.SSHClient`` for ``target``, or Unreachable with the reason."""
    import paramiko  # here: a driver that never uses SSH does not pay for the import

    # paramiko's transport thread logs handshake failures with tracebacks; we report them
    logging.getLogger("paramiko").addHandler(logging.NullHandler())

    user, host, port = split_target(target, user)
    sock = _socket(host, port, timeout)
    client = paramiko.SSHClient()
    if os.path.exists(known_hosts):
        client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(_AppendToKnownHosts(known_hosts, note))
    try:
        client.connect(
            host, port, username=user, sock=sock, timeout=timeout,
            banner_timeout=timeout, auth_timeout=timeout,
        )  # fmt: skip
    except paramiko.AuthenticationException as err:
        raise Unreachable(f"authentication failed for {user}@{host}: {err}") from err
    except paramiko.BadHostKeyException as err:
        raise Unreachable(f"host key of {host} differs from the one in {known_hosts}") from err
    except (paramiko.SSHException, OSError, EOFError) as err:
        raise Unreachable(f"ssh to {host} port {port} failed: {err or type(err).__name__}") from err
    transport = client.get_transport()
    transport.set_keepalive(30)
    return client


def _socket(host: str, port: int, timeout: float) -> socket.socket:
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise Unreachable(f"cannot resolve host {host}") from err
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as err:
        raise Unreachable(f"connection refused by {host} port {port}") from err
    except TimeoutError as err:
        raise Unreachable(f"cannot connect to {host} port {port}: timed out") from err
    except OSError as err:
        raise Unreachable(f"cannot connect to {host} port {port}: {err.strerror}") from err
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _AppendToKnownHosts:
    """Accept an unknown host key and append it to known_hosts (never rewriting the file).

    NOTE: OpenNebula's install guides tell operators to set ``StrictHostKeyChecking no`` for
    oneadmin, so a new host is trusted on first use; a *changed* key is still refused.
    """

    _lock = threading.Lock()

    def __init__(self, path: str, note: Callable[[str], None]) -> None:
        self.path, self.note = path, note

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            with open(self.path, "a") as known:
                known.write(line)
        self.note(f"added the {key.get_name()} key of {hostname} to {self.path}")


def stderr_note(text: str) -> None:
    """Where a driver tells what it did on its own (a host key added): its stderr log."""
    print(text, file=sys.stderr, flush=True)
