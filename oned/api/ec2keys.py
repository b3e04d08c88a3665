"""one.user.ec2key*: the EC2 credentials of users (issue 15, share/doc/econe.md).

A user creates, lists and deletes their own keys, oneadmin anyone's. The secret leaves oned in
two answers only: ``ec2keycreate`` to the key's creator, once, and ``ec2keysecret`` to oneadmin
(econe-server's account), which also gets a token standing for the key's user in ``name:token``
sessions for EC2_TOKEN_LIFETIME seconds. No secret or token is ever logged.
"""

from __future__ import annotations

from oned import ec2keys
from oned.api.cloud import Caller, Cloud, require_admin, require_owner
from oned.ec2keys import Ec2Key, Grant
from oned.errors import ActionNotAllowed, InternalError, NoSuchObject
from oned.rpc.marshal import Escaped


def create(cloud: Cloud, caller: Caller, uid: int) -> list[str]:
    """``[access_key_id, secret]`` of a new key of user ``uid`` (-1: the caller)."""
    method = "one.user.ec2keycreate"
    uid = caller.uid if uid == -1 else uid
    require_owner(caller, uid, method, "MANAGE", f"USER [{uid}]")
    user = _user(cloud, uid, method)
    keyring = cloud.pools.ec2_keys
    if len(keyring.of(uid)) >= ec2keys.MAX_KEYS_PER_USER:
        raise ActionNotAllowed(
            f"[{method}] User [{uid}] already has {ec2keys.MAX_KEYS_PER_USER} EC2 keys; "
            "delete one first."
        )
    sealing_key = _sealing_key(cloud, method)
    access_key_id, secret = ec2keys.new_access_key_id(), ec2keys.new_secret()
    sealed = ec2keys.seal(sealing_key, access_key_id, secret)
    key = Ec2Key(access_key_id, uid, sealed, cloud.now())
    cloud.store.insert_ec2_key(key)  # type: ignore[attr-defined]
    keyring.put(key)
    cloud.log.info(f"EC2 key {access_key_id} created for user {user} ({uid}) by {caller.name}")
    return [access_key_id, secret]


def info(cloud: Cloud, caller: Caller, uid: int) -> Escaped:
    """``<EC2_KEYS>`` of user ``uid`` (-1: the caller): ids and creation times, no secret."""
    method = "one.user.ec2keyinfo"
    uid = caller.uid if uid == -1 else uid
    require_owner(caller, uid, method, "INFO", f"USER [{uid}]")
    _user(cloud, uid, method)
    keys = "".join(
        f"<EC2_KEY><ACCESS_KEY_ID>{k.access_key_id}</ACCESS_KEY_ID><UID>{k.uid}</UID>"
        f"<CREATED>{k.created}</CREATED></EC2_KEY>"
        for k in cloud.pools.ec2_keys.of(uid)
    )
    return Escaped.of(f"<EC2_KEYS>{keys}</EC2_KEYS>")


def delete(cloud: Cloud, caller: Caller, access_key_id: str) -> str:
    """The key is gone, and with it the tokens issued through it."""
    method = "one.user.ec2keydelete"
    key = _key(cloud, access_key_id, method)
    require_owner(caller, key.uid, method, "MANAGE", f"EC2 KEY [{access_key_id}]")
    cloud.store.delete_ec2_key(access_key_id)  # type: ignore[attr-defined]
    cloud.pools.ec2_keys.remove(access_key_id)
    cloud.log.info(f"EC2 key {access_key_id} of user {key.uid} deleted by {caller.name}")
    return access_key_id


def secret(cloud: Cloud, caller: Caller, access_key_id: str) -> list[object]:
    """``[uid, name, secret, token, expires]`` for econe-server (oneadmin only): the key's
    secret to check a signature with, and a token to act as the key's user until ``expires``
    (epoch seconds). A disabled user's key gives nothing (0x800)."""
    method = "one.user.ec2keysecret"
    require_admin(caller, method, "ADMIN on EC2 KEY")
    key = _key(cloud, access_key_id, method)
    user = cloud.pools.users.get(key.uid)
    if user is None:
        raise NoSuchObject(f"[{method}] Error getting EC2 key [{access_key_id}].")
    if not user.enabled:
        raise ActionNotAllowed(f"[{method}] User [{user.id}] is disabled.")
    try:
        clear = ec2keys.unseal(_sealing_key(cloud, method), access_key_id, key.secret_enc)
    except ec2keys.SealError as exc:
        cloud.log.error(f"{exc}: etc/ec2_keys.key is not the key it was sealed with")
        raise InternalError(f"[{method}] Internal error, see oned.log") from None
    now = cloud.now()
    expires = now + cloud.config.ec2_token_lifetime
    grant = Grant(user.id, user.name, access_key_id, expires)
    token = cloud.pools.ec2_keys.tokens.issue(grant, now)
    cloud.log.debug(f"EC2 key {access_key_id}: a token for user {user.name} until {expires}")
    return [user.id, user.name, clear, token, expires]


def _user(cloud: Cloud, uid: int, method: str) -> str:
    user = cloud.pools.users.get(uid)
    if user is None:
        raise NoSuchObject(f"[{method}] Error getting user [{uid}].")
    return user.name


def _key(cloud: Cloud, access_key_id: str, method: str) -> Ec2Key:
    key = cloud.pools.ec2_keys.get(access_key_id)
    if key is None:
        shown = access_key_id[:32].encode("unicode_escape").decode("ascii")
        raise NoSuchObject(f"[{method}] Error getting EC2 key [{shown}].")
    return key


def _sealing_key(cloud: Cloud, method: str) -> bytes:
    key: bytes = cloud.pools.ec2_keys.sealing_key
    if not key:
        raise ActionNotAllowed(
            f"[{method}] EC2 keys are disabled: oned has no etc/ec2_keys.key (see oned.log)."
        )
    return key
