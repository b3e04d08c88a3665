"""econe benchmark: RunInstances from concurrent boto3 clients (SigV4), then DescribeInstances of
1,000 and 10,000 instances of one user beside ``one.vmpool.info`` of the same pool.

Real processes: oned (SQLite, no host: the VMs stay pending) and econe-server in front of it,
with oned's EC2 keys (``server_auth``); the user signs with a key ``one.user.ec2keycreate``
made. RunInstances: ``--clients`` processes, each its own boto3 client, ``MaxCount=1`` per call
(boto3 adds a ClientToken to each). The pool is then filled to each size with ``one.vm.allocate``
of the template econe renders (ECONE vector included), and for each size:

* DescribeInstances as boto3 sees it (request, econe, botocore's parse), and econe's own time
  (its log's per-request figure);
* ``one.vmpool.info`` (the user's pool, filter -3, state -2: what econe reads at a reset of its
  mirror; ``infoextended`` beside it) as raw bytes over a kept-alive connection, no XML-RPC
  decoding: the server's figure;
* econe's CPU per DescribeInstances (from /proc) with nothing changed between two calls, and
  econe's log figure when one VM changed before each call (held, then released).

    .venv/bin/python bench/econe.py [--sizes 1000,10000] [--runs 400] [--clients 4] [--reads 7]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.oned_process import OnedProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "oneadmin:onecloud"
USER, PASSWORD = "bench", "benchpw"


def start_econe(oned: OnedProcess) -> tuple[subprocess.Popen, str, Path]:
    etc = oned.location / "etc"
    auth = etc / "econe_server_auth"
    auth.write_text(ADMIN + "\n")
    auth.chmod(0o600)
    port = free_port()
    conf = etc / "econe.conf"
    conf.write_text(
        f"port: {port}\none_xmlrpc: {oned.endpoint}\nserver_auth: {auth}\n"
        f"templates_dir: {ROOT / 'templates' / 'ec2query'}\nmax_count: 20\n"
    )
    log = oned.location / "var" / "econe-server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "econe.server", "-c", str(conf)],
        cwd=ROOT,
        env={**oned.env},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while "listening" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("econe-server did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/", log


def ec2(url: str, key: tuple[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name="one",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 1}),
    )


def _runner(url: str, key: tuple[str, str], ami: str, count: int, queue) -> None:
    client = ec2(url, key)
    client.run_instances(ImageId=ami, MinCount=1, MaxCount=1)  # connection, credentials
    started = time.perf_counter()
    for _ in range(count - 1):
        client.run_instances(ImageId=ami, MinCount=1, MaxCount=1)
    queue.put((started, time.perf_counter(), count - 1))


def run_instances(url: str, key: tuple[str, str], ami: str, runs: int, clients: int) -> float:
    """RunInstances per second, from the first timed call of any client to the last."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_runner, args=(url, key, ami, runs // clients, queue))
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    begin, end = min(r[0] for r in results), max(r[1] for r in results)
    return sum(r[2] for r in results) / (end - begin)


