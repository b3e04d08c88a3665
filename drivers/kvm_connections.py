"""one_vmm_kvm's libvirt connections: one per host, opened on first use, with keepalives.

libvirt-python is imported at first use (a driver starts in milliseconds); keepalives need
libvirt's default event loop, run on a daemon thread by ``start_event_loop``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from drivers.protocol import DriverFailure, one_line


def libvirt() -> Any:
    """The libvirt module, imported at first use (a driver starts in milliseconds)."""
    import libvirt as module

    return module


class Connections:
    """One libvirt connection per host, opened on first use, reopened once libvirt finds it dead
    (closed by the host, or no answer to keepalives)."""

    def __init__(self, uri_of: Callable[[str], str], timeout: float) -> None:
        self.uri_of, self.timeout = uri_of, timeout
        self._conns: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> Any:
        with self._lock:
            conn = self._conns.get(host)
        if conn is not None and conn.isAlive():
            return conn
        conn = open_connection(self.uri_of(host), self.timeout)
        with self._lock:
            self._conns[host] = conn
        return conn


def open_connection(uri: str, timeout: float) -> Any:
    """``libvirt.open(uri)`` within ``timeout`` seconds, with keepalives; DriverFailure if not."""
    lv, box = libvirt(), {}

    def connect() -> None:
        try:
            box["conn"] = lv.open(uri)
        except lv.libvirtError as err:
            box["error"] = err

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    if "conn" not in box:
        why = one_line(str(box["error"])) if "error" in box else f"timed out after {timeout:g} s"
        raise DriverFailure(f"cannot connect to {uri}: {why}")
    with suppress(lv.libvirtError):  # drivers without keepalive (test:///, no event loop)
        box["conn"].setKeepAlive(5, 3)
    return box["conn"]


def start_event_loop() -> None:
    """libvirt's default event loop on a daemon thread: keepalives need it."""
    lv = libvirt()
    lv.virEventRegisterDefaultImpl()
    threading.Thread(target=_loop, args=(lv,), name="libvirt-events", daemon=True).start()


def _loop(lv: Any) -> None:
    while True:
        lv.virEventRunDefaultImpl()
