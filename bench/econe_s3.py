"""econe's S3 upload benchmark: a large file (2 GB by default) sent with `aws s3 cp` and with
boto3's `upload_file` to a real econe-server (in front of a real oned), against `cp` of the
same file on the same disk (goal: the uploads >= 80 % of cp's rate).

The source (random 4 MiB blocks, each stamped with its index: nothing compresses) is written
once in a temporary folder next to the repository and stays in the page cache; econe's
`s3_dir` is on the same disk. Each round times `cp`, then each client; every copy and object
is removed before the next. The clients use their defaults (8 MB parts, 10 threads); over
plain HTTP botocore signs every part's SHA-256, over HTTPS (`--https`) it sends
STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 instead. The CPU seconds econe-server and
the client used are printed too (2 cores, shared by both).

    .venv/bin/python bench/econe_s3.py [--size 2048] [--rounds 2] [--https] [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import urllib3  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.image_copy import write_source  # noqa: E402
from econe.s3_sink import Expected, Upload  # noqa: E402
from tests.functional.oned_process import OnedProcess  # noqa: E402
from tests.functional.test_econe_server import EconeProcess, self_signed  # noqa: E402

USER, PASSWORD = "bench", "benchpw"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def timed_cp(src: Path, dst: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(src), str(dst)], check=True)
    elapsed = time.perf_counter() - started
    dst.unlink()
    return elapsed


def timed_awscli(econe: EconeProcess, src: Path, folder: Path) -> tuple[float, float]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": USER, "AWS_SECRET_ACCESS_KEY": PASSWORD,
           "AWS_DEFAULT_REGION": "one", "AWS_CONFIG_FILE": str(folder / "aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}  # fmt: skip
    aws = str(Path(sys.executable).parent / "aws")
    argv = [aws, "--endpoint-url", econe.url, "--no-verify-ssl", "s3", "cp",
            "--only-show-errors", str(src), "s3://bench/aws"]  # fmt: skip
    before = children_cpu()
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, children_cpu() - before


def client(econe: EconeProcess):
    return boto3.client("s3", endpoint_url=econe.url, region_name="one", verify=False,
                        aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
                        config=Config(s3={"addressing_style": "path"}))  # fmt: skip


def timed_boto3(econe: EconeProcess, src: Path) -> tuple[float, float]:
    s3 = client(econe)
    before = time.process_time()
    started = time.perf_counter()
    s3.upload_file(str(src), "bench", "boto3")
    return time.perf_counter() - started, time.process_time() - before


def run(folder: Path, size_mb: int, rounds: int, https: bool) -> dict[str, float]:
    src = folder / "source.img"
    write_source(src, size_mb)
    oned = OnedProcess(folder / "one").start()
    conf: dict[str, object] = {"one_xmlrpc": oned.endpoint, "s3_dir": str(folder / "s3")}
    if https:
        key, cert = self_signed(folder)
        conf |= {"ssl_cert": str(cert), "ssl_key": str(key)}
        urllib3.disable_warnings()
    econe = EconeProcess(folder / "econe", **conf)
    (econe.location / "etc" / "econe_keys").write_text(f"{USER} {PASSWORD}\n")
    assert oned.run_cli("oneuser", "create", USER, PASSWORD).returncode == 0
    econe.start()
    best: dict[str, float] = {}
    try:
        client(econe).create_bucket(Bucket="bench")
        assert econe.proc is not None
        for _ in range(rounds):
            sample = {"cp": timed_cp(src, folder / "copy.img")}
            server = cpu_seconds(econe.proc.pid)
            sample["awscli"], sample["awscli client cpu"] = timed_awscli(econe, src, folder)
            sample["awscli server cpu"] = cpu_seconds(econe.proc.pid) - server
            server = cpu_seconds(econe.proc.pid)
            sample["boto3"], sample["boto3 client cpu"] = timed_boto3(econe, src)
            sample["boto3 server cpu"] = cpu_seconds(econe.proc.pid) - server
            for name, value in sample.items():
                best[name] = min(best.get(name, value), value)
    finally:
        econe.stop()
        oned.stop()
    return best


def sink_cost(size_mb: int) -> dict[str, float]:
    """CPU ms per MB of econe.s3_sink alone (decode, hashes, write to .incoming) for the body
    forms the clients send: botocore over HTTP (SHA-256 declared, CRC32 header), over HTTPS
    (aws-chunked, CRC32 trailer), and MD5 alone (UNSIGNED-PAYLOAD)."""
    data = os.urandom(1 << 20) * size_mb
    piece = 65536
    crc = zlib.crc32(data).to_bytes(4, "big")
    forms = {
        "md5 only": (Expected(limit=len(data) + 1), data),
        "http: md5+sha256+crc32": (
            Expected(limit=len(data) + 1, sha256=hashlib.sha256(data).hexdigest(),
                     checksum="crc32", checksum_value=base64.b64encode(crc).decode()),
            data,
        ),
        "https: aws-chunked md5+crc32": (
            Expected(limit=len(data) + 1, chunked=True, checksum="crc32"),
            b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 2**20]), data[i : i + 2**20])
                     for i in range(0, len(data), 2**20))
            + b"0\r\nx-amz-checksum-crc32:" + base64.b64encode(crc) + b"\r\n\r\n",
        ),
    }  # fmt: skip
    out = {}
    with tempfile.TemporaryDirectory(dir=str(ROOT.parent)) as folder:
        for name, (expected, body) in forms.items():
            done = threading.Event()
            upload = Upload(os.path.join(folder, "in"), expected, lambda: None, lambda: None,
                            done.set)  # fmt: skip
            before = time.process_time()
            upload.allow()
            for i in range(0, len(body), piece):
                upload.feed(body[i : i + piece])
            upload.end()
            done.wait()
            assert upload.error is None, upload.error
            out[name] = (time.process_time() - before) * 1000 / size_mb
            os.unlink(upload.path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="MB to upload (2048)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--https", action="store_true", help="econe over HTTPS")
    parser.add_argument("--dir", default=str(ROOT.parent), help="where the files go")
    parser.add_argument("--sink", action="store_true", help="only the sink's CPU per MB")
    args = parser.parse_args()
    if args.sink:
        for name, cost in sink_cost(min(args.size, 256)).items():
            print(f"{name:30} {cost:6.2f} ms CPU per MB")
        return
    load = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="econe-s3-bench-", dir=args.dir))
    try:
        best = run(folder, args.size, args.rounds, args.https)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    size = args.size * (1 << 20)
    rate = {k: size / best[k] / 2**20 for k in ("cp", "awscli", "boto3")}
    print(json.dumps({"size_mb": args.size, "https": args.https, "load_before": load,
                      "best_seconds": best}, indent=1))  # fmt: skip
    for name in ("cp", "awscli", "boto3"):
        print(f"{name:7} {best[name]:7.2f} s  {rate[name]:7.1f} MB/s  "
              f"{rate[name] / rate['cp']:5.0%} of cp")  # fmt: skip


if __name__ == "__main__":
    main()
