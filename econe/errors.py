"""The EC2 error an econe request ends with: a code clients know, a message, an HTTP status.

Every refusal the client can fix is a 4xx (clients retry 5xx, ec2.md §1.5); `InternalError`
(500) is kept for real server faults.
"""

from __future__ import annotations

STATUS = {
    "AuthFailure": 401,
    "UnauthorizedOperation": 403,
    "MissingAuthenticationToken": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "AccessDenied": 403,
    "IncompleteSignature": 400,
    "AuthorizationHeaderMalformed": 400,
    "RequestExpired": 400,
    "RequestTimeTooSkewed": 403,
    "DryRunOperation": 412,
    "RequestEntityTooLarge": 413,
    "InternalError": 500,
    "Unavailable": 503,
    "RequestLimitExceeded": 503,
}


class Ec2Error(Exception):
    """A request refused with an EC2 error code; nothing was changed."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS.get(code, 400)
