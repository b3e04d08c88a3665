"""The S3 endpoint's pure parts: aws-chunked decoding and chunk signatures, names and keys,
ranges, listings, routing, the object store and multipart rules, and the upload sink."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import zlib

import pytest

from econe import s3_api, s3_listing, s3_multipart
from econe.errors import Ec2Error
from econe.s3_chunked import AwsChunked, ChunkSignatures, checksum_of
from econe.s3_sink import HIGH, LOW, Expected, Received, Upload
from econe.s3_store import ObjectStore, locate
from econe.s3_wire import check_bucket, check_key, parse_range

KEY = b"k" * 32
SCOPE = "20261202/one/s3/aws4_request"
STAMP = "20261202T050000Z"


def code_of(call) -> str:
    with pytest.raises(Ec2Error) as info:
        call()
    return info.value.code


def chunked(pieces: list[bytes], trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return body + b"0\r\n" + trailer + b"\r\n"


def test_aws_chunked_decodes_whatever_way_the_bytes_are_split():
    pieces = [b"a" * 1000, b"b" * 3, b"c" * 70000]
    crc = base64.b64encode(zlib.crc32(b"".join(pieces)).to_bytes(4, "big"))
    body = chunked(pieces, b"x-amz-checksum-crc32:" + crc + b"\r\n")
    for step in (1, 7, 4096, len(body)):
        decoder = AwsChunked()
        out = b"".join(
            bytes(p) for i in range(0, len(body), step) for p in decoder.feed(body[i : i + step])
        )
        assert out == b"".join(pieces)
        assert decoder.finish() == {"x-amz-checksum-crc32": crc.decode()}


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nab\r\n0\r\n\r\n", b"2\r\nabX\r\n0\r\n\r\n", b"2\nab\r\n0\r\n\r\n", b"2\r\nab\r\n"],
)
def test_malformed_or_short_aws_chunked_bodies_are_incomplete_body(body):
    decoder = AwsChunked()
    assert code_of(lambda: (decoder.feed(body), decoder.finish())) == "IncompleteBody"


def signed_body(pieces: list[bytes], seed: str, forge: int = -1) -> bytes:
    chain = ChunkSignatures(KEY, STAMP, SCOPE, seed)
    out = b""
    for index, piece in enumerate([*pieces, b""]):
        hashes = [hashlib.sha256(b"").hexdigest(), hashlib.sha256(piece).hexdigest()]
        text = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", STAMP, SCOPE, chain.previous, *hashes])
        signature = hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()
        chain.previous = signature
        sent = "0" * 64 if index == forge else signature
        out += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(piece), sent.encode(), piece)
    return out


def test_chunk_signatures_chain_from_the_requests_and_a_forged_one_is_refused():
    pieces = [os.urandom(100), os.urandom(50)]
    good = AwsChunked(ChunkSignatures(KEY, STAMP, SCOPE, "f" * 64))
    assert b"".join(bytes(p) for p in good.feed(signed_body(pieces, "f" * 64))) == b"".join(pieces)
    good.finish()
    for forge in (0, 1, 2):
        bad = AwsChunked(ChunkSignatures(KEY, STAMP, SCOPE, "f" * 64))
        body = signed_body(pieces, "f" * 64, forge)
        assert code_of(lambda b=bad, x=body: b.feed(x)) == "SignatureDoesNotMatch"
    unsigned = AwsChunked(ChunkSignatures(KEY, STAMP, SCOPE, "f" * 64))
    assert code_of(lambda: unsigned.feed(chunked(pieces))) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("name", ["ab", "A-b", "-ab", "ab-", "a..b", "1.2.3.4", "a_b", "a" * 64])
def test_bad_bucket_names_are_invalid_bucket_name(name):
    assert code_of(lambda: check_bucket(name)) == "InvalidBucketName"


@pytest.mark.parametrize(
    "key,code",
    [("", "InvalidArgument"), ("/abs", "InvalidArgument"), ("a/../b", "InvalidArgument"),
     ("..", "InvalidArgument"), ("a/./b", "InvalidArgument"), ("nul\0", "InvalidArgument"),
     ("line\nfeed", "InvalidArgument"), ("x" * 1025, "KeyTooLongError"),
     ("é" * 513, "KeyTooLongError")],
)  # fmt: skip
def test_hostile_keys_are_refused(key, code):
    assert code_of(lambda: check_key(key)) == code


def test_ranges_as_s3_reads_them():
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-1000", 100) == (0, 99)
    assert parse_range("bytes=50-1000", 100) == (50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None  # several: the whole object
    assert parse_range("items=0-1", 100) is None
    assert code_of(lambda: parse_range("bytes=100-", 100)) == "InvalidRange"
    assert code_of(lambda: parse_range("bytes=-5", 0)) == "InvalidRange"


def metas(*keys: str) -> list[dict]:
    return [{"key": k} for k in sorted(keys)]


def test_listing_rolls_up_common_prefixes_and_pages_after_them():
    objects = metas("a/1", "a/2", "b/x/1", "c", "d")
    page = s3_listing.select(objects, "", "/", "", 2)
    assert page.prefixes == ["a/", "b/"] and page.contents == [] and page.truncated
    page = s3_listing.select(objects, "", "/", page.last, 2)
    assert [m["key"] for m in page.contents] == ["c", "d"] and not page.truncated
    page = s3_listing.select(objects, "b/", "/", "", 10)
    assert page.prefixes == ["b/x/"]
    assert s3_listing.untoken(s3_listing.token("a/é")) == "a/é"
    assert code_of(lambda: s3_listing.untoken("%%%")) == "InvalidArgument"
    assert code_of(lambda: s3_listing.max_keys("-1")) == "InvalidArgument"


@pytest.mark.parametrize(
    "method,path,query,operation",
    [("GET", "/", "", "ListBuckets"), ("PUT", "/b", "", "CreateBucket"),
     ("GET", "/b", "list-type=2", "ListObjectsV2"), ("GET", "/b", "", "ListObjects"),
     ("POST", "/b", "delete", "DeleteObjects"), ("PUT", "/b/k", "", "PutObject"),
     ("PUT", "/b/k", "partNumber=1&uploadId=x", "UploadPart"),
     ("POST", "/b/k", "uploads", "CreateMultipartUpload"),
     ("POST", "/b/k", "uploadId=x", "CompleteMultipartUpload"),
     ("DELETE", "/b/k", "uploadId=x", "AbortMultipartUpload"), ("HEAD", "/b/k", "", "HeadObject")],
)  # fmt: skip
def test_routes(method, path, query, operation):
    bucket, key = s3_api.split_path(path)
    assert s3_api.route(method, bucket, key, s3_api.args_of(query)) == operation


def test_routing_refusals_and_the_ec2_s3_split():
    assert code_of(lambda: s3_api.route("POST", "b", "k", {})) == "MethodNotAllowed"
    assert code_of(lambda: s3_api.route("GET", "b", None, {"acl": ""})) == "NotImplemented"
    assert s3_api.is_s3(
        "GET", "/", "", "AWS4-HMAC-SHA256 Credential=a/20261202/one/s3/aws4_request"
    )
    assert not s3_api.is_s3("GET", "/", "Action=DescribeRegions", "")
    assert not s3_api.is_s3("POST", "/", "", "x/one/s3/aws4_request")
    assert s3_api.is_s3("GET", "/bucket", "", "")


def test_the_store_keeps_users_apart_and_never_names_files_after_keys(tmp_path):
    store = ObjectStore(str(tmp_path))
    store.create_bucket(1, "images")
    store.create_bucket(2, "images")  # per user
    assert code_of(lambda: store.create_bucket(1, "images")) == "BucketAlreadyOwnedByYou"
    source = store.new_incoming()
    with open(source, "wb") as f:
        f.write(b"data")
    store.put(1, "images", "dir/image.raw", source, {"size": 4, "etag": "e"})
    assert store.meta(1, "images", "dir/image.raw")["size"] == 4
    assert code_of(lambda: store.meta(2, "images", "dir/image.raw")) == "NoSuchKey"
    assert code_of(lambda: store.meta(3, "images", "x")) == "NoSuchBucket"
    names = [n for _, _, files in os.walk(tmp_path) for n in files]
    assert not any("image" in n for n in names)
    path = locate(str(tmp_path), 1, "images", "dir/image.raw")
    with open(path, "rb") as f:
        assert f.read() == b"data"
    assert code_of(lambda: locate(str(tmp_path), 2, "images", "dir/image.raw")) == "NoSuchKey"
    assert code_of(lambda: store.delete_bucket(1, "images")) == "BucketNotEmpty"
    store.delete(1, "images", "dir/image.raw")
    assert ObjectStore(str(tmp_path)).keys(1, "images") == []  # the sidecars are the index
    store.delete_bucket(1, "images")
    assert store.buckets(1) == [] and [b for b, _ in store.buckets(2)] == ["images"]
    with open(store.new_incoming(), "wb") as f:
        f.write(b"half a body")  # econe-server stopped while receiving it
    assert os.listdir(ObjectStore(str(tmp_path)).incoming) == []


def put_part(folder: str, number: int, data: bytes, size: int | None = -1) -> None:
    """What an UploadPart does: the part written at its slot, then recorded."""
    path, offset = s3_multipart.slot(folder, number, len(data) if size == -1 else size)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o640), "wb") as f:
        f.seek(offset)
        f.write(data)
    md5 = hashlib.md5(data).hexdigest()
    s3_multipart.put_part(folder, number, Received(len(data), md5, path, offset, True))


def complete_upload(store: ObjectStore, key: str, parts: list[bytes], sizes: list) -> bytes:
    upload = s3_multipart.create(store, 1, "bkt", key, {"type": None, "user": {}})
    folder = s3_multipart.upload_of(store, 1, "bkt", key, upload)
    for number, (data, size) in enumerate(zip(parts, sizes, strict=True), 1):
        put_part(folder, number, data, size)
    items = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{hashlib.md5(p).hexdigest()}</ETag></Part>"
        for n, p in enumerate(parts, 1)
    )
    body = f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()
    s3_multipart.complete(store, 1, "bkt", key, upload, body, 2**30)
    with open(store.object_path(1, "bkt", key), "rb") as f:
        return f.read()


def test_parts_written_in_place_or_apart_make_the_same_object(tmp_path):
    store = ObjectStore(str(tmp_path))
    store.create_bucket(1, "bkt")
    big = s3_multipart.MIN_PART
    parts = [os.urandom(big), os.urandom(big), os.urandom(10)]
    assert complete_upload(store, "uniform", parts, [-1, -1, -1]) == b"".join(parts)
    odd = [os.urandom(big + 1), os.urandom(big), os.urandom(7)]  # three sizes: copied together
    assert complete_upload(store, "odd", odd, [-1, -1, -1]) == b"".join(odd)
    unknown = [os.urandom(big), os.urandom(3)]  # sizes not announced: files of their own
    assert complete_upload(store, "unknown", unknown, [None, None]) == b"".join(unknown)
    assert os.listdir(tmp_path / "1" / "bkt" / "uploads") == []


def test_multipart_complete_checks_order_etags_and_sizes(tmp_path):
    store = ObjectStore(str(tmp_path))
    store.create_bucket(1, "bkt")
    upload = s3_multipart.create(store, 1, "bkt", "k", {"type": None, "user": {}})
    folder = s3_multipart.upload_of(store, 1, "bkt", "k", upload)
    parts = [os.urandom(s3_multipart.MIN_PART), b"tail"]
    for number, data in enumerate(parts, 1):
        put_part(folder, number, data)
    etags = [hashlib.md5(p).hexdigest() for p in parts]

    def doc(*pairs):
        items = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>"
                        for n, e in pairs)  # fmt: skip
        return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()

    complete = lambda body, limit=2**30: s3_multipart.complete(store, 1, "bkt", "k", upload,  # noqa: E731
                                                               body, limit)  # fmt: skip
    assert code_of(lambda: complete(doc((2, etags[1]), (1, etags[0])))) == "InvalidPartOrder"
    assert code_of(lambda: complete(doc((1, etags[1]), (2, etags[1])))) == "InvalidPart"
    assert code_of(lambda: complete(doc((1, etags[0]), (2, etags[1])), 10)) == "EntityTooLarge"
    assert code_of(lambda: complete(b"<nope")) == "MalformedXML"
    assert code_of(lambda: s3_multipart.upload_of(store, 1, "bkt", "k", "../../x" * 5)) == (
        "NoSuchUpload")  # fmt: skip
    etag = complete(doc((1, etags[0]), (2, etags[1])))
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert etag == f"{digest}-2"
    with open(store.object_path(1, "bkt", "k"), "rb") as f:
        assert f.read() == b"".join(parts)
    assert code_of(lambda: s3_multipart.upload_of(store, 1, "bkt", "k", upload)) == "NoSuchUpload"


def receive(tmp_path, expected: Expected, pieces: list[bytes], allow: bool = True) -> Upload:
    done = threading.Event()
    upload = Upload(str(tmp_path / "in"), expected, lambda: None, lambda: None, done.set)
    for piece in pieces:
        upload.feed(piece)
    if allow:
        upload.allow()
    else:
        upload.refuse(Ec2Error("SignatureDoesNotMatch", "forged", 403))
    upload.end()
    assert done.wait(10)
    return upload


def test_the_sink_hashes_what_it_writes_and_checks_every_promise(tmp_path):
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    good = receive(tmp_path, Expected(limit=10**6, sha256=sha), [data[:1000], data[1000:]])
    assert good.error is None and good.result.md5 == hashlib.md5(data).hexdigest()
    with open(good.result.path, "rb") as f:
        assert f.read() == data
    os.unlink(good.result.path)
    bad = receive(tmp_path, Expected(limit=10**6, sha256="0" * 64), [data])
    assert bad.error.code == "XAmzContentSHA256Mismatch" and not os.path.exists(bad.path)
    big = receive(tmp_path, Expected(limit=1000), [data])
    assert big.error.code == "EntityTooLarge" and not os.path.exists(big.path)
    refused = receive(tmp_path, Expected(limit=10**6), [data], allow=False)
    assert refused.error.code == "SignatureDoesNotMatch" and not os.path.exists(refused.path)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    trailer = f"x-amz-checksum-crc32:{crc}\r\n".encode()
    ok = receive(tmp_path, Expected(limit=10**6, chunked=True, checksum="crc32"),
                 [chunked([data], trailer)])  # fmt: skip
    assert ok.error is None
    os.unlink(ok.result.path)
    wrong = receive(tmp_path, Expected(limit=10**6, chunked=True, checksum="crc32"),
                    [chunked([data[1:]], trailer)])  # fmt: skip
    assert wrong.error.code == "BadDigest"
    assert code_of(lambda: checksum_of("crc32c")) == "InvalidRequest"


def test_the_sink_pauses_the_client_past_high_and_resumes_below_low(tmp_path):
    calls: list[str] = []
    done = threading.Event()
    upload = Upload(str(tmp_path / "in"), Expected(limit=2**30), lambda: calls.append("pause"),
                    lambda: calls.append("resume"), done.set)  # fmt: skip
    block = b"x" * 2**20
    for _ in range(HIGH // len(block) + 2):
        upload.feed(block)  # not allowed yet: everything stays queued
    assert calls == ["pause"]
    upload.allow()
    upload.end()
    assert done.wait(10) and calls == ["pause", "resume"] and LOW < HIGH
    os.unlink(upload.result.path)
