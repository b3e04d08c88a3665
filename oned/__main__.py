"""oned: the onecloud daemon. Reads oned.conf, opens the store, answers XML-RPC on /RPC2.

The only module that touches the global reactor (DESIGN.md §3 rule 5).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
from typing import Any

from oned import log as onelog
from oned import memprofile, pidfile
from oned.bootstrap import (
    StartupError,
    check_sealing_key,
    create_oneadmin,
    load_pools,
    load_sealing_key,
)
from oned.collector import FullCollections
from oned.config import Config, load_config
from oned.errors import ConfigError
from oned.filemodes import make_dirs, tighten
from oned.locations import Locations, locations
from oned.rpc.methods import VERSION
from oned.template import Template, Value, parse

# Keys of oned.conf whose values oned.log never shows (DB = [ PASSWD = ... ]).
SECRET_KEYS = frozenset({"PASSWD", "PASSWORD"})
COLLECTOR_TICK = 5.0  # seconds between two looks at the full collections' pause (oned/collector.py)
EC2_KEY_FILE = "ec2_keys.key"  # in etc/: seals the users' EC2 secrets (oned.ec2keys)


def parser() -> argparse.ArgumentParser:
    """oned's flags (``--help`` and the man page, share/scripts/make-man-pages)."""
    p = argparse.ArgumentParser(
        prog="oned",
        description="The onecloud daemon: keeps hosts, VMs, networks, users and images, and "
        "answers the OpenNebula XML-RPC API at http://HOST:PORT/RPC2.",
        epilog="Files: $ONE_LOCATION/etc/oned.conf, var/oned.log, var/oned.pid and var/one.db "
        "for a self-contained install; /etc/one, /var/log/one, /var/run/one and /var/lib/one "
        "otherwise. Usually started with `one start`. SIGHUP reopens oned.log (log rotation); "
        "SIGTERM stops oned. Environment: oned sets glibc's mmap threshold to 256 KB (memory "
        "freed by large replies goes back to the system) unless MALLOC_MMAP_THRESHOLD_ is set; "
        "ONECLOUD_TRACEMALLOC=PATH writes a report of where oned's memory goes to PATH when "
        "it stops (it runs 2-3x slower).",
    )
    p.add_argument("-f", "--foreground", action="store_true", help="do not daemonise")
    p.add_argument("-c", "--config", metavar="PATH", help="oned.conf to use")
    p.add_argument(
        "--stop-grace",
        metavar="SECONDS",
        type=float,
        default=None,
        help="at SIGTERM, how long driver actions in flight may take to finish before oned "
        "stops (default: oned.conf's STOP_GRACE, 10); what is left is reconciled at the next "
        "start",
    )
    p.add_argument("-v", "--version", action="version", version=VERSION)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    memprofile.fix_mmap_threshold()  # big blocks go back to the kernel when freed (issue 18)
    memprofile.start_from_env()  # ONECLOUD_TRACEMALLOC: trace from the start (issue 18)
    locs = locations()
    path = args.config or locs.oned_conf
    try:
        config, text = _read_config(path)
        # Before any file is made; the drivers inherit it (filemodes.py says why).
        os.umask(config.umask)
        for folder in {locs.var, locs.log, locs.run}:
            make_dirs(folder)
        onelog.setup(locs.oned_log, config.debug_level)
    except (ConfigError, StartupError, OSError) as exc:
        print(f"oned: {exc}", file=sys.stderr)
        return 1
    _log_header(config, text, path)
    for message in tighten(_private_paths(config, locs, path), config.umask):
        onelog.module("ONE").warning(message)
    if not args.foreground:
        _daemonise()
    try:
        grace = config.stop_grace if args.stop_grace is None else args.stop_grace
        return _serve(config, locs, max(0.0, grace))
    except (ConfigError, StartupError) as exc:
        onelog.module("ONE").error(str(exc))
        print(f"oned: {exc}", file=sys.stderr)
        return 1


