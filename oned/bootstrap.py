"""What oned does once at start: load the pools from the store and create oneadmin.

Shell code (reads the ONE_AUTH file, writes the store) kept apart from the reactor wiring.
"""

from __future__ import annotations

import logging
import os
import stat

from oned import auth, ec2keys
from oned.filemodes import SECRET_MODE, create_secret_file
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
    for key in store.load_ec2_keys():  # type: ignore[attr-defined]
        pools.ec2_keys.put(key)
    pools.recount_image_users()  # which VMs use each image: derived, never stored
    pools.next_ids.update(store.next_oids())  # type: ignore[attr-defined]
    log.info(
        f"Loaded {len(pools.users)} users, {len(pools.hosts)} hosts, {len(pools.vms)} VMs, "
        f"{len(pools.vnets)} virtual networks, {len(pools.images)} images, "
        f"{len(pools.ec2_keys)} EC2 keys"
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


def load_sealing_key(path: str, log: logging.Logger) -> bytes:
    """The key that seals the EC2 secrets (``etc/ec2_keys.key``), created 0600 at the first
    start; a wider mode is narrowed to 0600 with a warning."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
    except FileNotFoundError:
        return _create_sealing_key(path, log)
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"cannot read the EC2 key file {path}: {exc}") from None
    try:
        key = ec2keys.parse_key_file(text)
    except ValueError as exc:
        raise StartupError(f"EC2 key file {path}: {exc}") from None
    if mode & ~SECRET_MODE:
        try:
            os.chmod(path, SECRET_MODE)
        except OSError as exc:
            raise StartupError(f"EC2 key file {path} has mode {mode:04o}: {exc}") from None
        log.warning(f"EC2 key file {path} had mode {mode:04o}: now {SECRET_MODE:04o}")
    return key


def _create_sealing_key(path: str, log: logging.Logger) -> bytes:
    """A new key in a new file; b"" (EC2 keys refused, oned otherwise running) when the
    folder is not writable: an install whose etc/ oned may not write still starts."""
    key = ec2keys.new_sealing_key()
    try:
        create_secret_file(path, ec2keys.key_file_text(key))
    except OSError as exc:
        log.error(f"cannot create the EC2 key file {path}: {exc.strerror}; EC2 keys refused")
        return b""
    log.info(
        f"Created {path}: the key that seals the users' EC2 secrets. Back it up apart from "
        "the database; without it the stored EC2 keys cannot be used"
    )
    return key


def check_sealing_key(keyring: ec2keys.Keyring, path: str, log: logging.Logger) -> None:
    """Log an error when the sealing key does not open a stored EC2 secret (the key file was
    replaced or lost): those keys fail until their users create new ones."""
    for key in keyring.of_any():
        try:
            ec2keys.unseal(keyring.sealing_key, key.access_key_id, key.secret_enc)
        except ec2keys.SealError:
            log.error(
                f"{path} does not open the stored EC2 secrets (was it replaced?): EC2 requests "
                "signed with keys created before fail until their users create new keys"
            )
        return
