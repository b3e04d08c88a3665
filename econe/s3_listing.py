"""ListObjects (v1) and ListObjectsV2: prefix, delimiter, max-keys, markers and continuation
tokens over a bucket's sorted keys, and the ListBucketResult documents.

Pure. Keys come sorted; a key holding the delimiter after the prefix is rolled up into one
CommonPrefix, which counts once toward max-keys (as S3). A page ends at max-keys; the next
one starts after its last key or common prefix (v1's NextMarker, v2's opaque
NextContinuationToken: that name base64-encoded).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from econe.s3_wire import NS, document, element, error, object_entry, url

MAX_KEYS = 1000


@dataclass
class Page:
    contents: list[dict[str, Any]] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str = ""  # the last key or common prefix on this page


def select(
    objects: list[dict[str, Any]], prefix: str, delimiter: str, after: str, max_keys: int
) -> Page:
    """The page of `objects` (sorted by key) after `after`."""
    page = Page()
    for meta in objects:
        key = meta["key"]
        if key <= after or not key.startswith(prefix):
            continue
        if delimiter and after.endswith(delimiter) and key.startswith(after):
            continue  # inside the common prefix the last page ended with
        rolled = _rolled(key, prefix, delimiter)
        if rolled is not None and page.prefixes and page.prefixes[-1] == rolled:
            continue
        if len(page.contents) + len(page.prefixes) >= max_keys:
            page.truncated = True
            break
        if rolled is not None:
            page.prefixes.append(rolled)
            page.last = rolled
        else:
            page.contents.append(meta)
            page.last = key
    return page


def _rolled(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


def max_keys(text: str | None) -> int:
    if text is None:
        return MAX_KEYS
    if not text.isdigit():
        raise error("InvalidArgument", "max-keys must be a non-negative integer")
    return min(int(text), MAX_KEYS)


def token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def untoken(text: str) -> str:
    try:
        return base64.b64decode(text.encode("ascii"), b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise error("InvalidArgument", "the continuation token is not valid") from None


def render(bucket: str, page: Page, args: dict[str, str], limit: int, v2: bool) -> bytes:
    encode = args.get("encoding-type") == "url"
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    head = [element("Name", bucket), element("Prefix", url(prefix, encode))]
    if v2:
        head.append(element("KeyCount", len(page.contents) + len(page.prefixes)))
        if "continuation-token" in args:
            head.append(element("ContinuationToken", args["continuation-token"]))
        if "start-after" in args:
            head.append(element("StartAfter", url(args["start-after"], encode)))
        if page.truncated:
            head.append(element("NextContinuationToken", token(page.last)))
    else:
        head.append(element("Marker", url(args.get("marker", ""), encode)))
        if page.truncated and delimiter:
            head.append(element("NextMarker", url(page.last, encode)))
    head.append(element("MaxKeys", limit))
    if delimiter:
        head.append(element("Delimiter", url(delimiter, encode)))
    if encode:
        head.append(element("EncodingType", "url"))
    head.append(element("IsTruncated", "true" if page.truncated else "false"))
    body = "".join(head) + "".join(object_entry(m, encode) for m in page.contents)
    body += "".join(
        f"<CommonPrefixes>{element('Prefix', url(p, encode))}</CommonPrefixes>"
        for p in page.prefixes
    )
    return document(f'<ListBucketResult xmlns="{NS}">{body}</ListBucketResult>')
