"""Which signature a request carries, and the verification of either kind.

A request with an `Authorization: AWS4-HMAC-SHA256 …` header or a presigned `X-Amz-Algorithm`
query is SigV4 (boto3, awscli); one with `AWSAccessKeyId` among its parameters is SigV2 (the
old econe-* and euca tools); anything else is unsigned and refused. `parse` and `check` are
apart so the server can look the secret up asynchronously (from oned) between them.
"""

from __future__ import annotations

from collections.abc import Callable

from econe import sigv2, sigv4
from econe.request import HttpRequest, Policy

Signed = sigv4.SignedV4 | sigv2.SignedV2


def parse(request: HttpRequest, policy: Policy, now: float | None = None) -> Signed:
    """The request's signature, its shape, scope and time checked; `Ec2Error` otherwise."""
    if sigv4.is_v4(request):
        return sigv4.parse(request, policy, now)
    if sigv2.is_v2(request):
        return sigv2.parse(request, policy, now)
    # sigv4.parse words the refusal of an unsigned request (or a foreign algorithm).
    return sigv4.parse(request, policy, now)


def check(signed: Signed, secret: str | None, policy: Policy) -> None:
    """Refuse unless `secret` (None: unknown access key) gives the request's signature."""
    if isinstance(signed, sigv4.SignedV4):
        sigv4.check(signed, secret, policy)
    else:
        sigv2.check(signed, secret, policy)


def verify(
    request: HttpRequest,
    lookup: Callable[[str], str | None],
    policy: Policy,
    now: float | None = None,
) -> str:
    """The access key id of a correctly signed request; `Ec2Error` otherwise."""
    signed = parse(request, policy, now)
    check(signed, lookup(signed.access_key), policy)
    return signed.access_key
