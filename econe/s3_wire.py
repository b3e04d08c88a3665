"""The S3 endpoint's wire: error codes with their HTTP statuses, the XML documents botocore's
RestXML parser reads, bucket-name and key checks, and ranges.

Pure. Errors are `Ec2Error`s carrying S3's code and status (the server renders them in S3's
`<Error><Code/><Message/><Resource/><RequestId/></Error>` shape). Documents are written as
text; every value a user chose (keys, prefixes) is escaped, and keys with control characters
are refused at the door (`check_key`), so a listing is always well-formed XML.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from econe.errors import Ec2Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEY = 1024  # bytes of UTF-8, S3's limit
STATUS = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "MetadataTooLarge": 400,
    "MethodNotAllowed": 405,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NotImplemented": 501,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "XAmzContentSHA256Mismatch": 400,
}
# econe's own refusals (signature module, oned) worded as S3 words them
_FROM_EC2 = {
    "Unavailable": "ServiceUnavailable",
    "AuthFailure": "AccessDenied",
    "UnauthorizedOperation": "AccessDenied",
}
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_IP = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def error(code: str, message: str) -> Ec2Error:
    """An S3 refusal with S3's HTTP status for `code`."""
    return Ec2Error(code, message, STATUS.get(code, 400))


def as_s3(exc: Ec2Error) -> Ec2Error:
    """An error raised by shared code (signatures, oned) with an S3 code and status."""
    code = _FROM_EC2.get(exc.code, exc.code)
    if code == exc.code and code in STATUS:
        return exc
    return Ec2Error(code, exc.message, STATUS.get(code, exc.status))


def check_bucket(name: str) -> str:
    """`name` when it is a valid S3 bucket name (3-63 of a-z 0-9 . -, no '..', not an IP)."""
    if not _BUCKET.match(name) or ".." in name or _IP.match(name):
        raise error("InvalidBucketName", f"{name[:70]!r} is not a valid bucket name")
    return name


def check_key(key: str) -> str:
    """`key` when econe stores it: 1-1024 bytes, no control character (NUL...), not absolute,
    no '.' or '..' segment. Keys never become file names (the store hashes them); these are
    refused so that what a listing shows is what a path-minded client means."""
    if len(key.encode("utf-8")) > MAX_KEY:
        raise error("KeyTooLongError", f"the key is over {MAX_KEY} bytes")
    if not key:
        raise error("InvalidArgument", "the key is empty")
    if _CONTROL.search(key):
        raise error("InvalidArgument", "the key holds a control character")
    if key.startswith("/"):
        raise error("InvalidArgument", "the key is absolute (starts with '/')")
    if any(seg in (".", "..") for seg in key.split("/")):
        raise error("InvalidArgument", "the key has a '.' or '..' segment")
    return key


def http_date(epoch: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


def iso_date(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def render_error(exc: Ec2Error, resource: str, request_id: str) -> tuple[int, bytes]:
    """(status, S3 error document)."""
    body = (
        f"<Error><Code>{escape(exc.code)}</Code><Message>{escape(_clean(exc.message))}</Message>"
        f"<Resource>{escape(_clean(resource))}</Resource><RequestId>{request_id}</RequestId>"
        "</Error>"
    )
    return exc.status, document(body)


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)


def document(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8")


def element(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def list_buckets(buckets: list[tuple[str, float]], owner: str) -> bytes:
    items = "".join(
        f"<Bucket>{element('Name', n)}{element('CreationDate', iso_date(c))}</Bucket>"
        for n, c in buckets
    )
    who = f"<Owner>{element('ID', owner)}{element('DisplayName', owner)}</Owner>"
    return document(f'<ListAllMyBucketsResult xmlns="{NS}">{who}<Buckets>{items}</Buckets>'
                    "</ListAllMyBucketsResult>")  # fmt: skip


def object_entry(meta: dict[str, Any], encode: bool) -> str:
    return (
        f"<Contents>{element('Key', url(meta['key'], encode))}"
        f"{element('LastModified', iso_date(meta['modified']))}"
        f"{element('ETag', quoted(meta['etag']))}{element('Size', meta['size'])}"
        "<StorageClass>STANDARD</StorageClass></Contents>"
    )


def url(value: str, encode: bool) -> str:
    """A name as `encoding-type=url` asks (botocore asks, then unquotes)."""
    return quote(value, safe="/") if encode else value


def quoted(etag: str) -> str:
    return f'"{etag}"'


def location(region: str) -> bytes:
    return document(f'<LocationConstraint xmlns="{NS}">{escape(region)}</LocationConstraint>')


def parse_xml(body: bytes, root: str) -> ET.Element:
    """A small request document (CompleteMultipartUpload, Delete), namespace stripped."""
    try:
        tree = ET.fromstring(body)
    except ET.ParseError:
        raise error("MalformedXML", f"the {root} document is not well-formed XML") from None
    for node in tree.iter():
        node.tag = node.tag.rsplit("}", 1)[-1]
    if tree.tag != root:
        raise error("MalformedXML", f"expected a {root} document")
    return tree


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, None for the whole object; a range that
    starts past the end is `InvalidRange` (416)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None  # S3 ignores what it does not understand and sends the whole object
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise error("InvalidRange", "the requested range is not satisfiable")
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last.isdigit() else size - 1
    if start >= size or end < start:
        raise error("InvalidRange", "the requested range is not satisfiable")
    return start, min(end, size - 1)
