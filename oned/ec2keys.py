"""EC2 credentials of users (issue 15): access keys, their secrets sealed at rest, and the
short-lived session tokens econe-server acts with. Pure: no file, socket or database here.

Passwords are salted hashes (DESIGN.md §10), so the HMAC secret of a signed EC2 request is a
key of its own, as AWS has it: an access key id (``AKOC`` + 16 base32 characters, random, so
never handed out twice) and a 40-character secret. The secret is stored AES-256-GCM sealed
under the 32-byte key of ``etc/ec2_keys.key``, outside the database, with the access key id as
associated data: a dump of the database reveals no secret, and a sealed secret moved to another
key id no longer opens.

A token (``Tokens``) stands for a user's password in ``name:token`` sessions until it expires;
it lives in oned's memory only, so a restart of oned ends every token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "AKOC"
ACCESS_KEY_ID = re.compile(r"AKOC[A-Z2-7]{16}")
MAX_KEYS_PER_USER = 2  # as AWS
SEALING_KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
MAX_TOKENS = 100_000


class SealError(ValueError):
    """A sealed secret that does not open: tampered, under another key id or another key."""


@dataclass(frozen=True)
class Ec2Key:
    """One access key of user ``uid``; ``secret_enc`` is the sealed secret (base64 text)."""

    access_key_id: str
    uid: int
    secret_enc: str
    created: int


@dataclass(frozen=True)
class Grant:
    """What a token stands for: user ``uid`` called ``name``, through key ``access_key_id``."""

    uid: int
    name: str
    access_key_id: str
    expires: float


def new_access_key_id() -> str:
    return PREFIX + base64.b32encode(os.urandom(10)).decode("ascii")


def new_secret() -> str:
    """40 characters of base64url: 240 random bits."""
    return base64.urlsafe_b64encode(os.urandom(30)).decode("ascii")


def new_sealing_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * SEALING_KEY_BYTES)


def seal(key: bytes, access_key_id: str, secret: str) -> str:
    """``secret`` encrypted and authenticated under ``key``, bound to ``access_key_id``."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secret.encode("utf-8"), access_key_id.encode("ascii"))
    return base64.b64encode(nonce + sealed).decode("ascii")


def unseal(key: bytes, access_key_id: str, secret_enc: str) -> str:
    """The secret ``seal`` sealed; SealError for anything else."""
    try:
        raw = base64.b64decode(secret_enc, validate=True)
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        plain = AESGCM(key).decrypt(nonce, sealed, access_key_id.encode("ascii"))
        return plain.decode("utf-8")
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SealError(f"the sealed secret of EC2 key {access_key_id} does not open") from exc


def key_file_text(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii") + "\n"


def parse_key_file(text: str) -> bytes:
    """The sealing key of ``etc/ec2_keys.key`` (one base64 line); ValueError saying why not."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("not one line of base64") from None
    if len(key) != SEALING_KEY_BYTES:
        raise ValueError(f"{len(key)} bytes; an AES-256 key is {SEALING_KEY_BYTES}")
    return key


def session_digest(session: str) -> bytes:
    """How sessions are looked up: by digest, so no session string is kept as a key."""
    return hashlib.sha256(session.encode("utf-8", "surrogatepass")).digest()


class Tokens:
    """Tokens issued by ``one.user.ec2keysecret``, by digest of their ``name:token`` session."""

    def __init__(self) -> None:
        self._grants: dict[bytes, Grant] = {}

    def __len__(self) -> int:
        return len(self._grants)

    def issue(self, grant: Grant, now: float) -> str:
        """A fresh token for ``grant``; once MAX_TOKENS are held, the expired go, then the
        oldest."""
        token = secrets.token_urlsafe(30)
        if len(self._grants) >= MAX_TOKENS:
            self._forget(lambda g: g.expires <= now)
            while len(self._grants) >= MAX_TOKENS:
                del self._grants[next(iter(self._grants))]
        self._grants[session_digest(f"{grant.name}:{token}")] = grant
        return token

    def find(self, digest: bytes, now: float) -> Grant | None:
        """The grant of a session digest, None when there is none or it has expired."""
        grant = self._grants.get(digest)
        if grant is None:
            return None
        if now >= grant.expires:
            del self._grants[digest]
            return None
        return grant

    def revoke_key(self, access_key_id: str) -> None:
        self._forget(lambda g: g.access_key_id == access_key_id)

    def revoke_user(self, uid: int) -> None:
        self._forget(lambda g: g.uid == uid)

    def _forget(self, gone: Callable[[Grant], bool]) -> None:
        for digest in [d for d, g in self._grants.items() if gone(g)]:
            del self._grants[digest]


class Keyring:
    """The EC2 keys in memory (loaded at start, written through the store), the sealing key,
    and the tokens: deleting a key or a user's keys revokes the tokens issued through them."""

    def __init__(self, sealing_key: bytes = b"") -> None:
        self.sealing_key = sealing_key
        self.tokens = Tokens()
        self._keys: dict[str, Ec2Key] = {}
        self._by_uid: dict[int, dict[str, Ec2Key]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, access_key_id: str) -> Ec2Key | None:
        return self._keys.get(access_key_id)

    def of_any(self) -> list[Ec2Key]:
        """One key, if there is any (to check the sealing key at start)."""
        return [next(iter(self._keys.values()))] if self._keys else []

    def of(self, uid: int) -> list[Ec2Key]:
        """A user's keys, oldest first."""
        mine = self._by_uid.get(uid, {}).values()
        return sorted(mine, key=lambda k: (k.created, k.access_key_id))

    def put(self, key: Ec2Key) -> None:
        self._keys[key.access_key_id] = key
        self._by_uid.setdefault(key.uid, {})[key.access_key_id] = key

    def remove(self, access_key_id: str) -> None:
        key = self._keys.pop(access_key_id, None)
        if key is not None:
            mine = self._by_uid[key.uid]
            del mine[access_key_id]
            if not mine:
                del self._by_uid[key.uid]
        self.tokens.revoke_key(access_key_id)

    def remove_user(self, uid: int) -> None:
        for access_key_id in self._by_uid.pop(uid, {}):
            del self._keys[access_key_id]
        self.tokens.revoke_user(uid)
