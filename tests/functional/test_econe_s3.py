"""econe's S3 endpoint over HTTPS (a self-signed certificate, so botocore sends its
STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies) in front of a real oned (dummy drivers): awscli's
`s3 mb/cp/ls/rm` with multipart forced, boto3's objects, ranges, listings and multipart
uploads, a presigned GET through urllib, RegisterImage of an uploaded object, users kept
apart, hostile keys, a forged chunk signature, the size bound and a slow uploader."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.functional.test_econe_cloud import dummy_cloud, error_of
from tests.functional.test_econe_server import EconeProcess, self_signed
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
USERS = {"alice": "alicepw", "bob": "bobpw"}
MAX_OBJECT = 16 * 2**20
MB = 2**20


class S3Cloud:
    def __init__(self, econe: EconeProcess, tmp: Path) -> None:
        self.econe, self.tmp = econe, tmp
        self.s3_dir = tmp / "s3-objects"

    def s3(self, user: str = "alice", secret: str | None = None, **config):
        return boto3.client(
            "s3",
            endpoint_url=self.econe.url,
            region_name="one",
            aws_access_key_id=user,
            aws_secret_access_key=secret or USERS[user],
            verify=False,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **config),
        )

    def ec2(self, user: str = "alice"):
        return boto3.client(
            "ec2", endpoint_url=self.econe.url, region_name="one", aws_access_key_id=user,
            aws_secret_access_key=USERS[user], verify=False,
        )  # fmt: skip

    def aws(self, *args: str, user: str = "alice") -> subprocess.CompletedProcess:
        env = {
            **os.environ, "AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": USERS[user],
            "AWS_DEFAULT_REGION": "one", "AWS_CONFIG_FILE": str(self.tmp / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": "",
        }  # fmt: skip
        cmd = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", self.econe.url]
        return subprocess.run(
            [*cmd, "--no-verify-ssl", *args], env=env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s3")
    oned, sched = dummy_cloud(tmp, USERS)  # SAFE_DIRS: tmp, which holds econe's s3_dir
    # (oned's own var/ is restricted whatever SAFE_DIRS says of its parents: test_econe_upload
    # puts the default <var>/econe-s3 in SAFE_DIRS, as an operator does)
    try:
        key, cert = self_signed(tmp)
        urllib3.disable_warnings()
        econe = EconeProcess(
            tmp / "one", ssl_cert=str(cert), ssl_key=str(key), one_xmlrpc=oned.endpoint,
            templates_dir=str(ROOT / "templates" / "ec2query"), s3_max_object=MAX_OBJECT,
            s3_dir=str(tmp / "s3-objects"),
        )  # fmt: skip
        keys = econe.location / "etc" / "econe_keys"
        keys.write_text("".join(f"{u} {p}\n" for u, p in USERS.items()))
        econe.start()
        cloud = S3Cloud(econe, tmp)
        for setting, value in (("multipart_threshold", "5MB"), ("multipart_chunksize", "5MB")):
            done = cloud.aws("configure", "set", f"default.s3.{setting}", value)
            assert done.returncode == 0, done.stderr
        yield cloud
        econe.stop()
    finally:
        sched.terminate()
        sched.wait(15)
        oned.stop()


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_awscli_copies_lists_and_removes_and_the_object_becomes_an_ami(cloud):
    image = cloud.tmp / "image.raw"
    data = random_file(image, 12 * MB + 12345)  # 3 parts of 5 MB at most
    assert cloud.aws("s3", "mb", "s3://images").returncode == 0
    done = cloud.aws("s3", "cp", str(image), "s3://images/image.raw")
    assert done.returncode == 0, done.stderr
    head = cloud.s3().head_object(Bucket="images", Key="image.raw")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    listing = cloud.aws("s3", "ls", "s3://images/")
    assert listing.returncode == 0 and "image.raw" in listing.stdout
    assert " images" in cloud.aws("s3", "ls").stdout
    back = cloud.tmp / "back.raw"
    assert cloud.aws("s3", "cp", "s3://images/image.raw", str(back)).returncode == 0
    assert back.read_bytes() == data
    ec2 = cloud.ec2()
    done = cloud.aws("ec2", "register-image", "--image-location", "images/image.raw",
                     "--name", "from-s3", "--output", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    ami = json.loads(done.stdout)["ImageId"]
    state = lambda: ec2.describe_images(ImageIds=[ami])["Images"][0]["State"]  # noqa: E731
    assert wait_for(lambda: state() != "pending", timeout=60) and state() == "available"
    assert cloud.aws("s3", "rm", "s3://images/image.raw").returncode == 0
    assert "image.raw" not in cloud.aws("s3", "ls", "s3://images/").stdout
    missing = {"ImageLocation": "s3://images/image.raw", "Name": "gone"}
    assert error_of(lambda: ec2.register_image(**missing))[1] == 400


def test_boto3_puts_gets_ranges_and_deletes(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="objects")
    body = os.urandom(100_000)
    put = s3.put_object(Bucket="objects", Key="dir/a b+c.bin", Body=body, ContentType="x/y",
                        Metadata={"colour": "blue"})  # fmt: skip
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket="objects", Key="dir/a b+c.bin")
    assert got["Body"].read() == body and got["ContentType"] == "x/y"
    # NOTE: Twisted writes header names capitalised (X-Amz-Meta-Colour); names are
    # case-insensitive in HTTP, botocore keeps what it was sent
    assert {k.lower(): v for k, v in got["Metadata"].items()} == {"colour": "blue"}
    part = s3.get_object(Bucket="objects", Key="dir/a b+c.bin", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20] and part["ContentRange"] == "bytes 10-19/100000"
    tail = s3.get_object(Bucket="objects", Key="dir/a b+c.bin", Range="bytes=-5")
    assert tail["Body"].read() == body[-5:]
    assert error_of(lambda: s3.get_object(Bucket="objects", Key="dir/a b+c.bin",
                                          Range="bytes=200000-"))[1] == 416  # fmt: skip
    assert error_of(lambda: s3.get_object(Bucket="objects", Key="nope")) == ("NoSuchKey", 404)
    assert error_of(lambda: s3.delete_bucket(Bucket="objects")) == ("BucketNotEmpty", 409)
    assert error_of(lambda: s3.create_bucket(Bucket="objects")) == (
        "BucketAlreadyOwnedByYou", 409)  # fmt: skip
    assert error_of(lambda: s3.create_bucket(Bucket="Bad_Name"))[0] == "InvalidBucketName"
    bad = {"Objects": [{"Key": "dir/a b+c.bin"}, {"Key": "../x"}]}
    assert error_of(lambda: s3.delete_objects(Bucket="objects", Delete=bad))[0] == (
        "InvalidArgument")  # fmt: skip
    assert s3.head_object(Bucket="objects", Key="dir/a b+c.bin")["ContentLength"] == 100_000
    s3.delete_object(Bucket="objects", Key="dir/a b+c.bin")
    assert error_of(lambda: s3.head_object(Bucket="objects", Key="dir/a b+c.bin"))[1] == 404
    s3.delete_bucket(Bucket="objects")
    assert error_of(lambda: s3.list_objects_v2(Bucket="objects")) == ("NoSuchBucket", 404)


def test_listings_page_with_prefix_delimiter_and_continuation(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="listing")
    keys = ["a/1", "a/2", "b/1", "c", "d", "e%x", "f+g"]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=b"x")
    page = s3.list_objects_v2(Bucket="listing", Delimiter="/", MaxKeys=3)
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in page["Contents"]] == ["c"] and page["IsTruncated"]
    rest = s3.list_objects_v2(Bucket="listing", Delimiter="/",
                              ContinuationToken=page["NextContinuationToken"])  # fmt: skip
    assert [o["Key"] for o in rest["Contents"]] == ["d", "e%x", "f+g"]
    assert not rest["IsTruncated"]
    only_a = s3.list_objects_v2(Bucket="listing", Prefix="a/")
    assert [o["Key"] for o in only_a["Contents"]] == ["a/1", "a/2"]
    v1 = s3.list_objects(Bucket="listing", Marker="b/1", MaxKeys=2)
    assert [o["Key"] for o in v1["Contents"]] == ["c", "d"] and v1["IsTruncated"]
    every = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(
        Bucket="listing", PaginationConfig={"PageSize": 2}) for o in p["Contents"]]  # fmt: skip
    assert every == keys


def test_boto3_multipart_upload_and_its_rules(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="parts")
    one, two = os.urandom(5 * MB), os.urandom(1000)
    up = s3.create_multipart_upload(Bucket="parts", Key="big")["UploadId"]
    e1 = s3.upload_part(Bucket="parts", Key="big", UploadId=up, PartNumber=1, Body=one)["ETag"]
    e2 = s3.upload_part(Bucket="parts", Key="big", UploadId=up, PartNumber=2, Body=two)["ETag"]
    listed = s3.list_parts(Bucket="parts", Key="big", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MB), (2, 1000)]
    done = lambda parts: s3.complete_multipart_upload(  # noqa: E731
        Bucket="parts", Key="big", UploadId=up, MultipartUpload={"Parts": parts}
    )
    p1, p2 = {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}
    assert error_of(lambda: done([p2, p1])) == ("InvalidPartOrder", 400)
    assert error_of(lambda: done([p1, {"PartNumber": 2, "ETag": e1}])) == ("InvalidPart", 400)
    assert error_of(lambda: done([p1, {"PartNumber": 3, "ETag": e2}]))[0] == "InvalidPart"
    etag = done([p1, p2])["ETag"]
    md5s = hashlib.md5(one).digest() + hashlib.md5(two).digest()
    assert etag == f'"{hashlib.md5(md5s).hexdigest()}-2"'
    assert s3.get_object(Bucket="parts", Key="big")["Body"].read() == one + two
    assert error_of(lambda: done([p1, p2])) == ("NoSuchUpload", 404)
    small = s3.create_multipart_upload(Bucket="parts", Key="small")["UploadId"]
    ea = s3.upload_part(Bucket="parts", Key="small", UploadId=small, PartNumber=1, Body=two)
    eb = s3.upload_part(Bucket="parts", Key="small", UploadId=small, PartNumber=2, Body=two)
    parts = [{"PartNumber": 1, "ETag": ea["ETag"]}, {"PartNumber": 2, "ETag": eb["ETag"]}]
    assert error_of(lambda: s3.complete_multipart_upload(
        Bucket="parts", Key="small", UploadId=small, MultipartUpload={"Parts": parts}
    )) == ("EntityTooSmall", 400)  # fmt: skip
    s3.abort_multipart_upload(Bucket="parts", Key="small", UploadId=small)
    assert error_of(lambda: s3.list_parts(Bucket="parts", Key="small", UploadId=small))[0] == (
        "NoSuchUpload")  # fmt: skip


def test_objects_and_multiparts_over_s3_max_object_are_entity_too_large(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="limits")
    big = os.urandom(MAX_OBJECT + 1)
    assert error_of(lambda: s3.put_object(Bucket="limits", Key="big", Body=big)) == (
        "EntityTooLarge", 400)  # fmt: skip
    up = s3.create_multipart_upload(Bucket="limits", Key="big")["UploadId"]
    part = os.urandom(6 * MB)
    parts = [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket="limits", Key="big", UploadId=up,
                                                 PartNumber=n, Body=part)["ETag"]}
        for n in (1, 2, 3)
    ]  # fmt: skip
    assert error_of(lambda: s3.complete_multipart_upload(
        Bucket="limits", Key="big", UploadId=up, MultipartUpload={"Parts": parts}
    )) == ("EntityTooLarge", 400)  # fmt: skip
    assert s3.list_objects_v2(Bucket="limits")["KeyCount"] == 0
    assert os.listdir(cloud.s3_dir / ".incoming") == []


def test_a_presigned_get_is_read_with_urllib(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="note.txt", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "note.txt"},
                                    ExpiresIn=60)  # fmt: skip
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(url, context=context, timeout=10) as answer:
        assert answer.read() == b"hello"
    forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")[:-1]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(forged, context=context, timeout=10)
    assert info.value.code == 403 and b"SignatureDoesNotMatch" in info.value.read()


def test_another_user_cannot_read_list_or_delete(cloud):
    alice, bob = cloud.s3("alice"), cloud.s3("bob")
    alice.create_bucket(Bucket="private")
    alice.put_object(Bucket="private", Key="secret", Body=b"alice's")
    assert error_of(lambda: bob.get_object(Bucket="private", Key="secret"))[0] == "NoSuchBucket"
    assert error_of(lambda: bob.list_objects_v2(Bucket="private"))[0] == "NoSuchBucket"
    assert error_of(lambda: bob.delete_object(Bucket="private", Key="secret"))[1] == 404
    assert "private" not in [b["Name"] for b in bob.list_buckets()["Buckets"]]
    bob.create_bucket(Bucket="private")  # names are per user
    assert bob.list_objects_v2(Bucket="private")["KeyCount"] == 0
    assert alice.get_object(Bucket="private", Key="secret")["Body"].read() == b"alice's"
    ec2 = cloud.ec2("bob")
    stolen = {"ImageLocation": "private/secret", "Name": "stolen"}
    assert error_of(lambda: ec2.register_image(**stolen))[1] == 400
    assert error_of(lambda: cloud.s3("alice", "forged").list_buckets()) == (
        "SignatureDoesNotMatch", 403)  # fmt: skip


def test_hostile_keys_are_refused_and_nothing_leaves_the_folder(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="hostile")
    for key in ("../../escape", "a/../../b", "/etc/passwd", "nul\0byte", "x" * 1025):
        code, status = error_of(lambda k=key: s3.put_object(Bucket="hostile", Key=k, Body=b"x"))
        assert status == 400 and code in ("InvalidArgument", "KeyTooLongError"), key
    long_key = "é" * 512  # 1024 bytes: allowed
    s3.put_object(Bucket="hostile", Key=long_key, Body=b"ok")
    assert s3.get_object(Bucket="hostile", Key=long_key)["Body"].read() == b"ok"
    names = {p.name for p in (cloud.s3_dir).rglob("*")}
    assert not any("escape" in n or "passwd" in n for n in names)
    assert not (cloud.econe.location / "escape").exists()


def signed_chunks(cloud, key: str, chunks: list[bytes], forge: int = -1) -> tuple[int, bytes]:
    """A PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD (what the AWS Java and Go SDKs send),
    chunk `forge` signed with a wrong signature."""
    url = f"{cloud.econe.url}chunks/{key}"
    size = sum(len(c) for c in chunks)
    encoded = sum(len(f"{len(c):x};chunk-signature={'0' * 64}\r\n") + len(c) + 2 for c in chunks)
    encoded += len(f"0;chunk-signature={'0' * 64}\r\n\r\n")
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(size),
        "Content-Length": str(encoded),
    }  # fmt: skip
    request = AWSRequest("PUT", url, headers=headers)
    SigV4Auth(Credentials("alice", USERS["alice"]), "s3", "one").add_auth(request)
    auth = request.headers["Authorization"]
    previous = auth.rsplit("Signature=", 1)[1]
    stamp = request.headers["X-Amz-Date"]
    scope = f"{stamp[:8]}/one/s3/aws4_request"
    key_bytes = ("AWS4" + USERS["alice"]).encode()
    for part in (stamp[:8], "one", "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    body = b""
    for index, chunk in enumerate([*chunks, b""]):
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                stamp,
                scope,
                previous,
                hashlib.sha256(b"").hexdigest(),
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(key_bytes, text.encode(), hashlib.sha256).hexdigest()
        sent = "f" * 64 if index == forge else previous
        body += f"{len(chunk):x};chunk-signature={sent}\r\n".encode() + chunk + b"\r\n"
    answer = urllib3.PoolManager(cert_reqs="CERT_NONE").request(
        "PUT", url, body=body, headers=dict(request.headers), retries=False
    )
    return answer.status, answer.data


def test_signed_chunks_are_checked_one_by_one(cloud):
    cloud.s3().create_bucket(Bucket="chunks")
    chunks = [os.urandom(65536), os.urandom(65536), os.urandom(100)]
    status, _ = signed_chunks(cloud, "good", chunks)
    assert status == 200
    got = cloud.s3().get_object(Bucket="chunks", Key="good")["Body"].read()
    assert got == b"".join(chunks)
    status, body = signed_chunks(cloud, "forged", chunks, forge=1)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert error_of(lambda: cloud.s3().head_object(Bucket="chunks", Key="forged"))[1] == 404


def test_a_slow_uploader_does_not_hold_up_the_others(cloud):
    s3 = cloud.s3()
    s3.create_bucket(Bucket="slow")
    request = AWSRequest("PUT", f"{cloud.econe.url}slow/trickle", headers={
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "Content-Length": "100000"})  # fmt: skip
    SigV4Auth(Credentials("alice", USERS["alice"]), "s3", "one").add_auth(request)
    raw = socket.create_connection(("127.0.0.1", cloud.econe.port))
    slow = ssl._create_unverified_context().wrap_socket(raw)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        slow.sendall(f"PUT /slow/trickle HTTP/1.1\r\nHost: 127.0.0.1:{cloud.econe.port}\r\n"
                     f"{head}\r\n".encode() + b"x" * 50_000)  # fmt: skip
        started = time.monotonic()
        s3.put_object(Bucket="slow", Key="quick", Body=b"q" * 10_000)
        assert s3.list_objects_v2(Bucket="slow")["KeyCount"] == 1
        assert time.monotonic() - started < 10  # not held behind the slow client (60 s)
    finally:
        slow.close()
    wait_for(lambda: os.listdir(cloud.s3_dir / ".incoming") == [], timeout=10)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="slow")["Contents"]] == ["quick"]