def _filler(port: int, session: str, template: str, count: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = xmlrpc.client.dumps((session, template), "one.vm.allocate").encode()
    for _ in range(count):
        conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
        if b"<boolean>1</boolean>" not in conn.getresponse().read()[:300]:
            raise SystemExit("one.vm.allocate failed")


def fill(oned: OnedProcess, template: str, count: int, clients: int = 4) -> None:
    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    session = f"{USER}:{PASSWORD}"
    procs = [
        multiprocessing.Process(target=_filler, args=(oned.port, session, template, share))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()


def vmpool_ms(port: int, reads: int, method: str) -> float:
    """Median ms of ``method(-3, -1, -1, -2)`` as the user: raw bytes, kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = xmlrpc.client.dumps((f"{USER}:{PASSWORD}", -3, -1, -1, -2), method).encode()
    times = []
    for _ in range(reads + 1):
        started = time.perf_counter()
        conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
        reply = conn.getresponse().read()
        times.append((time.perf_counter() - started) * 1000)
        if b"<boolean>1</boolean>" not in reply[:300]:
            raise SystemExit(f"{method} failed: {reply[:400]!r}")
    return statistics.median(times[1:])


def decoded_ms(endpoint: str, reads: int) -> float:
    """Median ms of ``one.vmpool.info`` as a Python client reads it: xmlrpc.client's call and
    the document parsed by ElementTree (what boto3's figure includes for DescribeInstances)."""
    import xml.etree.ElementTree as ET

    proxy = xmlrpc.client.ServerProxy(endpoint)
    times = []
    for _ in range(reads + 1):
        started = time.perf_counter()
        ET.fromstring(proxy.one.vmpool.info(f"{USER}:{PASSWORD}", -3, -1, -1, -2)[1])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def describe_ms(client, log: Path, reads: int, size: int) -> tuple[float, float, float, float]:
    """ms of a whole DescribeInstances: the first after the pool grew (every new VM parsed),
    then the median of the next `reads`, each as boto3 sees it and in econe's log."""
    seen, times = 0, []
    for _ in range(reads + 1):
        started = time.perf_counter()
        answer = client.describe_instances()
        times.append((time.perf_counter() - started) * 1000)
        seen = sum(len(r["Instances"]) for r in answer["Reservations"])
    if seen != size:
        raise SystemExit(f"DescribeInstances listed {seen} instances, not {size}")
    found = re.findall(r"DescribeInstances \S+ 200 ([\d.]+)ms", log.read_text())
    logged = [float(t) for t in found]
    warm, warm_logged = statistics.median(times[1:]), statistics.median(logged[-reads:])
    return times[0], warm, logged[-reads - 1], warm_logged


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid`, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe_cpu_ms(client, pid: int, reads: int) -> float:
    """econe's CPU ms per DescribeInstances, over `reads` calls with nothing changed."""
    before = cpu_seconds(pid)
    for _ in range(reads):
        client.describe_instances()
    return (cpu_seconds(pid) - before) * 1000 / reads


def changed_ms(client, admin, vid: int, log: Path, reads: int) -> float:
    """econe's log median of DescribeInstances when VM `vid` changed before each call."""
    for n in range(reads):
        if not admin.one.vm.action(ADMIN, "release" if n % 2 else "hold", vid)[0]:
            raise SystemExit(f"VM {vid} could not be held or released")
        client.describe_instances()
    found = re.findall(r"DescribeInstances \S+ 200 ([\d.]+)ms", log.read_text())
    return statistics.median(float(t) for t in found[-reads:])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--reads", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-econe-") as tmp:
        image = Path(tmp) / "bench.img"
        image.write_bytes(b"\0" * 65536)
        oned = OnedProcess(Path(tmp) / "one", conf_extra=f'SAFE_DIRS = "{tmp}"')
        oned.set(DEBUG_LEVEL=0).start()
        econe = None
        try:
            admin = xmlrpc.client.ServerProxy(oned.endpoint)
            admin.one.user.allocate(ADMIN, USER, PASSWORD)
            _, key, _ = admin.one.user.ec2keycreate(f"{USER}:{PASSWORD}", -1)
            econe, url, log = start_econe(oned)
            client = ec2(url, tuple(key))
            ami = client.register_image(ImageLocation=str(image), Name="bench")["ImageId"]
            while client.describe_images(ImageIds=[ami])["Images"][0]["State"] != "available":
                time.sleep(0.1)
            print(f"load before: {load()}")
            rate = run_instances(url, tuple(key), ami, args.runs, args.clients)
            print(f"RunInstances, {args.clients} boto3 clients, SigV4: {rate:.0f}/s  "
                  f"(load {load()})")  # fmt: skip
            template = rendered(admin, client)
            count = len(client.describe_instances()["Reservations"])
            for size in sizes:
                fill(oned, template, size - count)
                count = size
                pool = vmpool_ms(oned.port, args.reads, "one.vmpool.info")
                extended = vmpool_ms(oned.port, args.reads, "one.vmpool.infoextended")
                decoded = decoded_ms(oned.endpoint, args.reads)
                cold, boto, cold_log, logged = describe_ms(client, log, args.reads, size)
                cpu = describe_cpu_ms(client, econe.pid, args.reads)
                changing = changed_ms(client, admin, size - 1, log, args.reads)
                print(f"{size} instances: DescribeInstances: boto3 {boto:.0f} ms (first "
                      f"{cold:.0f}), econe's log {logged:.0f} ms (first {cold_log:.0f}) | "
                      f"one.vmpool.info: raw {pool:.1f} ms (infoextended "
                      f"{extended:.1f} ms), xmlrpc.client + ElementTree {decoded:.0f} ms | "
                      f"econe/raw {logged / pool:.1f}x, boto3/client {boto / decoded:.2f}x | "
                      f"econe CPU {cpu:.1f} ms per call, one VM changed each call: "
                      f"{changing:.0f} ms  (load {load()})")  # fmt: skip
        finally:
            if econe is not None:
                econe.terminate()
                econe.wait(10)
            oned.stop()


def rendered(admin: xmlrpc.client.ServerProxy, client) -> str:
    """What econe sends for an m1.small of the AMI (each VM its own reservation, as MaxCount=1)."""
    first = client.describe_instances()["Reservations"][0]["Instances"][0]
    vid = int(first["InstanceId"][2:], 16)
    _, body, _ = admin.one.vm.info(ADMIN, vid)
    image = re.search(r"<IMAGE_ID><!\[CDATA\[(\d+)\]\]></IMAGE_ID>", body) or re.search(
        r"<IMAGE_ID>(\d+)</IMAGE_ID>", body
    )
    return (
        f'NAME = "eco-vm"\nCPU = 0.1\nVCPU = 1\nMEMORY = 64\n'
        f"DISK = [ IMAGE_ID = {image.group(1) if image else 0} ]\n"
        f'CONTEXT = [ HOSTNAME = "eco-vm" ]\n'
        f'ECONE = [ INSTANCE_TYPE = "m1.small", IMAGE_ID = "{first["ImageId"]}", '
        f'LAUNCH_INDEX = "0" ]\n'
    )


if __name__ == "__main__":
    main()
