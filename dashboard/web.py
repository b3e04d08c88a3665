"""The HTTP pieces of one-dashboard (Twisted): bounded requests, the security headers every
answer carries, JSON answers and the static files of dashboard/static/.

Static files: only regular files under the folder (no listing, no `..`, no symlink out of
it), with their content type, `Cache-Control: no-cache` (the browser revalidates with
Last-Modified: an upgrade is seen at once) and `nosniff`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from twisted.web import http, server

import oned.log as onelog
from dashboard.oned import DashboardError

log = onelog.module("DASH")

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# No inline script or style, nothing from elsewhere; the API is same-origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


class DashboardRequest(server.Request):
    """A request that stops keeping its body past `max_body` bytes (answered 413 then)."""

    max_body = 1 << 20
    too_large = False
    user = "-"  # for the access log, once known
    gone = False
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        self.too_large = self.too_large or self._received > self.max_body
        if not self.too_large:
            super().handleContentChunk(data)


def secure_headers(request: server.Request, https: bool) -> None:
    request.setHeader(b"Content-Security-Policy", CSP.encode())
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"X-Frame-Options", b"DENY")
    request.setHeader(b"Referrer-Policy", b"no-referrer")
    if https:
        request.setHeader(b"Strict-Transport-Security", b"max-age=31536000")


def encode(body: Any) -> bytes:
    """JSON as the API sends it: UTF-8, compact; text stays text (no HTML escaping)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write_json(request: server.Request, status: int, data: bytes | None) -> None:
    """Answer `status` with the JSON `data` (None: no body, as 204)."""
    request.setResponseCode(status)
    request.setHeader(b"Cache-Control", b"no-store")
    if data is not None:
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        request.setHeader(b"Content-Length", str(len(data)).encode())
        request.write(data)
    request.finish()


def fail(request: server.Request, error: DashboardError) -> Any:
    """Answer `error` (unless the client went away); NOT_DONE_YET for `render`."""
    if not getattr(request, "gone", False):
        write_json(request, error.status, encode(error.body()))
    return server.NOT_DONE_YET


def answer(request: DashboardRequest, status: int, data: bytes) -> None:
    if not request.gone:
        write_json(request, status, data)


def json_body(request: DashboardRequest) -> dict[str, Any] | DashboardError:
    """The request's JSON object, or the error to answer (413, 415, 400)."""
    if request.too_large:
        return DashboardError(413, f"the body is over {request.max_body} bytes")
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if kind != b"application/json":
        return DashboardError(415, "the body must be application/json")
    content = request.content
    assert content is not None
    content.seek(0)
    try:
        body = json.loads(content.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # [[[[... nested too deep
        return DashboardError(400, "the body is not JSON")
    return body if isinstance(body, dict) else DashboardError(400, "the body must be an object")


def log_access(request: DashboardRequest, started: float) -> None:
    """The request's log line: address, method, path, user, status, time (no query, no
    header, no body: never a password or a cookie)."""
    request.gone = True
    peer = getattr(request.getClientAddress(), "host", "-")
    path = onelog.one_line(request.path.decode("utf-8", "replace"), 200)
    log.info(
        f"{peer} {request.method.decode('latin-1')} {path} {onelog.one_line(request.user, 64)} "
        f"{request.code} {(time.monotonic() - started) * 1000:.1f}ms"
    )


def static_file(path: str, root: str = STATIC) -> str | None:
    """The file of `root` a URL path names ('/' is index.html), or None."""
    if path in ("", "/"):
        path = "/index.html"
    parts = path.split("/")[1:]
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    file = os.path.join(root, *parts)
    real = os.path.realpath(file)
    if not real.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(real):
        return None
    return real


MAX_STATIC = 8 << 20  # the pages' files are small; anything larger is not ours to serve


def serve_static(request: server.Request, path: str, root: str = STATIC) -> Any:
    """The file (GET/HEAD) with its type and Last-Modified (304 when the browser has it),
    404 JSON when there is none."""
    file = static_file(path, root)
    try:
        with open(file or "", "rb") as f:
            stat = os.fstat(f.fileno())
            data = f.read(MAX_STATIC + 1) if stat.st_size <= MAX_STATIC else None
    except OSError:
        data = None
    if data is None or len(data) > MAX_STATIC:
        write_json(request, 404, encode({"error": "not found"}))
        return server.NOT_DONE_YET
    request.setHeader(b"Cache-Control", b"no-cache")
    if request.setLastModified(stat.st_mtime) is http.CACHED:
        return b""
    kind = TYPES.get(os.path.splitext(file or "")[1], "application/octet-stream")
    request.setHeader(b"Content-Type", kind.encode())
    request.setHeader(b"Content-Length", str(len(data)).encode())
    return b"" if request.method == b"HEAD" else data
