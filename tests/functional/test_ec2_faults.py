"""Faults moto cannot produce: EC2 throttling (RequestLimitExceeded, HTTP 503) and an endpoint
that accepts connections but never answers. A small HTTP server on loopback stands in for EC2
here (the test says so: HOUSE-STYLE allows a fake only for a fault the real part cannot make);
the EC2 client, its retries and timeouts are the real botocore ones the drivers use."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from drivers.ec2_common import Client
from drivers.ec2_conf import Settings, parse_conf
from drivers.im_ec2 import Context, monitor
from drivers.protocol import DriverFailure, Request

THROTTLED = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit "
    b"exceeded.</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
)
EMPTY = (
    b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    b"<requestId>r-2</requestId><reservationSet/></DescribeInstancesResponse>"
)
REQUEST = Request("MONITOR", "0", ("ec2", "1"))


class Throttling(BaseHTTPRequestHandler):
    """Answers RequestLimitExceeded (503) to the first ``server.throttle`` requests."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen += 1  # type: ignore[attr-defined]
        throttled = self.server.seen <= self.server.throttle  # type: ignore[attr-defined]
        body = THROTTLED if throttled else EMPTY
        self.send_response(503 if throttled else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def throttling():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    server.seen, server.throttle = 0, 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def context(tmp_path, endpoint: str, extra: str = "") -> Context:
    creds = tmp_path / "creds.yaml"
    creds.write_text("access_key_id: AKIATEST\nsecret_access_key: test\n")
    creds.chmod(0o600)
    conf = f"SMALL_INSTANCES=5\nENDPOINT={endpoint}\nCREDENTIALS={creds}\n{extra}"
    settings: Settings = parse_conf(conf)
    return Context(settings, Client(settings), "faults")


def test_throttling_is_retried_with_back_off_until_it_passes(tmp_path, throttling):
    throttling.throttle = 2
    ctx = context(tmp_path, f"http://127.0.0.1:{throttling.server_port}", "MAX_ATTEMPTS=4\n")
    info = monitor(ctx, REQUEST, print)
    assert "TOTALCPU=500" in info and throttling.seen == 3


def test_throttling_beyond_the_attempts_fails_the_monitor_with_ec2s_code(tmp_path, throttling):
    throttling.throttle = 100
    ctx = context(tmp_path, f"http://127.0.0.1:{throttling.server_port}", "MAX_ATTEMPTS=3\n")
    with pytest.raises(DriverFailure, match="RequestLimitExceeded: Request limit exceeded"):
        monitor(ctx, REQUEST, print)
    assert throttling.seen == 3


def test_an_endpoint_that_never_answers_fails_within_the_timeouts(tmp_path):
    with socket.socket() as silent:  # accepts (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        ctx = context(tmp_path, endpoint, "READ_TIMEOUT=1\nCONNECT_TIMEOUT=1\nMAX_ATTEMPTS=2\n")
        started = time.monotonic()
        with pytest.raises(DriverFailure, match="did not answer in time"):
            monitor(ctx, REQUEST, print)
        assert time.monotonic() - started < 8
