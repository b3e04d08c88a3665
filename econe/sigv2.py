"""AWS Signature Version 2 verification (ec2.md §1.3): what the old econe-* and euca tools sent.

The signature fields travel among the parameters (form body or query string): AWSAccessKeyId,
SignatureVersion=2, SignatureMethod (HmacSHA256 or HmacSHA1), Timestamp or Expires, Signature.
The string to sign names the host; the Host header is tried first, then the policy's extra
host names (the public name behind a proxy, the host without its port, as econe did).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from econe.request import HttpRequest, Policy

DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}
FIELDS = ("AWSAccessKeyId", "SignatureVersion", "SignatureMethod", "Timestamp", "Expires")


@dataclass(frozen=True)
class SignedV2:
    """A SigV2 request whose shape and time were accepted; `check` judges its signature."""

    access_key: str
    method: str
    hosts: tuple[str, ...]
    path: str
    query: str  # the sorted, encoded parameters without Signature
    digest: str
    signature: bytes

    def strings_to_sign(self) -> list[str]:
        return [f"{self.method}\n{host}\n{self.path}\n{self.query}" for host in self.hosts]


def is_v2(request: HttpRequest) -> bool:
    """True when the parameters carry an AWSAccessKeyId (and no SigV4 header)."""
    return any(name == "AWSAccessKeyId" for name, _ in request.params())


def check(signed: SignedV2, secret: str | None, policy: Policy) -> None:
    """Refuse unless `secret` (None: unknown access key) gives the signature for some host."""
    if secret is None:
        raise policy.refuse("unknown_key", "the access key id is not known")
    ok = False
    for text in signed.strings_to_sign():
        mac = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), DIGESTS[signed.digest])
        ok |= hmac.compare_digest(mac.digest(), signed.signature)
    if not ok:
        raise policy.refuse("signature", "the request signature does not match")


def parse(request: HttpRequest, policy: Policy, now: float | None = None) -> SignedV2:
    """Read the signature's fields, check version, method and time, build the string to sign."""
    now = time.time() if now is None else now
    params = request.params()
    fields = _fields(params, policy)
    if fields.get("SignatureVersion") != "2":
        raise policy.refuse("malformed", "only SignatureVersion 2 is accepted")
    digest = fields.get("SignatureMethod", "")
    if digest not in DIGESTS:
        raise policy.refuse("malformed", "SignatureMethod must be HmacSHA256 or HmacSHA1")
    _check_time(fields, policy, now)
    try:
        signature = base64.b64decode(fields["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise policy.refuse("malformed", "the Signature is not base64") from None
    query = "&".join(
        f"{quote(n, safe='')}={quote(v, safe='-_~')}" for n, v in sorted(params) if n != "Signature"
    )
    hosts = _hosts(request, policy)
    path = request.path or "/"
    return SignedV2(
        fields["AWSAccessKeyId"], request.method.upper(), hosts, path, query, digest, signature
    )


def _fields(params: list[tuple[str, str]], policy: Policy) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in params:
        if name in FIELDS or name == "Signature":
            if name in fields:
                raise policy.refuse("malformed", f"{name} is given twice")
            fields[name] = value
    if not fields.get("AWSAccessKeyId") or not fields.get("Signature"):
        raise policy.refuse("missing", "the request has no AWSAccessKeyId and Signature")
    return fields


def _check_time(fields: dict[str, str], policy: Policy, now: float) -> None:
    """Timestamp within the window, or Expires not yet passed (exactly one of the two)."""
    if ("Timestamp" in fields) == ("Expires" in fields):
        raise policy.refuse("malformed", "give exactly one of Timestamp and Expires")
    if "Timestamp" in fields:
        if abs(_epoch(fields["Timestamp"], policy) - now) > policy.window:
            raise policy.refuse("expired", "the Timestamp is more than 15 minutes off")
    elif _epoch(fields["Expires"], policy) < now:
        raise policy.refuse("expired", "the request has expired")


def _epoch(text: str, policy: Policy) -> float:
    """An ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ, fractions and offsets allowed); UTC if naive."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise policy.refuse("malformed", f"{text[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _hosts(request: HttpRequest, policy: Policy) -> tuple[str, ...]:
    """The Host header as sent, then without its port, then the policy's names."""
    host = (request.header("host") or "").strip().lower()
    names = [host, host.rsplit(":", 1)[0] if host.count(":") == 1 else host, *policy.hosts]
    return tuple(dict.fromkeys(n for n in names if n))
