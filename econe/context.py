"""What an action runs with: the verified caller, the server's settings and its services.

Pure. `Context.call` asks oned as the caller (the session `econe.credentials` found for the
access key), so oned's own authorization decides what a user sees and may change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from econe.config import Settings
from econe.credentials import Credentials
from econe.errors import Ec2Error


@dataclass(frozen=True)
class Services:
    """The parts actions share: oned (`econe.one.Oned`), the key pair store, the types."""

    oned: Any = None
    keypairs: Any = None
    types: Any = None
    tokens: Any = None  # econe.tokens.TokenIndex
    addresses: Any = None  # econe.address_book.AddressBook
    server_session: str | None = None  # econe's own account, for the EC2 key exchange


@dataclass(frozen=True)
class Context:
    """Who called, and the server's settings; `user` is the verified access key id."""

    user: str
    settings: Settings
    request_id: str
    creds: Credentials | None = None
    services: Services = Services()

    def call(self, method: str, *params: Any, **codes: str) -> Any:
        """`method` on oned as the caller; oned's refusals as EC2 errors (`econe.one`)."""
        if self.creds is None or self.services.oned is None:
            raise Ec2Error("Unavailable", "this server is not connected to oned")
        return self.services.oned.call(self.creds.session, method, *params, **codes)

    def listing(self, method: str, *params: Any) -> Any:
        """A pool listing (read-only) as an element, parsed fast (`econe.one.Oned.listing`)."""
        if self.creds is None or self.services.oned is None:
            raise Ec2Error("Unavailable", "this server is not connected to oned")
        oned = self.services.oned
        if not hasattr(oned, "listing"):  # a stand-in without the fast path
            from econe.one import xml

            return xml(oned.call(self.creds.session, method, *params))
        return oned.listing(self.creds.session, method, *params)

    def uid(self) -> int:
        """The caller's user id (asked from oned when the key's source did not say)."""
        if self.creds is not None and self.creds.uid >= 0:
            return self.creds.uid
        from econe.one import text, xml

        return int(text(xml(self.call("one.user.info", -1)), "ID", "-1"))
