"""The raw parts of an HTTP request that the signature verifiers and the query parser read.

Pure: the server fills an `HttpRequest` from Twisted's request (raw path and query as received,
headers as pairs, the body bytes or their SHA-256 when it was streamed to disk) and the
verifiers decide on it. `Policy` says what the endpoint accepts and how it words a refusal:
EC2 and S3 name the same failures differently (ec2.md §1.5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from econe.errors import Ec2Error

FORM_TYPE = "application/x-www-form-urlencoded"
WINDOW = 900  # seconds either side of the server's clock (AWS's 15 minutes)

# (kind of failure) -> (EC2 code, S3 code)
_CODES = {
    "missing": ("MissingAuthenticationToken", "AccessDenied"),
    "malformed": ("IncompleteSignature", "AuthorizationHeaderMalformed"),
    "unknown_key": ("AuthFailure", "InvalidAccessKeyId"),
    "signature": ("AuthFailure", "SignatureDoesNotMatch"),
    "scope": ("AuthFailure", "AuthorizationHeaderMalformed"),
    "expired": ("RequestExpired", "RequestTimeTooSkewed"),
    "presign_expired": ("RequestExpired", "AccessDenied"),
    "payload": ("AuthFailure", "XAmzContentSHA256Mismatch"),
}


@dataclass(frozen=True)
class HttpRequest:
    """One request as received: `path` and `query` still percent-encoded, `query` without '?'."""

    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_sha256: str | None = None  # hex digest, when the body was hashed while streamed

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (any case), in the order received."""
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def header(self, name: str) -> str | None:
        """The header's values comma-joined (RFC 9110), None when absent."""
        values = self.header_values(name)
        return ",".join(values) if values else None

    def payload_hash(self) -> str:
        """Hex SHA-256 of the body."""
        return self.body_sha256 or hashlib.sha256(self.body).hexdigest()

    def query_pairs(self) -> list[tuple[str, str]]:
        """The query string decoded into (name, value) pairs, blanks kept."""
        return _pairs(self.query)

    def form_pairs(self) -> list[tuple[str, str]]:
        """The body decoded as a form when it is one (POST with the form content type)."""
        ctype = (self.header("content-type") or "").split(";")[0].strip().lower()
        if self.method.upper() != "POST" or ctype != FORM_TYPE or not self.body:
            return []
        try:
            return _pairs(self.body.decode("utf-8"))
        except UnicodeDecodeError:
            raise Ec2Error("InvalidParameterValue", "the form body is not UTF-8") from None

    def params(self) -> list[tuple[str, str]]:
        """Query string then form body: the parameters of an EC2 Query request."""
        return self.query_pairs() + self.form_pairs()


def _pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Ec2Error("InvalidParameterValue", "the parameters are not valid UTF-8") from None


@dataclass(frozen=True)
class Policy:
    """What an endpoint accepts: its service (which names its errors), the regions and scope
    services a SigV4 credential may name (None: any, as boto 2 pointed at an IP address sends
    `…/0/127/aws4_request`), the clock window, and extra host names SigV2 may have signed."""

    service: str = "ec2"
    regions: frozenset[str] | None = None
    scope_services: frozenset[str] | None = None
    window: int = WINDOW
    hosts: tuple[str, ...] = field(default=())

    def accepts_service(self, name: str) -> bool:
        """The endpoint's own service, or any of `scope_services` ("*": any at all)."""
        allowed = self.scope_services if self.scope_services is not None else {self.service}
        return name in allowed or "*" in allowed

    def refuse(self, kind: str, message: str) -> Ec2Error:
        """The error for a failure of `kind` ("missing", "malformed", "signature"...)."""
        ec2, s3 = _CODES[kind]
        code = s3 if self.service == "s3" else ec2
        return Ec2Error(code, message)
