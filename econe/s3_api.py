"""The S3 operations econe serves, on an `ObjectStore`, for a verified caller.

Pure and blocking (worker threads). `route` names the operation of a path-style request
(`/<bucket>[/<key>]` plus its sub-resource query); each operation takes an `S3Call` and
answers an `Answer` (status, headers, a small body, or a file range to stream). Bodies of
PutObject/UploadPart were already received into a file (`econe.s3_sink`); the operation only
renames it into place. Everything is per user: another user's bucket is `NoSuchBucket`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from econe import s3_listing, s3_multipart
from econe.request import HttpRequest
from econe.s3_sink import Received
from econe.s3_store import ObjectStore
from econe.s3_wire import (
    NS,
    check_key,
    document,
    element,
    error,
    http_date,
    list_buckets,
    location,
    parse_range,
    parse_xml,
    quoted,
)

MAX_PART = 5 * 2**30
MAX_META = 2048  # bytes of x-amz-meta-* headers (S3's limit)


@dataclass(frozen=True)
class S3Call:
    http: HttpRequest
    bucket: str | None
    key: str | None
    args: dict[str, str]
    uid: int
    owner: str
    store: ObjectStore
    region: str = "one"
    max_object: int = 64 * 2**30
    received: Received | None = None


@dataclass
class Answer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: tuple[Any, int, int] | None = None  # open file, first byte, length


def split_path(path: str) -> tuple[str | None, str | None]:
    """(bucket, key) of a raw path-style path; None for what it does not name."""
    bucket, _, key = path.lstrip("/").partition("/")
    try:
        bucket, key = unquote(bucket, errors="strict"), unquote(key, errors="strict")
    except UnicodeDecodeError:
        raise error("InvalidArgument", "the path is not UTF-8") from None
    return (bucket or None), (key or None)


def args_of(query: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(query, keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise error("InvalidArgument", "the query is not valid UTF-8") from None


def is_s3(method: str, path: str, query: str, authorization: str) -> bool:
    """Path style: `/<bucket>[/<key>]` is S3; `/` is EC2 unless it is a GET without an
    Action signed for service s3 (ListBuckets)."""
    if path not in ("", "/"):
        return True
    scope = authorization + unquote(query)
    return method.upper() == "GET" and "Action=" not in query and "/s3/aws4_request" in scope


def streams_body(method: str, path: str, copy_source: bool) -> bool:
    """True for the requests whose body is an object or a part (PUT of a key)."""
    bucket, key = split_path(path)
    return method.upper() == "PUT" and bool(bucket) and bool(key) and not copy_source


def route(method: str, bucket: str | None, key: str | None, args: dict[str, str]) -> str:
    """The operation's name; `MethodNotAllowed`/`NotImplemented` for what econe does not do."""
    method = method.upper()
    if bucket is None:
        return _pick(method, {"GET": "ListBuckets"})
    if key is None:
        for sub in ("acl", "policy", "versioning", "cors", "tagging", "lifecycle", "website"):
            if sub in args:
                raise error("NotImplemented", f"the {sub} sub-resource is not implemented")
        if method == "GET" and "location" in args:
            return "GetBucketLocation"
        if method == "GET":
            return "ListObjectsV2" if args.get("list-type") == "2" else "ListObjects"
        if method == "POST" and "delete" in args:
            return "DeleteObjects"
        table = {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
        return _pick(method, table)
    if "uploadId" in args:
        table = {"PUT": "UploadPart", "GET": "ListParts", "POST": "CompleteMultipartUpload",
                 "DELETE": "AbortMultipartUpload"}  # fmt: skip
        return _pick(method, table)
    if method == "POST" and "uploads" in args:
        return "CreateMultipartUpload"
    table = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return _pick(method, table)


def _pick(method: str, table: dict[str, str]) -> str:
    if method not in table:
        raise error("MethodNotAllowed", f"{method[:10]} is not allowed on this resource")
    return table[method]


# --- buckets -------------------------------------------------------------------------------


def list_buckets_(call: S3Call) -> Answer:
    return Answer(body=list_buckets(call.store.buckets(call.uid), call.owner))


def create_bucket(call: S3Call) -> Answer:
    call.store.create_bucket(call.uid, _bucket(call))
    return Answer(headers=[("Location", f"/{call.bucket}")])


def head_bucket(call: S3Call) -> Answer:
    call.store.existing(call.uid, _bucket(call))
    return Answer(headers=[("x-amz-bucket-region", call.region)])


def delete_bucket(call: S3Call) -> Answer:
    call.store.delete_bucket(call.uid, _bucket(call))
    return Answer(status=204)


def bucket_location(call: S3Call) -> Answer:
    call.store.existing(call.uid, _bucket(call))
    return Answer(body=location(call.region))


def list_objects(call: S3Call, v2: bool) -> Answer:
    args = call.args
    limit = s3_listing.max_keys(args.get("max-keys"))
    if v2:
        token = args.get("continuation-token")
        after = s3_listing.untoken(token) if token is not None else args.get("start-after", "")
    else:
        after = args.get("marker", "")
    objects = call.store.keys(call.uid, _bucket(call))
    page = s3_listing.select(objects, args.get("prefix", ""), args.get("delimiter", ""), after,
                             limit)  # fmt: skip
    return Answer(body=s3_listing.render(_bucket(call), page, args, limit, v2))


def delete_objects(call: S3Call) -> Answer:
    root = parse_xml(call.http.body, "Delete")
    keys = [o.findtext("Key") or "" for o in root.findall("Object")]
    if len(keys) > 1000:
        raise error("MalformedXML", "at most 1000 keys at once")
    for key in keys:  # every key judged before any is deleted
        check_key(key)
    done = []
    for key in keys:
        call.store.delete(call.uid, _bucket(call), key)
        done.append(f"<Deleted>{element('Key', key)}</Deleted>")
    quiet = (root.findtext("Quiet") or "").strip() == "true"
    body = "" if quiet else "".join(done)
    return Answer(body=document(f'<DeleteResult xmlns="{NS}">{body}</DeleteResult>'))


# --- objects -------------------------------------------------------------------------------


def put_object(call: S3Call) -> Answer:
    received = _received(call)
    meta = {"size": received.size, "etag": received.md5, **_metadata(call.http)}
    call.store.put(call.uid, _bucket(call), _key(call), received.path, meta)
    return Answer(headers=[("ETag", quoted(received.md5))])


def get_object(call: S3Call, head: bool = False) -> Answer:
    f, meta = call.store.open(call.uid, _bucket(call), _key(call))
    size = int(meta["size"])
    headers = [
        ("ETag", quoted(meta["etag"])),
        ("Last-Modified", http_date(meta["modified"])),
        ("Content-Type", meta.get("type") or "binary/octet-stream"),
        ("Accept-Ranges", "bytes"),
        *((f"x-amz-meta-{k}", v) for k, v in (meta.get("user") or {}).items()),
    ]
    try:
        span = None if head else parse_range(call.http.header("range"), size)
    except Exception:
        f.close()
        raise
    if head:
        f.close()
        return Answer(headers=[*headers, ("Content-Length", str(size))])
    if span is None:
        return Answer(headers=headers, file=(f, 0, size))
    first, last = span
    headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    return Answer(status=206, headers=headers, file=(f, first, last - first + 1))


def delete_object(call: S3Call) -> Answer:
    call.store.delete(call.uid, _bucket(call), _key(call))
    return Answer(status=204)


# --- multipart -----------------------------------------------------------------------------


def create_upload(call: S3Call) -> Answer:
    upload_id = s3_multipart.create(call.store, call.uid, _bucket(call), _key(call),
                                    _metadata(call.http))  # fmt: skip
    body = (f'<InitiateMultipartUploadResult xmlns="{NS}">{element("Bucket", call.bucket)}'
            f'{element("Key", call.key)}{element("UploadId", upload_id)}'
            "</InitiateMultipartUploadResult>")  # fmt: skip
    return Answer(body=document(body))


def upload_part(call: S3Call) -> Answer:
    number = s3_multipart.part_number(call.args.get("partNumber"))
    received = _received(call)
    s3_multipart.put_part(_upload(call), number, received)
    return Answer(headers=[("ETag", quoted(received.md5))])


def list_parts(call: S3Call) -> Answer:
    folder = _upload(call)
    items = "".join(
        f"<Part>{element('PartNumber', n)}{element('ETag', quoted(m['etag']))}"
        f"{element('Size', m['size'])}</Part>"
        for n, m in s3_multipart.parts(folder).items()
    )
    head = (
        element("Bucket", call.bucket)
        + element("Key", call.key)
        + element("UploadId", call.args["uploadId"])
        + "<IsTruncated>false</IsTruncated>"
    )
    return Answer(body=document(f'<ListPartsResult xmlns="{NS}">{head}{items}</ListPartsResult>'))


def complete_upload(call: S3Call) -> Answer:
    etag = s3_multipart.complete(
        call.store,
        call.uid,
        _bucket(call),
        _key(call),
        call.args["uploadId"],
        call.http.body,
        call.max_object,
    )
    body = (f'<CompleteMultipartUploadResult xmlns="{NS}">'
            f'{element("Location", f"/{call.bucket}/{call.key}")}{element("Bucket", call.bucket)}'
            f'{element("Key", call.key)}{element("ETag", quoted(etag))}'
            "</CompleteMultipartUploadResult>")  # fmt: skip
    return Answer(body=document(body))


def abort_upload(call: S3Call) -> Answer:
    s3_multipart.abort(call.store, call.uid, _bucket(call), _key(call), call.args["uploadId"])
    return Answer(status=204)


def _upload(call: S3Call) -> str:
    return s3_multipart.upload_of(call.store, call.uid, _bucket(call), _key(call),
                                  call.args["uploadId"])  # fmt: skip


def _bucket(call: S3Call) -> str:
    assert call.bucket is not None  # route gave a bucket operation
    return call.bucket


def _key(call: S3Call) -> str:
    assert call.key is not None
    return call.key


def _received(call: S3Call) -> Received:
    if call.received is None:
        raise error("IncompleteBody", "the request has no body")
    return call.received


def _metadata(http: HttpRequest) -> dict[str, Any]:
    user = {k.lower()[11:]: v for k, v in http.headers if k.lower().startswith("x-amz-meta-")}
    if sum(len(k) + len(v) for k, v in user.items()) > MAX_META:
        raise error("MetadataTooLarge", f"x-amz-meta-* headers are over {MAX_META} bytes")
    return {"type": http.header("content-type"), "user": user}


OPERATIONS: dict[str, Callable[[S3Call], Answer]] = {
    "ListBuckets": list_buckets_,
    "CreateBucket": create_bucket,
    "HeadBucket": head_bucket,
    "DeleteBucket": delete_bucket,
    "GetBucketLocation": bucket_location,
    "ListObjects": lambda call: list_objects(call, False),
    "ListObjectsV2": lambda call: list_objects(call, True),
    "DeleteObjects": delete_objects,
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": lambda call: get_object(call, head=True),
    "DeleteObject": delete_object,
    "CreateMultipartUpload": create_upload,
    "UploadPart": upload_part,
    "ListParts": list_parts,
    "CompleteMultipartUpload": complete_upload,
    "AbortMultipartUpload": abort_upload,
}