def _read_config(path: str) -> tuple[Config, str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise StartupError(f"cannot read {path}: {exc.strerror}") from None
    return load_config(text, path), text


def _log_header(config: Config, text: str, path: str) -> None:
    one = onelog.module("ONE")
    one.info("Init OpenNebula Log system")
    one.info(f"Log Level: {config.debug_level} [0=ERROR,1=WARNING,2=INFO,3=DEBUG]")
    one.info("-" * 40)
    one.info("     OpenNebula Configuration File")
    one.info("-" * 40)
    for line in masked(parse(text)).to_str().splitlines():
        one.info(line)
    one.info("-" * 40)
    for warning in config.warnings:
        one.warning(warning)


def masked(conf: Template) -> Template:
    """``conf`` with the value of every secret key (``SECRET_KEYS``) written ``***``."""

    def hide(name: str, value: Value) -> Value:
        if isinstance(value, dict):
            return {k: hide(k, v) for k, v in value.items()}  # type: ignore[misc]
        return "***" if name.upper() in SECRET_KEYS and value else value

    return Template([(name, hide(name, value)) for name, value in conf])


def _private_paths(config: Config, locs: Locations, conf_path: str) -> list[str]:
    """What an install made before UMASK may have left readable by others: folders, oned.conf,
    the SQLite database and the logs (oned's, the scheduler's, the drivers')."""
    from oned.drivers import configured_mads, stderr_log

    logs = [locs.oned_log, locs.sched_log]
    logs += [stderr_log(locs, mad.name) for mad in configured_mads(config)]
    logs += [os.path.join(locs.log, f"{name}.out") for name in ("oned", "sched")]
    db = [locs.db_file + suffix for suffix in ("", "-wal", "-shm", "-journal")]
    return [locs.var, locs.log, conf_path, *db, *logs]


def _daemonise() -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def _serve(config: Config, locs: Locations, stop_grace: float) -> int:
    from twisted.internet import reactor, task, threads

    from oned.api.cloud import Cloud
    from oned.api.sessions import Sessions
    from oned.changes import Waiters
    from oned.lcm import recount_usage
    from oned.rpc.dispatch import Dispatcher
    from oned.rpc.server import make_site, raise_open_files
    from oned.store import Store, StoreError

    one = onelog.module("ONE")
    onelog.capture_twisted()
    # logrotate renames oned.log and sends SIGHUP (share/logrotate/onecloud); the reactor
    # reopens it between two records.
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(_reopen_log))
    pidfile.acquire(locs.oned_pid, one.warning, os.environ.get("ONE_LOCATION"))
    try:
        store = Store.open(config.db, locs.db_file, onelog.module("ONE"))
    except StoreError as exc:
        _remove(locs.oned_pid)
        raise StartupError(str(exc)) from None
    try:
        pools = load_pools(store, one, config.mac_prefix)
        recount_usage(pools)
        create_oneadmin(store, pools, one)
        key_file = os.path.join(locs.etc, EC2_KEY_FILE)
        pools.ec2_keys.sealing_key = load_sealing_key(key_file, one)
        check_sealing_key(pools.ec2_keys, key_file, one)
    except StartupError:
        store.close()
        _remove(locs.oned_pid)
        raise
    # The pools are long-lived: keep the collector from walking them again and again, and
    # space out its walks of what comes after (oned/collector.py).
    gc.collect()
    gc.freeze()
    full_collections = FullCollections()
    full_collections.install()
    task.LoopingCall(full_collections.tick).start(COLLECTOR_TICK, now=False)
    memprofile.dump_at_shutdown(reactor, pools)  # the report, if ONECLOUD_TRACEMALLOC is set
    cloud = Cloud(pools, store, config, onelog.module("ReM"), run_in_thread=threads.deferToThread)
    from oned.commits import CommitQueue

    cloud.commits = CommitQueue(store, reactor.callLater, onelog.module("ReM"))
    dispatcher = Dispatcher(
        cloud, Sessions(pools, onelog.module("AuM")), threads.deferToThread, onelog.module("ReM")
    )
    raise_open_files(config, onelog.module("ReM"))
    site = make_site(dispatcher, config, onelog.module("ReM"), reactor=reactor)
    # Until reactor.run() installs its own handlers, a SIGTERM must still stop oned cleanly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: reactor.callFromThread(reactor.stop))
    drivers = _start_managers(cloud, config, locs, reactor)
    try:
        _listen(reactor, site, config)
    except Exception as exc:  # CannotListenError, TLS file errors
        store.close()
        _remove(locs.oned_pid)
        for channel in drivers.channels():
            channel.stop(grace=0.1)
        raise StartupError(
            f"cannot listen on {config.listen_address}:{config.port}: {exc}"
        ) from None

    def stopped() -> None:
        store.close()
        _remove(locs.oned_pid)
        one.info("oned stopped")

    # In-flight driver actions finish within the grace period; the rest stays transient and
    # is reconciled at the next start (never FAILED because oned stops).
    reactor.addSystemEventTrigger("before", "shutdown", drivers.stop_all, stop_grace)
    # one.system.changes: held calls are answered (no objects) while the drivers stop
    pools.waiters = Waiters(pools.changes, reactor.callLater)
    reactor.addSystemEventTrigger("before", "shutdown", pools.waiters.close)
    # allocations still queued are committed and answered before the store closes
    reactor.addSystemEventTrigger("before", "shutdown", cloud.commits.flush)
    reactor.addSystemEventTrigger("after", "shutdown", stopped)
    scheme = "https" if config.tls_cert else "http"
    one.info(f"XML-RPC server listening at {scheme}://{config.listen_address}:{config.port}/RPC2")
    reactor.run()
    return 0


