"""Multipart uploads of the S3 endpoint: create, parts, list parts, complete, abort.

Pure and blocking (worker threads). S3's rules: part numbers 1-10000; a part sent again
replaces the earlier one; Complete names the parts in ascending order (`InvalidPartOrder`),
each with the ETag it was answered (`InvalidPart`), every part but the last at least 5 MiB
(`EntityTooSmall`), the whole at most `max_object` (`EntityTooLarge`); the object's ETag is
the MD5 of the parts' MD5s, a dash and their number. The parts are joined with
`os.copy_file_range` (in the kernel) into a file of `.incoming/`, then renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
from typing import Any

from econe.s3_store import ObjectStore, _read_json, _write_json
from econe.s3_wire import check_key, error, parse_xml

MIN_PART = 5 * 2**20
MAX_PARTS = 10000
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{32}\Z")


def _folder(store: ObjectStore, uid: int, bucket: str, upload_id: str) -> str:
    if not _UPLOAD_ID.match(upload_id):
        raise error("NoSuchUpload", "the upload id is not one of this server's")
    path = os.path.join(store.existing(uid, bucket), "uploads", upload_id)
    if not os.path.isfile(os.path.join(path, "upload.json")):
        raise error("NoSuchUpload", "the upload does not exist (completed or aborted?)")
    return path


def part_number(text: str | None) -> int:
    if text is None or not text.isdigit() or not 1 <= int(text) <= MAX_PARTS:
        raise error("InvalidArgument", f"partNumber must be 1 to {MAX_PARTS}")
    return int(text)


def create(store: ObjectStore, uid: int, bucket: str, key: str, meta: dict[str, Any]) -> str:
    check_key(key)
    upload_id = secrets.token_urlsafe(24)
    path = os.path.join(store.existing(uid, bucket), "uploads", upload_id)
    os.makedirs(path, mode=0o750)
    _write_json(os.path.join(path, "upload.json"), {**meta, "key": key, "started": time.time()})
    return upload_id


def upload_of(store: ObjectStore, uid: int, bucket: str, key: str, upload_id: str) -> str:
    """The upload's folder, checked to be for `key`."""
    path = _folder(store, uid, bucket, upload_id)
    meta = _read_json(os.path.join(path, "upload.json")) or {}
    if meta.get("key") != key:
        raise error("NoSuchUpload", "the upload is for another key")
    return path


def put_part(folder: str, number: int, source: str, etag: str, size: int) -> None:
    """The received file `source` as part `number` (replacing an earlier one)."""
    target = os.path.join(folder, str(number))
    os.replace(source, target)
    _write_json(target + ".json", {"etag": etag, "size": size, "modified": time.time()})


def parts(folder: str) -> dict[int, dict[str, Any]]:
    found = {}
    for name in os.listdir(folder):
        if name.endswith(".json") and name[:-5].isdigit():
            meta = _read_json(os.path.join(folder, name))
            if meta is not None:
                found[int(name[:-5])] = meta
    return dict(sorted(found.items()))


def requested_parts(body: bytes) -> list[tuple[int, str]]:
    """(number, ETag) of the CompleteMultipartUpload document, in its order."""
    root = parse_xml(body, "CompleteMultipartUpload")
    out = []
    for part in root.findall("Part"):
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None:
            raise error("MalformedXML", "each Part needs a PartNumber and an ETag")
        out.append((part_number(number.strip()), etag.strip().strip('"')))
    if not out:
        raise error("MalformedXML", "CompleteMultipartUpload names no part")
    return out


def _chosen(folder: str, wanted: list[tuple[int, str]], max_object: int) -> list[dict]:
    have = parts(folder)
    numbers = [n for n, _ in wanted]
    if numbers != sorted(set(numbers)):
        raise error("InvalidPartOrder", "the parts must be listed in ascending order, once each")
    chosen = []
    for index, (number, etag) in enumerate(wanted):
        meta = have.get(number)
        if meta is None or meta.get("etag") != etag:
            raise error("InvalidPart", f"part {number} was not uploaded with ETag {etag[:40]!r}")
        if index < len(wanted) - 1 and meta["size"] < MIN_PART:
            raise error("EntityTooSmall", f"part {number} is under 5 MiB and not the last")
        chosen.append({**meta, "number": number})
    if sum(m["size"] for m in chosen) > max_object:
        raise error("EntityTooLarge", f"the object would be over {max_object} bytes")
    return chosen


def complete(
    store: ObjectStore,
    uid: int,
    bucket: str,
    key: str,
    upload_id: str,
    body: bytes,
    max_object: int,
) -> str:
    """Join the parts Complete names into the object `key`; its ETag."""
    folder = upload_of(store, uid, bucket, key, upload_id)
    chosen = _chosen(folder, requested_parts(body), max_object)
    target = store.new_incoming()
    try:
        with open(target, "wb") as out:
            for meta in chosen:
                _append(os.path.join(folder, str(meta["number"])), out, meta["size"])
        md5s = b"".join(bytes.fromhex(m["etag"]) for m in chosen)
        etag = f"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"
        upload = _read_json(os.path.join(folder, "upload.json")) or {}
        size = sum(m["size"] for m in chosen)
        meta = {"size": size, "etag": etag, "type": upload.get("type"), "user": upload.get("user")}
        store.put(uid, bucket, key, target, meta)
    finally:
        if os.path.exists(target):
            os.unlink(target)
    shutil.rmtree(folder, ignore_errors=True)
    return etag


def _append(source: str, out: Any, size: int) -> None:
    with open(source, "rb") as src:
        left = size
        while left > 0:
            try:
                copied = os.copy_file_range(src.fileno(), out.fileno(), left)
            except OSError:  # another filesystem, or no copy_file_range: copy through memory
                src.seek(size - left)
                shutil.copyfileobj(src, out, 2**20)
                return
            if copied == 0:
                raise error("InvalidPart", "a part is shorter than it was")
            left -= copied


def abort(store: ObjectStore, uid: int, bucket: str, key: str, upload_id: str) -> None:
    shutil.rmtree(upload_of(store, uid, bucket, key, upload_id), ignore_errors=True)
