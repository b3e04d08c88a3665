"""Multipart uploads of the S3 endpoint: create, parts, list parts, complete, abort.

Pure and blocking (worker threads). S3's rules: part numbers 1-10000; a part sent again
replaces the earlier one; Complete names the parts in ascending order (`InvalidPartOrder`),
each with the ETag it was answered (`InvalidPart`), every part but the last at least 5 MiB
(`EntityTooSmall`), the whole at most `max_object` (`EntityTooLarge`); the object's ETag is
the MD5 of the parts' MD5s, a dash and their number. Parts are written in place (`slot`):
parts of one size into one sparse file at their offsets, so the usual upload (equal parts, a
shorter last one) is the object once the last part is copied in (`os.copy_file_range`), and
Complete takes seconds, not a copy of the whole object (clients time out after 60 s). A part
sent twice at the same time may mix its two bodies; clients do not do that.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
from typing import Any

from econe.s3_sink import Received
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


def slot(folder: str, number: int, size: int | None) -> tuple[str, int]:
    """Where part `number` of `size` bytes is written: at (number - 1) * size of the upload's
    file for parts of that size, so that uniform parts (what every client sends) are already
    the object once they are all there; a part of unknown size gets a file of its own. The
    part's earlier record goes first: a part being replaced is absent until it is complete."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(folder, f"{number}.json"))
    if size:
        return os.path.join(folder, f"data-{size}"), (number - 1) * size
    return os.path.join(folder, f"part-{number}-{secrets.token_hex(4)}"), 0


def put_part(folder: str, number: int, received: Received) -> None:
    """Record part `number`, received in place (`slot`)."""
    if os.path.dirname(received.path) != folder:
        raise error("InvalidRequest", "the part was not received for this upload")
    meta = {"etag": received.md5, "size": received.size, "file": os.path.basename(received.path),
            "offset": received.offset, "modified": time.time()}  # fmt: skip
    _write_json(os.path.join(folder, f"{number}.json"), meta)


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
    target = _assemble(folder, chosen)
    md5s = b"".join(bytes.fromhex(m["etag"]) for m in chosen)
    etag = f"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"
    upload = _read_json(os.path.join(folder, "upload.json")) or {}
    size = sum(m["size"] for m in chosen)
    meta = {"size": size, "etag": etag, "type": upload.get("type"), "user": upload.get("user")}
    store.put(uid, bucket, key, target, meta)
    shutil.rmtree(folder, ignore_errors=True)
    return etag


def _assemble(folder: str, chosen: list[dict[str, Any]]) -> str:
    """The file of the whole object, in `folder`: the first part's file when every chosen part
    it holds is already where the object needs it (then only the others, normally just the
    shorter last part, are copied in); else a new file the parts are copied into."""
    first = chosen[0]
    target = os.path.join(folder, first["file"])
    places, pos = [], 0
    for meta in chosen:
        places.append(pos)
        pos += meta["size"]
    pairs = list(zip(chosen, places, strict=True))
    in_place = all(m["offset"] == at for m, at in pairs if m["file"] == first["file"])
    if not in_place:
        target = os.path.join(folder, f"object-{secrets.token_hex(4)}")
    with open(target, "r+b" if in_place else "wb") as out:
        for meta, at in pairs:
            if not (in_place and meta["file"] == first["file"]):
                _copy(os.path.join(folder, meta["file"]), meta["offset"], out, at, meta["size"])
        out.truncate(pos)
    return target


def _copy(source: str, offset: int, out: Any, at: int, size: int) -> None:
    """`size` bytes of `source` from `offset` to `out` at `at`, in the kernel when it can."""
    with open(source, "rb") as src:
        done = 0
        while done < size:
            try:
                n = os.copy_file_range(src.fileno(), out.fileno(), size - done,
                                       offset + done, at + done)  # fmt: skip
            except OSError:  # no copy_file_range here: through memory
                n = os.pwrite(out.fileno(), os.pread(src.fileno(), min(size - done, 2**20),
                                                     offset + done), at + done)  # fmt: skip
            if n == 0:
                raise error("InvalidPart", "a part is shorter than it was")
            done += n


def abort(store: ObjectStore, uid: int, bucket: str, key: str, upload_id: str) -> None:
    shutil.rmtree(upload_of(store, uid, bucket, key, upload_id), ignore_errors=True)
