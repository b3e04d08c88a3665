"""The S3 endpoint's Twisted shell: path-style requests on econe's port (`/<bucket>[/<key>]`).

Not pure (Twisted), like `econe.server` which hands S3 requests here. A PUT of a key is
checked while its headers arrive (`begin`): the signature is parsed and verified with the
declared payload hash at once, and only then does its `econe.s3_sink.Upload` thread write
the body to disk; everything else is bounded in memory (`SMALL_BODY`). The operation runs on
a worker thread (`econe.s3_api`), GetObject is streamed from the open file by Twisted's
static producers. Refusals are S3 error documents; the access log line is econe's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.web import static

from econe import s3_api, s3_multipart, signature, sigv4
from econe.config import Settings
from econe.context import Context, Services
from econe.errors import Ec2Error
from econe.request import HttpRequest, Policy
from econe.s3_chunked import SIGNED, ChunkSignatures
from econe.s3_sink import Expected, Upload
from econe.s3_store import ObjectStore
from econe.s3_wire import as_s3, error, render_error

log = logging.getLogger("econe")
SMALL_BODY = 4 * 2**20  # bytes of a non-object S3 body (CompleteMultipartUpload of 10000 parts)
XML = b"application/xml"
RECV_SIZE = 2**20
# (request, policy) -> Deferred (signed, credentials): econe.server's signature check
Verify = Callable[[HttpRequest, Policy], defer.Deferred]


def s3_policy(ec2: Policy) -> Policy:
    return Policy("s3", ec2.regions, None, ec2.window, ec2.hosts)


def headers_of(request: Any) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name.decode("latin-1"), value.decode("utf-8", "replace"))
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    )


class S3Endpoint:
    def __init__(
        self, settings: Settings, store: ObjectStore, verify: Verify, clock: Any,
        services: Services, policy: Policy,
    ) -> None:  # fmt: skip
        self.settings, self.store, self.verify = settings, store, verify
        self.clock, self.services, self.policy = clock, services, s3_policy(policy)
        self._uids: dict[str, int] = {}

    # --- while the headers arrive ---------------------------------------------------------

    def begin(self, request: Any, length: int | None) -> None:
        """Called at the end of the headers of an S3 request: a PUT of a key gets its upload."""
        method = getattr(request.channel, "_command", b"").decode("latin-1")
        raw = getattr(request.channel, "_path", b"").decode("utf-8", "replace")
        path, _, query = raw.partition("?")
        headers = headers_of(request)
        http = HttpRequest(method, path, query, headers)
        request.body_limit = SMALL_BODY
        try:
            if not s3_api.streams_body(method, path, bool(http.header("x-amz-copy-source"))):
                return
        except Ec2Error:
            return  # answered when the request is complete
        try:
            expected, problem = self._expected(http), None
        except Ec2Error as exc:
            expected, problem = Expected(limit=0), exc
        size = expected.decoded_length if expected.chunked else length
        if size and "uploadId=" in query:  # written in place: not one byte past its slot
            expected = dataclasses.replace(expected, limit=min(expected.limit, size))
        declared = expected.sha256 or "UNSIGNED-PAYLOAD"
        http = HttpRequest(method, path, query, headers, b"", declared)
        transport = request.channel.transport
        # Read the socket in 1 MiB gulps, not Twisted's 64 KiB: a sixteenth of the Python
        # calls per byte (under TLS the TCP connection is the wrapper's transport).
        getattr(transport, "transport", transport).bufferSize = RECV_SIZE
        reactor = self.clock
        request.upload = Upload(
            self.store.new_incoming(), expected, transport.pauseProducing,
            lambda: reactor.callFromThread(transport.resumeProducing),
            lambda: reactor.callFromThread(self._landed, request),
        )  # fmt: skip
        if problem is not None:
            request.upload.refuse(problem)
        request.landed = defer.Deferred()
        request.part = (http, size) if "uploadId=" in query else None
        request.s3_auth = self._authenticate(http)
        request.s3_auth.addCallback(self._allow, request).addErrback(self._refuse, request)

    def _expected(self, http: HttpRequest) -> Expected:
        declared = http.header("x-amz-content-sha256") or ""
        chunked = declared.startswith("STREAMING-")
        if chunked and declared not in (SIGNED, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"):
            raise error("InvalidRequest", f"{declared[:60]} is not supported")
        algorithm, value = None, None
        sent = [
            (n.lower()[15:], v.strip())
            for n, v in http.headers
            if n.lower().startswith("x-amz-checksum-") and n.lower() != "x-amz-checksum-type"
        ]
        trailer = (http.header("x-amz-trailer") or "").strip().lower()
        if sent:
            algorithm, value = sent[0]
        elif chunked and trailer.startswith("x-amz-checksum-"):
            algorithm = trailer[15:]
        decoded = http.header("x-amz-decoded-content-length")
        limit = self.settings.s3_max_object
        return Expected(
            limit=min(limit, s3_api.MAX_PART) if "uploadId=" in http.query else limit,
            chunked=chunked,
            sha256=declared if len(declared) == 64 else None,
            md5=http.header("content-md5"),
            checksum=algorithm or None,
            checksum_value=value,
            decoded_length=int(decoded) if decoded and decoded.isdigit() else None,
        )

    def _allow(self, verified: tuple[Any, Any], request: Any) -> Any:
        signed, creds = verified
        chain = None
        if request.upload.expected.chunked and _declared(request) == SIGNED:
            date, region, service, _ = signed.scope.split("/")
            key = sigv4.signing_key(creds.secret, date, region, service)
            chain = ChunkSignatures(key, signed.timestamp, signed.scope, signed.signature)
        if request.part is None:
            request.upload.allow(chain)
            return verified
        d = threads.deferToThread(self._slot, request.part, signed, creds)
        d.addCallback(lambda at: request.upload.allow(chain, at))
        return d.addCallback(lambda _: verified)

    def _slot(self, part: tuple[HttpRequest, int | None], signed: Any, creds: Any) -> Any:
        """(file, offset) an UploadPart writes at, once its upload is known to be the caller's."""
        http, size = part
        ctx = Context(signed.access_key, self.settings, "-", creds, self.services)
        bucket, key = s3_api.split_path(http.path)
        args = s3_api.args_of(http.query)
        folder = s3_multipart.upload_of(self.store, self._uid(ctx), bucket or "", key or "",
                                        args.get("uploadId", ""))  # fmt: skip
        return s3_multipart.slot(folder, s3_multipart.part_number(args.get("partNumber")), size)

    def _refuse(self, failure: Failure, request: Any) -> Failure:
        request.upload.refuse(failure.value if failure.check(Ec2Error) else error(
            "InternalError", "the request could not be checked"))  # fmt: skip
        return failure

    def _landed(self, request: Any) -> None:
        upload = request.upload
        if upload.error is not None:
            request.landed.errback(Failure(upload.error))
        else:
            request.landed.callback(upload.result)

    def _authenticate(self, http: HttpRequest) -> defer.Deferred:
        try:
            if isinstance(signature.parse(http, self.policy, self.clock.seconds()), sigv4.SignedV4):
                return self.verify(http, self.policy)
            raise error("AccessDenied", "S3 requests must be signed with Signature Version 4")
        except Ec2Error:
            return defer.fail()

    # --- the complete request -------------------------------------------------------------

    @defer.inlineCallbacks
    def answer(self, request: Any, http: HttpRequest, request_id: str) -> Any:
        """Run the request's operation; (Answer) or an S3 error raised."""
        if getattr(request, "too_large", False):
            raise error("EntityTooLarge" if http.body else "MalformedXML", "the body is too large")
        upload = getattr(request, "upload", None)
        if upload is not None:
            upload.end()
            try:
                received, landing = (yield request.landed), None
            except Ec2Error as exc:
                received, landing = None, exc
            signed, creds = yield request.s3_auth  # a refused signature comes first
            if landing is not None:
                raise landing
        else:
            signed, creds = yield self._authenticate(http)
            received = None
        request.econe_user = signed.access_key
        bucket, key = s3_api.split_path(http.path)
        args = s3_api.args_of(http.query)
        operation = s3_api.route(http.method, bucket, key, args)
        request.econe_action = operation
        ctx = Context(signed.access_key, self.settings, request_id, creds, self.services)
        call = s3_api.S3Call(
            http,
            bucket,
            key,
            args,
            -1,
            creds.name,
            self.store,
            self.settings.region,
            self.settings.s3_max_object,
            received,
        )
        answer = yield threads.deferToThread(self._run, operation, call, ctx)
        return answer

    def _run(self, operation: str, call: s3_api.S3Call, ctx: Context) -> s3_api.Answer:
        try:
            call = dataclasses.replace(call, uid=self._uid(ctx))
            return s3_api.OPERATIONS[operation](call)
        finally:
            received = call.received
            if received is not None and not received.shared and os.path.exists(received.path):
                os.unlink(received.path)  # refused: the body goes

    def _uid(self, ctx: Context) -> int:
        """The caller's uid (asked from oned once per access key when its source did not say)."""
        uid = self._uids.get(ctx.user)
        if uid is None:
            uid = ctx.uid()
            if len(self._uids) > 10000:
                self._uids.clear()
            self._uids[ctx.user] = uid
        return uid

    def refused(self, failure: Failure, http: HttpRequest, request_id: str) -> s3_api.Answer:
        if failure.check(Ec2Error):
            exc = as_s3(failure.value)
        else:
            log.error("request %s failed", request_id, exc_info=failure.value)
            exc = error("InternalError", "We encountered an internal error. Please try again.")
        status, body = render_error(exc, http.path, request_id)
        return s3_api.Answer(status, [("Content-Type", XML.decode())], body)

    def write(self, answer: s3_api.Answer, request: Any, request_id: str, started: float) -> None:
        log.info(
            "%s %s %s %s %d %.1fms %s",
            getattr(request.getClientAddress(), "host", "-"),
            request.method.decode("latin-1"), request.econe_action, request.econe_user,
            answer.status, (time.monotonic() - started) * 1000, request_id,
        )  # fmt: skip
        if request.gone:
            if answer.file:
                answer.file[0].close()
            return
        request.setResponseCode(answer.status)
        request.setHeader(b"x-amz-request-id", request_id.encode())
        for name, value in answer.headers:
            request.setHeader(name.encode("latin-1"), value.encode("utf-8"))
        if answer.file is not None:
            f, first, length = answer.file
            request.setHeader(b"Content-Length", str(length).encode())
            if length:
                producer = static.SingleRangeStaticProducer(request, f, first, length)
                producer.bufferSize = 2**20
                producer.start()
                return
            f.close()
        if answer.body and not request.responseHeaders.hasHeader(b"content-type"):
            request.setHeader(b"Content-Type", XML)
        if not request.responseHeaders.hasHeader(b"content-length"):
            request.setHeader(b"Content-Length", str(len(answer.body)).encode())
        request.write(answer.body)
        request.finish()


def _declared(request: Any) -> str:
    value = request.requestHeaders.getRawHeaders(b"x-amz-content-sha256") or [b""]
    return value[0].decode("latin-1")
