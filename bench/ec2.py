"""Hybrid-cloud benchmark: VMs deployed to one EC2 host (moto's EC2 server on loopback).

Everything is a real process: oned, one_im_ec2, one_vmm_ec2, one_tm (dummy), and moto's server,
which counts the EC2 actions it serves (tests/functional/moto_region.py). The VMs are allocated
and deployed to the ec2 host with ``one.vm.deploy``; the clock runs until every VM is RUNNING.
Then a few polling cycles are watched (DescribeInstances per cycle must not grow with the VM
count), and every VM is shut down (TerminateInstances, waited for) until DONE.

    .venv/bin/python bench/ec2.py [--vms 100] [--cycles 3] [--poll 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.moto_region import KNOWN_AMI, MotoRegion
from tests.functional.oned_process import OnedProcess

SESSION = "oneadmin:onecloud"
STANZAS = """
IM_MAD = [ name = "im_ec2", executable = "one_im_ec2", arguments = "im_ec2/im_ec2.conf" ]
VM_MAD = [ name = "vmm_ec2", executable = "one_vmm_ec2", arguments = "vmm_ec2/vmm_ec2.conf",
           type = "xml" ]
"""


def write_confs(etc: Path, endpoint: str, vms: int) -> None:
    account = f"ENDPOINT={endpoint}\nCREDENTIALS=ec2/credentials.yaml\n"
    for name in ("im_ec2", "vmm_ec2"):
        (etc / name).mkdir(parents=True, exist_ok=True)
    (etc / "im_ec2" / "im_ec2.conf").write_text(f"SMALL_INSTANCES={vms}\n{account}")
    (etc / "vmm_ec2" / "vmm_ec2.conf").write_text(f"CLOUD_ID=bench\n{account}")
    creds = etc / "ec2" / "credentials.yaml"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text("access_key_id: testing\nsecret_access_key: testing\n")
    creds.chmod(0o600)


def states(one: xmlrpc.client.ServerProxy) -> list[tuple[int, int]]:
    _, body, _ = one.one.vmpool.info(SESSION, -2, -1, -1, -1)
    import xml.etree.ElementTree as ET

    root = ET.fromstring(body)
    return [(int(v.findtext("STATE")), int(v.findtext("LCM_STATE"))) for v in root.iter("VM")]


def wait(predicate, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"not done within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


def run(args: argparse.Namespace) -> None:
    with MotoRegion() as region, tempfile.TemporaryDirectory() as tmp:
        region.client().describe_images(ImageIds=[KNOWN_AMI])  # moto loads its AMIs once
        oned = OnedProcess(Path(tmp) / "one", conf_extra=STANZAS)
        oned.set(HOST_MONITORING_INTERVAL=60, VM_POLLING_INTERVAL=args.poll)
        write_confs(oned.location / "etc", region.endpoint, args.vms)
        oned.start()
        try:
            measure(oned, region, args)
        finally:
            oned.stop()


def measure(oned: OnedProcess, region: MotoRegion, args: argparse.Namespace) -> None:
    one = xmlrpc.client.ServerProxy(oned.endpoint)
    hid = one.one.host.allocate(SESSION, "ec2", "im_ec2", "vmm_ec2", "tm_dummy")[1]
    wait(lambda: "<STATE>2</STATE>" in one.one.host.info(SESSION, hid)[1], 30)
    template = f'CPU = 0.1\nMEMORY = 64\nEC2 = [ AMI = "{KNOWN_AMI}" ]'
    vids = [one.one.vm.allocate(SESSION, template)[1] for _ in range(args.vms)]
    before = region.calls()
    started = time.monotonic()
    for vid in vids:
        one.one.vm.deploy(SESSION, vid, hid)
    wait(lambda: all(s == (3, 3) for s in states(one)), 300)
    to_running = time.monotonic() - started
    deployed = region.calls() - before
    print(f"{args.vms} VMs to RUNNING in {to_running:.2f} s ({args.vms / to_running:.1f} VMs/s)")
    print(f"  EC2 calls while deploying: {dict(deployed)}")
    print(f"  per VM: {sum(deployed.values()) / args.vms:.2f} calls, "
          f"{deployed['RunInstances'] / args.vms:.2f} RunInstances")  # fmt: skip
    before = region.calls()
    time.sleep(args.cycles * args.poll + 1)
    polled = region.calls() - before
    print(f"  {args.cycles} polling cycles of {args.vms} VMs ({args.poll} s): {dict(polled)}")
    before, started = region.calls(), time.monotonic()
    for vid in vids:
        one.one.vm.action(SESSION, "shutdown", vid)
    wait(lambda: all(s[0] == 6 for s in states(one)), 300)
    ended = region.calls() - before
    print(
        f"  shutdown of {args.vms} VMs to DONE in {time.monotonic() - started:.2f} s: {dict(ended)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3, help="polling cycles watched")
    parser.add_argument("--poll", type=int, default=5, help="VM_POLLING_INTERVAL, s")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
