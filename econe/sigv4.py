"""AWS Signature Version 4 verification (ec2.md §1.2): the Authorization header and presigned
query-string forms, for the EC2 Query endpoint and the S3 bucket endpoint.

Two steps, so a caller can fetch the secret asynchronously in between: `parse` checks the
request's shape, scope and clock window and builds the canonical request; `check` compares the
signature the secret gives with `hmac.compare_digest`. `verify` does both with a synchronous
lookup. Refusals are `Ec2Error`s worded by the endpoint's `Policy`.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_tz
from urllib.parse import quote, unquote_plus

from econe.request import HttpRequest, Policy

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_EXPIRES = 604800  # a presigned URL lives at most 7 days (AWS's limit)
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_SECONDS = re.compile(r"[0-9]{1,7}\Z")
_TERMINATOR = "aws4_request"


@dataclass(frozen=True)
class SignedV4:
    """A SigV4 request whose shape, scope and time were accepted; `check` judges its signature."""

    access_key: str
    timestamp: str
    scope: str  # date/region/service/aws4_request
    signature: str
    canonical_request: str

    def string_to_sign(self) -> str:
        digest = hashlib.sha256(self.canonical_request.encode("utf-8")).hexdigest()
        return f"{ALGORITHM}\n{self.timestamp}\n{self.scope}\n{digest}"


def is_v4(request: HttpRequest) -> bool:
    """True when the request carries a SigV4 signature (header or presigned query)."""
    auth = request.header("authorization") or ""
    return auth.startswith(ALGORITHM) or "X-Amz-Algorithm=" in request.query


def check(signed: SignedV4, secret: str | None, policy: Policy) -> None:
    """Refuse unless `secret` (None: unknown access key) gives the request's signature."""
    if secret is None:
        raise policy.refuse("unknown_key", "the access key id is not known")
    date, region, service, _ = signed.scope.split("/")
    key = signing_key(secret, date, region, service)
    expected = hmac.new(key, signed.string_to_sign().encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise policy.refuse("signature", "the request signature does not match")


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC chain over date, region, service and "aws4_request"."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, _TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def parse(request: HttpRequest, policy: Policy, now: float | None = None) -> SignedV4:
    """Read the signature's fields, check the scope and the clock, build the canonical request."""
    now = time.time() if now is None else now
    auth = request.header_values("authorization")
    presigned = "X-Amz-Algorithm=" in request.query
    if auth and presigned:
        raise policy.refuse("malformed", "both an Authorization header and a presigned query")
    if presigned:
        fields, timestamp = _presigned_fields(request, policy, now)
    elif auth:
        fields, timestamp = _header_fields(request, auth, policy, now)
    else:
        raise policy.refuse("missing", "the request is not signed")
    access_key, scope = _scope(fields["Credential"], timestamp, policy)
    signed_headers = _signed_headers(fields["SignedHeaders"], policy)
    signature = fields["Signature"]
    if not _HEX64.match(signature):
        raise policy.refuse("malformed", "the signature is not 64 lowercase hex digits")
    canonical = canonical_request(request, signed_headers, policy, presigned)
    return SignedV4(access_key, timestamp, scope, signature, canonical)


def _header_fields(
    request: HttpRequest, auth: list[str], policy: Policy, now: float
) -> tuple[dict[str, str], str]:
    if len(auth) != 1:
        raise policy.refuse("malformed", "more than one Authorization header")
    algorithm, _, rest = auth[0].strip().partition(" ")
    if algorithm != ALGORITHM:
        raise policy.refuse("malformed", f"unsupported signature algorithm {algorithm[:40]!r}")
    fields = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name] = value
    _require(fields, ("Credential", "SignedHeaders", "Signature"), policy)
    timestamp = _request_time(request, policy)
    _within_window(timestamp, policy, now)
    return fields, timestamp


def _presigned_fields(
    request: HttpRequest, policy: Policy, now: float
) -> tuple[dict[str, str], str]:
    query = dict(request.query_pairs())
    names = ("Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature")
    fields = {n: query[f"X-Amz-{n}"] for n in names if f"X-Amz-{n}" in query}
    _require(fields, names, policy)
    if fields["Algorithm"] != ALGORITHM:
        raise policy.refuse("malformed", "unsupported X-Amz-Algorithm")
    expires = fields["Expires"]
    if not _SECONDS.match(expires) or not 0 < int(expires) <= MAX_EXPIRES:
        raise policy.refuse("malformed", f"X-Amz-Expires must be 1 to {MAX_EXPIRES} seconds")
    signed_at = _epoch(fields["Date"], policy)
    if signed_at > now + policy.window:
        raise policy.refuse("expired", "the request is dated in the future")
    if now > signed_at + int(expires):
        raise policy.refuse("presign_expired", "the presigned request has expired")
    return fields, fields["Date"]


