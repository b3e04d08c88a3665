"""one.user.* and one.userpool.info (reference §4, §9). Only oneadmin manages users."""

from __future__ import annotations

from oned import auth, views
from oned.api.cloud import Caller, Cloud, require_admin, require_owner
from oned.api.replies import document, pool
from oned.errors import ActionNotAllowed, AllocateError, BadCall, NoSuchObject
from oned.records import User
from oned.rpc.marshal import Escaped, escape_bytes
from oned.store import DuplicateName


def allocate(cloud: Cloud, caller: Caller, name: str, password: str) -> int:
    method = "one.user.allocate"
    require_admin(caller, method, "CREATE on USER")
    try:
        auth.check_user_name(name)
    except ValueError as exc:
        raise BadCall(f"[{method}] {exc}") from None
    if not password:
        raise BadCall(f"[{method}] the password is empty")
    if name in cloud.pools.user_names:
        raise AllocateError(f"[{method}] NAME is already taken by USER {name!r}.")
    user = User(id=cloud.pools.next_ids["user"], name=name, password=auth.hash_password(password))
    try:
        cloud.store.insert_user(user)  # type: ignore[attr-defined]
    except DuplicateName:
        raise AllocateError(f"[{method}] NAME is already taken by USER {name!r}.") from None
    cloud.pools.take_id("user")
    cloud.pools.put_user(user)
    cloud.log.info(f"User {name} ({user.id}) created")
    return user.id


def delete(cloud: Cloud, caller: Caller, uid: int) -> int:
    method = "one.user.delete"
    require_admin(caller, method, "DELETE on USER")
    user = _get(cloud, uid, method)
    if uid == 0:
        raise ActionNotAllowed(f"[{method}] User oneadmin cannot be deleted.")
    cloud.store.delete_user(uid)  # type: ignore[attr-defined]
    cloud.pools.remove_user(uid)
    cloud.log.info(f"User {user.name} ({uid}) deleted")
    return uid


def info(cloud: Cloud, caller: Caller, uid: int, decrypt: bool = False) -> Escaped:
    method = "one.user.info"
    if uid == -1:
        uid = caller.uid
    require_owner(caller, uid, method, "INFO", f"USER [{uid}]")
    user = _get(cloud, uid, method)
    return document(cloud.pools.users.xml(user))


_DEFAULT_QUOTAS = escape_bytes(views.DEFAULT_USER_QUOTAS)


def pool_info(cloud: Cloud, caller: Caller) -> Escaped:
    require_admin(caller, "one.userpool.info", "INFO on USER POOL")
    users = cloud.pools.users
    # user_pool.xsd: the pool's DEFAULT_USER_QUOTAS follow the users.
    return pool("USER_POOL", [*(users.xml(u) for u in users), _DEFAULT_QUOTAS])


def passwd(cloud: Cloud, caller: Caller, uid: int, password: str) -> int:
    """oneadmin changes any password; a user may change their own (OpenNebula 3.x+)."""
    method = "one.user.passwd"
    require_owner(caller, uid, method, "MANAGE", f"USER [{uid}]")
    user = _get(cloud, uid, method)
    if not password:
        raise BadCall(f"[{method}] the password is empty")
    changed = User(user.id, user.name, auth.hash_password(password), user.enabled)
    cloud.store.update_user(changed)  # type: ignore[attr-defined]
    cloud.pools.put_user(changed)
    return uid


def _get(cloud: Cloud, uid: int, method: str) -> User:
    user = cloud.pools.users.get(uid)
    if user is None:
        raise NoSuchObject(f"[{method}] Error getting user [{uid}].")
    return user