def _reopen_log() -> None:
    onelog.reopen()
    onelog.module("ONE").info("oned.log reopened (SIGHUP)")


def _start_managers(cloud: Any, config: Config, locs: Locations, reactor: Any) -> Any:
    """Drivers, then the managers that use them; returns the drivers (stopped at shutdown)."""
    from oned.api.templates import repository
    from oned.drivers import start_drivers
    from oned.hm import HookRunner
    from oned.im import HostMonitor
    from oned.images import ImageManager
    from oned.lcm import LifeCycle, reconcile_at_start, route_effects, transient_vms
    from oned.tm import TransferManager
    from oned.vmfiles import VmFiles
    from oned.vmm import VirtualMachineManager

    found = transient_vms(cloud.pools)  # before any request can change a VM
    images_dir = repository(cloud)
    try:
        make_dirs(images_dir)
    except OSError as exc:  # the image driver then fails each copy naming the folder
        onelog.module("ImM").error(f"cannot create the image repository {images_dir}: {exc}")
    drivers = start_drivers(config, locs, reactor, images_dir)
    for problem in drivers.problems.values():
        print(f"oned: {problem}", file=sys.stderr)
    hooks = HookRunner(drivers.hm, config.host_hooks, locs.hooks, onelog.module("HKM"),
                       config.vm_hooks)  # fmt: skip
    monitor = HostMonitor(cloud, drivers, reactor, onelog.module("InM"), hooks)
    files = VmFiles(locs.var, reactor.callFromThread)  # type: ignore[attr-defined]
    lcm = LifeCycle(cloud, files, onelog.module("LCM"), monitor.changed)
    vmm = VirtualMachineManager(lcm, drivers, reactor, onelog.module("VMM"))
    tm = TransferManager(lcm, drivers, reactor, onelog.module("TM"))
    lcm.effects = route_effects(vmm, tm, hooks)
    lcm.probe = vmm.probe
    lcm.call_later = reactor.callLater
    cloud.lcm, cloud.var_dir = lcm, locs.var
    problem = drivers.problem("IMAGE", config.image_mad.name)
    cloud.images = ImageManager(cloud, drivers.image, reactor, onelog.module("ImM"), problem)
    # Before oned listens: images left LOCKED by a stop or crash end in ERROR or stay LOCKED
    # for the VM that saves into them; the RMs and STATs wait in the channel for INIT.
    cloud.images.reconcile()
    monitor.start()
    vmm.start_polling()
    # Once every driver answered INIT: VMs left mid-action by a crash or a stop move on.
    drivers.started().addCallback(lambda _: reconcile_at_start(lcm, reactor, found))
    reactor.addSystemEventTrigger("before", "shutdown", monitor.stop)
    reactor.addSystemEventTrigger("before", "shutdown", vmm.stop)
    reactor.addSystemEventTrigger("after", "shutdown", files.close)
    return drivers


def _listen(reactor: object, site: object, config: Config) -> None:
    kwargs = {"interface": config.listen_address, "backlog": 512}
    if config.tls_cert and config.tls_key:
        from twisted.internet import ssl

        context = ssl.DefaultOpenSSLContextFactory(config.tls_key, config.tls_cert)
        reactor.listenSSL(config.port, site, context, **kwargs)  # type: ignore[attr-defined]
    else:
        reactor.listenTCP(config.port, site, **kwargs)  # type: ignore[attr-defined]


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
