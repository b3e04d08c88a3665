"""What oned does once at start: load the pools from the store and create oneadmin.

Shell code (reads the ONE_AUTH file, writes the store) kept apart from the reactor wiring.
"""

from __future__ import annotations

import logging

from oned import auth
from oned.locations import default_auth_file
from oned.pools import Pools
from oned.records import User
from oned.vnet import parse_mac_prefix


class StartupError(Exception):
    """oned cannot start; the message is one line for the operator."""


def load_pools(store: object, log: logging.Logger, mac_prefix: str = "02:00") -> Pools:
    """The pools as the store has them; ``mac_prefix`` is oned.conf's MAC_PREFIX."""
    pools = Pools(parse_mac_prefix(mac_prefix))
    for user in store.load_users():  # type: ignore[attr-defined]
        pools.put_user(user)
    for host in store.load_hosts():  # type: ignore[attr-defined]
        pools.put_host(host)
    for vm in store.load_vms():  # type: ignore[attr-defined]
        pools.vms.put(vm)
    for net in store.load_networks():  # type: ignore[attr-defined]
        pools.put_vnet(net)
    for image in store.load_images():  # type: ignore[attr-defined]
        pools.put_image(image)
    pools.recount_image_users()  # which VMs use each image: derived, never stored
    pools.next_ids.update(store.next_oids())  # type: ignore[attr-defined]
    log.info(
        f"Loaded {len(pools.users)} users, {len(pools.hosts)} hosts, {len(pools.vms)} VMs, "
        f"{len(pools.vnets)} virtual networks, {len(pools.images)} images"
    )
    return pools


def create_oneadmin(store: object, pools: Pools, log: logging.Logger, auth_file: str = "") -> None:
    """At the first start (no users at all) create uid 0 from the ONE_AUTH file."""
    if len(pools.users):
        return
    path = auth_file or default_auth_file()
    name, password = read_auth_file(path)
    user = User(id=0, name=name, password=auth.hash_password(password))
    store.insert_user(user)  # type: ignore[attr-defined]
    pools.put_user(user)
    pools.next_ids["user"] = max(pools.next_ids["user"], 1)
    log.info(f"Created the administrator account {name} (uid 0) from {path}")


def read_auth_file(path: str) -> tuple[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline().strip()
    except OSError as exc:
        raise StartupError(
            f"cannot create oneadmin: ONE_AUTH file {path} unreadable ({exc.strerror}); "
            "write user:password in it"
        ) from None
    name, _, password = line.partition(":")
    try:
        auth.check_user_name(name)
    except ValueError:
        name = ""
    if not name or not password:
        raise StartupError(f"ONE_AUTH file {path}: wrong format, must be <username>:<password>")
    return name, password
