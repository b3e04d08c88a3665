"""moto's EC2 server on loopback as the EC2 region of the hybrid-cloud tests and benchmark.

``MotoRegion`` runs moto (``moto[server]``) in a child process on 127.0.0.1 and a free port, so
each region gets moto's settings from its own environment (``MOTO_ENABLE_AMI_VALIDATION``,
``INITIAL_NO_AUTH_ACTION_COUNT``...). The child counts the EC2 actions it serves:
``GET /onecloud-test/calls`` answers them as JSON. ``stop`` (a context manager's exit) ends it.

Run as ``python -m tests.functional.moto_region PORT`` it is that child.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
CALLS_PATH = "/onecloud-test/calls"
KNOWN_AMI = "ami-760aaa0f"  # one of moto's built-in images (amzn-ami-hvm-2017.09)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoRegion:
    """A moto server child process; ``env`` adds moto settings to its environment."""

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 30) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        child_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.functional.moto_region", str(self.port)],
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"moto exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                self.calls()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"moto did not listen on {self.port} within {timeout} s")

    def calls(self) -> Counter[str]:
        """The EC2 actions served so far, by name."""
        with urllib.request.urlopen(self.endpoint + CALLS_PATH, timeout=5) as answer:
            return Counter(json.loads(answer.read()))

    def client(self, service: str = "ec2", **keys: str) -> Any:
        """A boto3 client of the region (any credentials unless moto's auth is on)."""
        import boto3

        keys = keys or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **keys)

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> MotoRegion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def moto_region(env: dict[str, str] | None = None) -> Iterator[MotoRegion]:
    region = MotoRegion(env)
    try:
        yield region
    finally:
        region.stop()


def counting(app: Any, calls: Counter[str], lock: threading.Lock) -> Any:
    """WSGI middleware: count each request's ``Action`` (query or form); answer the counts."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == CALLS_PATH:
            with lock:
                body = json.dumps(dict(calls)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = BytesIO(data)
        form = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(data.decode("latin-1"))
        action = form.get("Action", [""])[0]
        if action:
            with lock:
                calls[action] += 1
        return app(environ, start_response)

    return wrapped


def serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = counting(DomainDispatcherApplication(create_backend_app), Counter(), threading.Lock())
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
