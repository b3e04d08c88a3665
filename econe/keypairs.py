"""Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

Pure and blocking. oned has no method that stores per-user data for a user (no
`one.user.update`), so econe keeps the public keys in a file of its own, `keypairs_file`
(default `<var>/econe-keypairs.json`, mode 0600): `{uid: {name: {fingerprint, public_key,
id}}}`, rewritten whole (temporary file, fsync, rename) under a lock. Keyed by oned's user id,
so a user sees only their own. Private keys are never kept: CreateKeyPair answers its key once.
Fingerprints as AWS: SHA-1 of the PKCS#8 private key for created keys, MD5 of the DER public
key for imported ones. RunInstances puts the public key into the VM's CONTEXT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import threading
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from econe import filters, responses
from econe.context import Context
from econe.errors import Ec2Error
from econe.query import QueryRequest, as_list, required

_NAME = re.compile(r"[\x20-\x7e]{1,255}\Z")


class KeyPairStore:
    """The key pairs of every user, in one JSON file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, dict[str, str]]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save(self, data: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def of(self, uid: int) -> dict[str, dict[str, str]]:
        with self.lock:
            return self._load().get(str(uid), {})

    def add(self, uid: int, name: str, entry: dict[str, str]) -> None:
        with self.lock:
            data = self._load()
            mine = data.setdefault(str(uid), {})
            if name in mine:
                raise Ec2Error("InvalidKeyPair.Duplicate", f"The keypair '{name}' already exists.")
            mine[name] = entry
            self._save(data)

    def delete(self, uid: int, name: str) -> None:
        with self.lock:
            data = self._load()
            if data.get(str(uid), {}).pop(name, None) is not None:
                self._save(data)

    def public_key(self, uid: int, name: str) -> str:
        """The public key RunInstances' KeyName names; InvalidKeyPair.NotFound otherwise."""
        entry = self.of(uid).get(name)
        if entry is None:
            raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{name[:64]}' does not exist")
        return entry["public_key"]


def _checked_name(call: QueryRequest) -> str:
    name = required(call.params, "KeyName")
    if not isinstance(name, str) or not _NAME.match(name):
        raise Ec2Error("InvalidParameterValue", "KeyName must be 1 to 255 ASCII characters")
    return name


def _hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def create_key_pair(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    name = _checked_name(call)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    entry = _entry(_hex(hashlib.sha1(pkcs8).digest()), f"{public.decode()} {name}")
    ctx.services.keypairs.add(ctx.uid(), name, entry)
    return {**_answer(name, entry), "keyMaterial": pem}


def import_key_pair(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    name = _checked_name(call)
    material = required(call.params, "PublicKeyMaterial")
    try:
        text = base64.b64decode(material, validate=True)
        key = serialization.load_ssh_public_key(text.strip())
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm):
        raise Ec2Error("InvalidKey.Format", "the key is not an OpenSSH public key") from None
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    entry = _entry(_hex(hashlib.md5(der).digest()), text.decode().strip())
    ctx.services.keypairs.add(ctx.uid(), name, entry)
    return _answer(name, entry)


def _entry(fingerprint: str, public_key: str) -> dict[str, str]:
    return {"fingerprint": fingerprint, "public_key": public_key, "id": _new_id()}


def _new_id() -> str:
    return "key-" + secrets.token_hex(8)


def _answer(name: str, entry: dict[str, str]) -> dict[str, Any]:
    return {"keyName": name, "keyFingerprint": entry["fingerprint"], "keyPairId": entry["id"]}


READERS: dict[str, filters.Reader] = {
    "key-name": lambda r: r["name"],
    "fingerprint": lambda r: r["fingerprint"],
    "key-pair-id": lambda r: r["id"],
}


def describe_key_pairs(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    mine = ctx.services.keypairs.of(ctx.uid())
    rows = [{"name": n, **e} for n, e in sorted(mine.items())]
    names = as_list(call.params, "KeyName")
    if names:
        missing = [n for n in names if n not in mine]
        if missing:
            raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{missing[0]}' does not exist")
        rows = [r for r in rows if r["name"] in names]
    rows = filters.select(rows, call.params.get("Filter"), READERS)
    return {"keySet": [responses.key_pair(r["name"], r["fingerprint"], r["id"]) for r in rows]}


def delete_key_pair(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    """Deleting a key pair that does not exist succeeds, as on EC2."""
    ctx.services.keypairs.delete(ctx.uid(), _checked_name(call))
    return {"return": True}


ACTIONS = {
    "CreateKeyPair": create_key_pair,
    "ImportKeyPair": import_key_pair,
    "DescribeKeyPairs": describe_key_pairs,
    "DeleteKeyPair": delete_key_pair,
}
