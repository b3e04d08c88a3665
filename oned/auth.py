"""Passwords and session strings (reference §9): pure functions, no I/O.

Every password is reduced to its canonical 1.4 form, the 40-hex SHA-1 digest, and that digest is
stored salted and stretched with PBKDF2-SHA256. A session secret may then be either the clear
password (pyone, OpenNebula >= 3.2 clients) or its SHA-1 digest (OpenNebula 1.4/2.0 clients).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from oned.errors import AuthenticationError

SCHEME = "pbkdf2_sha256"
ITERATIONS = 50_000
_HEX40 = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[^\s:]{1,128}")


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def canonical_digests(secret: str) -> list[str]:
    """The SHA-1 digests a secret may stand for: itself if it looks like one, and its own SHA-1.

    NOTE: OpenNebula 1.4 clients send sha1(password) as the secret; newer ones send the
    password. A 40-hex secret is therefore tried both ways.
    """
    if _HEX40.fullmatch(secret):
        return [secret, sha1_hex(secret)]
    return [sha1_hex(secret)]


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The stored form of a password given in clear or as its 1.4 SHA-1 digest."""
    digest = canonical_digests(password)[0]
    salt = salt if salt is not None else os.urandom(16)
    derived = hashlib.pbkdf2_hmac("sha256", digest.encode(), salt, iterations)
    return "$".join((SCHEME, str(iterations), _b64(salt), _b64(derived)))


def verify_password(secret: str, stored: str) -> bool:
    """True when the session secret (clear or SHA-1) matches the stored hash. Slow on purpose."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        rounds = int(iterations)
        salt_bytes, expected_bytes = _unb64(salt), _unb64(expected)
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    found = False
    for digest in canonical_digests(secret):
        derived = hashlib.pbkdf2_hmac("sha256", digest.encode(), salt_bytes, rounds)
        found |= hmac.compare_digest(derived, expected_bytes)
    return found


def split_session(session: object) -> tuple[str, str]:
    """``user:secret`` -> (user, secret); anything else is an authentication failure."""
    if not isinstance(session, str) or ":" not in session:
        raise AuthenticationError("User couldn't be authenticated, aborting call.")
    user, secret = session.split(":", 1)
    if not user or not secret:
        raise AuthenticationError("User couldn't be authenticated, aborting call.")
    return user, secret


def check_user_name(name: str) -> None:
    """User names end up in session strings: no blanks, no colon, 1 to 128 characters."""
    if not _NAME.fullmatch(name):
        raise ValueError(f'invalid user name "{name}": 1-128 characters, no blanks or ":"')


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))
