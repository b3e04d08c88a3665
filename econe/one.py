"""econe's calls to oned: XML-RPC as the verified user, oned's refusals as EC2 errors.

Pure and blocking: actions run on the server's worker threads, each with its own kept-alive
`OneClient` per session (the client is not thread-safe). oned's codes map as econe.md says:
0x100 AuthFailure, 0x200 UnauthorizedOperation, 0x400 the caller's NotFound code, 0x800
IncorrectInstanceState (or the caller's), 0x1000 InvalidParameterValue; anything else and an
unreachable oned are 503 Unavailable, so clients retry rather than give up.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
import xmlrpc.client
from typing import Any

from econe.errors import Ec2Error
from oned.client import OneCallError, OneClient, OneClientError

log = logging.getLogger("econe")
_CODES = {0x100: "AuthFailure", 0x200: "UnauthorizedOperation", 0x1000: "InvalidParameterValue"}
_MAX_CLIENTS = 256  # kept connections per thread


class Oned:
    """oned at `endpoint`, called with a session per call."""

    def __init__(self, endpoint: str, timeout: float = 30) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._local = threading.local()

    def call(
        self,
        session: str,
        method: str,
        *params: Any,
        not_found: str = "InvalidParameterValue",
        wrong_state: str = "IncorrectInstanceState",
        failed: str | None = None,
    ) -> Any:
        """`method(session, *params)`'s value; `Ec2Error` for a refusal or no oned. `failed`:
        the code of oned's 0x2000 for this call (allocate: no lease is no capacity), else
        it is Unavailable."""
        try:
            return self._client(session).call(method, *params)
        except OneCallError as exc:
            if exc.code == 0x2000 and failed:
                raise Ec2Error(failed, exc.message.split("] ", 1)[-1][:300]) from None
            raise _refusal(exc, not_found, wrong_state) from None
        except OneClientError as exc:
            log.error("%s: %s", method, exc.message)
            raise Ec2Error("Unavailable", "the service is unavailable, try again") from None

    def listing(self, session: str, method: str, *params: Any) -> ET.Element:
        """A read-only method's XML answer as an element, the reply parsed by ElementTree (C):
        xmlrpc.client's unmarshaller, pure Python, takes 3x as long on a 1000-VM listing. The
        answer is parsed as bytes (a str would be encoded again first: 20 % more)."""
        raw = self.escaped(session, method, *params)
        if raw is None:  # a refusal, or an answer of another shape: the slow way
            return ET.fromstring(str(self.call(session, method, *params)))
        if b"&#" in raw or b"&quot;" in raw or b"&apos;" in raw:
            return ET.fromstring(unescape(raw))
        return ET.fromstring(
            raw.replace(b"&lt;", b"<").replace(b"&gt;", b">").replace(b"&amp;", b"&")
        )

    def escaped(self, session: str, method: str, *params: Any) -> bytes | None:
        """The string of a successful answer as the reply carries it (XML-escaped); None for
        a refusal or an answer of another shape."""
        client = self._client(session)
        body = xmlrpc.client.dumps((session, *params), methodname=method, allow_none=True)
        try:
            reply = client._post(body.encode("utf-8"))  # the client's transport
        except OneClientError as exc:
            log.error("%s: %s", method, exc.message)
            raise Ec2Error("Unavailable", "the service is unavailable, try again") from None
        return successful_bytes(reply)

    def _client(self, session: str) -> OneClient:
        clients = getattr(self._local, "clients", None)
        if clients is None or len(clients) > _MAX_CLIENTS:
            for old in (clients or {}).values():
                old.close()
            clients = self._local.clients = {}
        client = clients.get(session)
        if client is None:
            client = clients[session] = OneClient(self.endpoint, session, self.timeout)
        return client


def successful_bytes(reply: bytes) -> bytes | None:
    """The string of a `[true, string, …]` XML-RPC reply, still escaped; None otherwise. The
    string holds no literal `<`, so its end is the reply's last `</string>` (found from the
    end: the reply's tail is short, a 23 MB listing is not scanned)."""
    start, end = reply.find(b"<string>"), reply.rfind(b"</string>")
    if not 0 <= start < end or b"<boolean>1</boolean>" not in reply[:start]:
        return None
    return reply[start + 8 : end]


def _successful_string(reply: bytes) -> str | None:
    """The string of a `[true, string, …]` XML-RPC reply, unescaped; None otherwise."""
    raw = successful_bytes(reply)
    return None if raw is None else unescape(raw)


def unescape(raw: bytes) -> str:
    """XML-RPC string content as text. String operations when it holds only `&lt;`/`&gt;`/
    `&amp;` (what oned writes), which is 10x as fast as parsing the envelope."""
    text = raw.decode("utf-8", "replace")
    if "&#" in text or "&quot;" in text or "&apos;" in text:
        return ET.fromstring(f"<s>{text}</s>").text or ""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _refusal(exc: OneCallError, not_found: str, wrong_state: str) -> Ec2Error:
    message = exc.message.split("] ", 1)[-1][:300]  # oned's "[one.vm.action] " prefix
    if exc.code == 0x400:
        return Ec2Error(not_found, message)
    if exc.code == 0x800:
        return Ec2Error(wrong_state, message)
    code = _CODES.get(exc.code)
    if code is None:
        log.error("oned answered code %#x: %s", exc.code, exc.message)
        return Ec2Error("Unavailable", "the service is unavailable, try again")
    return Ec2Error(code, message)


def xml(text: str) -> ET.Element:
    """oned's answer as an element (oned writes well-formed XML; anything else is a fault)."""
    return ET.fromstring(text)


def text(element: ET.Element, path: str, default: str = "") -> str:
    found = element.find(path)
    return default if found is None or found.text is None else found.text


def attribute(vm: ET.Element, name: str) -> str | None:
    """An attribute of an object's USER_TEMPLATE (updated later) or else its TEMPLATE."""
    for part in ("USER_TEMPLATE", "TEMPLATE"):
        found = vm.find(f"{part}/{name}")
        if found is not None:
            return found.text or ""
    return None


def quote(value: str) -> str:
    """`value` as a quoted string of OpenNebula's template language."""
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise Ec2Error("InvalidParameterValue", "a value holds control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