def _require(fields: dict[str, str], names: tuple[str, ...], policy: Policy) -> None:
    missing = [n for n in names if not fields.get(n)]
    if missing:
        raise policy.refuse("malformed", f"the signature lacks {', '.join(missing)}")


def _request_time(request: HttpRequest, policy: Policy) -> str:
    """X-Amz-Date, or the Date header rewritten in its format."""
    amz = request.header("x-amz-date")
    if amz is not None:
        return amz.strip()
    date = request.header("date")
    parsed = parsedate_tz(date) if date else None
    try:
        if parsed is None:
            raise ValueError(date)
        return time.strftime(TIMESTAMP, time.gmtime(calendar.timegm(parsed[:9]) - (parsed[9] or 0)))
    except (ValueError, OverflowError, OSError):
        raise policy.refuse(
            "malformed", "the request has no valid X-Amz-Date or Date header"
        ) from None


def _epoch(timestamp: str, policy: Policy) -> float:
    try:
        return float(calendar.timegm(time.strptime(timestamp, TIMESTAMP)))
    except ValueError:
        raise policy.refuse("malformed", "the date is not YYYYMMDDTHHMMSSZ") from None


def _within_window(timestamp: str, policy: Policy, now: float) -> None:
    if abs(_epoch(timestamp, policy) - now) > policy.window:
        raise policy.refuse(
            "expired", f"the request time {timestamp} is more than 15 minutes from the server's"
        )


def _scope(credential: str, timestamp: str, policy: Policy) -> tuple[str, str]:
    """The access key and the date/region/service/aws4_request scope, checked."""
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0] or parts[4] != _TERMINATOR:
        raise policy.refuse("malformed", "Credential must be key/date/region/service/aws4_request")
    access_key, date, region, service, _ = parts
    if date != timestamp[:8]:
        raise policy.refuse("scope", "the Credential's date is not the request's date")
    if policy.regions is not None and region not in policy.regions:
        raise policy.refuse("scope", f"the Credential names region {region[:40]!r}, not this one")
    if not policy.accepts_service(service):
        raise policy.refuse("scope", f"the Credential names service {service[:40]!r}")
    return access_key, "/".join(parts[1:])


def _signed_headers(value: str, policy: Policy) -> list[str]:
    names = value.split(";")
    if "host" not in names or any(not n or n != n.lower() for n in names):
        raise policy.refuse("malformed", "SignedHeaders must list lowercase names including host")
    return names


def canonical_request(
    request: HttpRequest, signed_headers: list[str], policy: Policy, presigned: bool
) -> str:
    """The canonical request of ec2.md §1.2 step 4, from the request as received."""
    headers = []
    for name in signed_headers:
        values = request.header_values(name)
        if not values:
            raise policy.refuse("signature", f"the signed header {name[:40]!r} is missing")
        headers.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.path, policy.service),
            canonical_query(request.query),
            "".join(headers),
            ";".join(signed_headers),
            _payload(request, policy, presigned),
        ]
    )


def canonical_uri(path: str, service: str) -> str:
    """S3 signs the path as sent; other services its dot-normalised form, encoded once more."""
    if service == "s3":
        return path or "/"
    return quote(_remove_dot_segments(path or "/"), safe="/~")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, empty segments dropped too (what botocore signs)."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    last = "/" if path.endswith("/") and out else ""
    return "/" + "/".join(out) + last if path.startswith("/") else "/".join(out) + last


def canonical_query(query: str) -> str:
    """Pairs decoded, RFC 3986-encoded again, sorted; the presigned signature left out."""
    pairs = []
    for pair in query.split("&") if query else []:
        name, _, value = pair.partition("=")
        name, value = _rfc3986(name), _rfc3986(value)
        if name != "X-Amz-Signature":
            pairs.append((name, value))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _rfc3986(text: str) -> str:
    """'+' is a space, as in the form encoding Python's HTTP clients send; '%2B' is a plus."""
    return quote(unquote_plus(text), safe="-_.~")


def _payload(request: HttpRequest, policy: Policy, presigned: bool) -> str:
    """The payload hash the client signed; a declared hash must be the body's."""
    declared = request.header("x-amz-content-sha256")
    if declared is None:
        if presigned and policy.service == "s3":
            return UNSIGNED_PAYLOAD
        return request.payload_hash()
    if declared == UNSIGNED_PAYLOAD or declared.startswith("STREAMING-"):
        if policy.service != "s3":
            raise policy.refuse("payload", "an EC2 request must sign its body")
        return declared
    if not hmac.compare_digest(declared.encode(), request.payload_hash().encode()):
        raise policy.refuse("payload", "X-Amz-Content-SHA256 is not the body's SHA-256")
    return declared
