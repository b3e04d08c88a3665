"""One client, sequential one.vm.allocate calls over one keep-alive connection: the server's
cost per allocation without the client contention of bench/api.py's four processes.

    .venv/bin/python bench/allocate_serial.py [--calls 4000]

Starts a real oned (oned.conf.example, DEBUG_LEVEL 1) in a temporary ONE_LOCATION; prints the
mean, p50 and p95 round trip of each acknowledged (committed) allocation.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import SESSION, TEMPLATE
from tests.functional.oned_process import OnedProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    template = TEMPLATE.replace('NIC = [ NETWORK = "public" ]', "")  # no network to create
    body = xmlrpc.client.dumps((SESSION, template), "one.vm.allocate").encode()
    with tempfile.TemporaryDirectory() as tmp:
        oned = OnedProcess(Path(tmp) / "one").set(DEBUG_LEVEL=1).start()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", oned.port)

            def call() -> None:
                connection.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
                reply = connection.getresponse().read()
                assert b"<boolean>1</boolean>" in reply, reply[:300]

            for _ in range(300):  # warm up
                call()
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
        finally:
            oned.stop()
    times.sort()
    mean, p50, p95 = statistics.mean(times), times[len(times) // 2], times[len(times) * 95 // 100]
    print(
        f"one.vm.allocate, 1 client, {args.calls} calls: mean {mean * 1e6:.0f} us, "
        f"p50 {p50 * 1e6:.0f} us, p95 {p95 * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
