"""Files of one_vmm_kvm on a host: over the host's reused SSH connection (drivers/ssh.py), or
here when the host's libvirt URI names no host (a local libvirtd)."""

from __future__ import annotations

import os
from contextlib import suppress
from typing import Protocol
from urllib.parse import urlsplit

from drivers.protocol import DriverFailure
from drivers.runner import write_local
from drivers.ssh import SshPool


class Reach(Protocol):
    """How the driver reaches a host (its Context)."""

    pool: SshPool | None
    timeout: float

    def uri_of(self, host: str) -> str: ...


def write_remote(ctx: Reach, host: str, path: str, data: str | bytes) -> None:
    """Put the rendered file on the host (here when the URI names no host: a local libvirtd),
    0600: it may hold CONTEXT values and the VNC password."""
    raw = data if isinstance(data, bytes) else data.encode()
    target = urlsplit(ctx.uri_of(host)).netloc
    if not target or ctx.pool is None:
        result = write_local(path, raw, 0o600)
    else:
        result = ctx.pool.put(target, path, raw, 0o600, timeout=ctx.timeout)
    if not result.ok:
        raise DriverFailure(f"cannot write {host}:{path}: {result.reason()}")


def exists_on(ctx: Reach, host: str, path: str) -> bool:
    """Whether ``path`` is on the host (here when the URI names no host: a local libvirtd)."""
    target = urlsplit(ctx.uri_of(host)).netloc
    if not target or ctx.pool is None:
        return os.path.exists(path)
    result = ctx.pool.run(target, ["test", "-e", path], timeout=ctx.timeout)
    if result.code not in (0, 1):
        raise DriverFailure(f"cannot check {host}:{path}: {result.reason()}")
    return result.ok


def remove_remote(ctx: Reach, host: str, path: str) -> None:
    """Remove ``path`` from the host, if it can: nothing depends on it being gone."""
    target = urlsplit(ctx.uri_of(host)).netloc
    if not target or ctx.pool is None:
        with suppress(OSError):
            os.unlink(path)
    else:
        ctx.pool.run(target, ["rm", "-f", path], timeout=ctx.timeout)
