"""The S3 endpoint's objects on disk: one folder per user (uid) and bucket under `s3_dir`.

Pure and blocking (called on worker threads). A key never becomes a file name: an object is
`<uid>/<bucket>/objects/<sha256 of the key>` with a JSON sidecar (`….json`: key, size, ETag,
time, content type) that is the index, read once per bucket and then kept in memory (one
econe-server owns an `s3_dir`). Uploads arrive in `.incoming/` and are renamed into place, so
a reader sees the old object or the new one, never half of one. Bucket names are per user:
alice's `images` and bob's `images` are two buckets.

    <s3_dir>/.incoming/<random>                      bodies being received
    <s3_dir>/<uid>/<bucket>/bucket.json              {"created": epoch}
    <s3_dir>/<uid>/<bucket>/objects/<hex>[.json]     an object and its sidecar
    <s3_dir>/<uid>/<bucket>/uploads/<id>/upload.json a multipart upload (key, type, started)
    <s3_dir>/<uid>/<bucket>/uploads/<id>/<n>[.json]  its parts
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from typing import Any

from econe.s3_wire import check_bucket, check_key, error

INCOMING = ".incoming"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _write_json(path: str, data: dict[str, Any]) -> None:
    """Written whole beside `path`, then renamed over it."""
    part = f"{path}.{secrets.token_hex(4)}.tmp"
    with open(part, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(part, path)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def locate(root: str, uid: int, bucket: str, key: str) -> str:
    """The file of `key` in `uid`'s `bucket` under `root`, without loading the bucket's index
    (RegisterImage); `NoSuchBucket`/`NoSuchKey` when it is not there."""
    folder = os.path.join(root, str(int(uid)), check_bucket(bucket))
    if not os.path.isfile(os.path.join(folder, "bucket.json")):
        raise error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
    data = os.path.join(folder, "objects", _digest(check_key(key)))
    meta = _read_json(data + ".json")
    if meta is None or meta.get("key") != key or not os.path.isfile(data):
        raise error("NoSuchKey", f"the key {key[:100]!r} does not exist")
    return data


class ObjectStore:
    """Buckets and objects of every user; thread-safe."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.RLock()
        self._index: dict[str, dict[str, dict[str, Any]]] = {}  # bucket dir -> key -> meta
        os.makedirs(self.incoming, mode=0o700, exist_ok=True)
        for name in os.listdir(self.incoming):  # bodies a stopped econe-server was receiving
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.incoming, name))

    @property
    def incoming(self) -> str:
        return os.path.join(self.root, INCOMING)

    def new_incoming(self) -> str:
        """A fresh file name for a body being received."""
        return os.path.join(self.incoming, secrets.token_hex(16))

    # --- buckets --------------------------------------------------------------------------

    def bucket_dir(self, uid: int, bucket: str) -> str:
        return os.path.join(self.root, str(int(uid)), check_bucket(bucket))

    def existing(self, uid: int, bucket: str) -> str:
        path = self.bucket_dir(uid, bucket)
        if not os.path.isfile(os.path.join(path, "bucket.json")):
            raise error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
        return path

    def buckets(self, uid: int) -> list[tuple[str, float]]:
        base = os.path.join(self.root, str(int(uid)))
        found = []
        for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            meta = _read_json(os.path.join(base, name, "bucket.json"))
            if meta is not None:
                found.append((name, float(meta.get("created", 0))))
        return found

    def create_bucket(self, uid: int, bucket: str) -> None:
        path = self.bucket_dir(uid, bucket)
        with self._lock:
            if os.path.isfile(os.path.join(path, "bucket.json")):
                raise error("BucketAlreadyOwnedByYou", f"you already own the bucket {bucket!r}")
            for sub in ("objects", "uploads"):
                os.makedirs(os.path.join(path, sub), mode=0o750, exist_ok=True)
            _write_json(os.path.join(path, "bucket.json"), {"created": time.time()})

    def delete_bucket(self, uid: int, bucket: str) -> None:
        with self._lock:
            path = self.existing(uid, bucket)
            if self._objects(path):
                raise error("BucketNotEmpty", f"the bucket {bucket!r} is not empty")
            os.unlink(os.path.join(path, "bucket.json"))  # gone for readers from here on
            self._index.pop(path, None)
            shutil.rmtree(path, ignore_errors=True)  # and with it unfinished uploads

    # --- objects --------------------------------------------------------------------------

    def _objects(self, path: str) -> dict[str, dict[str, Any]]:
        """The bucket's index, read from the sidecars at first use."""
        index = self._index.get(path)
        if index is None:
            index = {}
            folder = os.path.join(path, "objects")
            for name in os.listdir(folder):
                if name.endswith(".json") and len(name) == 69:
                    meta = _read_json(os.path.join(folder, name))
                    if meta is not None and isinstance(meta.get("key"), str):
                        index[meta["key"]] = meta
            self._index[path] = index
        return index

    def object_path(self, uid: int, bucket: str, key: str) -> str:
        """Where the object's bytes are (whether or not it exists)."""
        return os.path.join(self.bucket_dir(uid, bucket), "objects", _digest(check_key(key)))

    def meta(self, uid: int, bucket: str, key: str) -> dict[str, Any]:
        with self._lock:
            found = self._objects(self.existing(uid, bucket)).get(check_key(key))
        if found is None:
            raise error("NoSuchKey", "the key does not exist")
        return found

    def open(self, uid: int, bucket: str, key: str) -> tuple[Any, dict[str, Any]]:
        """The object's bytes (an open file) and its meta, of one and the same version."""
        with self._lock:
            meta = self.meta(uid, bucket, key)
            return open(self.object_path(uid, bucket, key), "rb"), meta

    def put(self, uid: int, bucket: str, key: str, source: str, meta: dict[str, Any]) -> None:
        """Move the received file `source` into place as `key`, with its `meta`."""
        check_key(key)
        with self._lock:
            path = self.existing(uid, bucket)
            data = os.path.join(path, "objects", _digest(key))
            os.replace(source, data)
            entry = {**meta, "key": key, "modified": time.time()}
            _write_json(data + ".json", entry)
            self._objects(path)[key] = entry

    def delete(self, uid: int, bucket: str, key: str) -> None:
        """Delete `key` (nothing to do when it is not there, as S3)."""
        check_key(key)
        with self._lock:
            path = self.existing(uid, bucket)
            data = os.path.join(path, "objects", _digest(key))
            for name in (data + ".json", data):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
            self._objects(path).pop(key, None)

    def keys(self, uid: int, bucket: str) -> list[dict[str, Any]]:
        """Every object's meta, sorted by key (UTF-8 byte order is code point order)."""
        with self._lock:
            index = self._objects(self.existing(uid, bucket))
            return [index[k] for k in sorted(index)]
