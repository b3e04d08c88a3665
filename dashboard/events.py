"""The live stream, /api/events (Server-Sent Events): first version, keep-alive only."""

from __future__ import annotations

from typing import Any

from twisted.web import server

from dashboard.sessions import Session


class Feeds:
    def __init__(self, oned: Any, clock: Any) -> None:
        self.oned = oned
        self.clock = clock

    def stream(self, request: server.Request, session: Session) -> Any:
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.write(b": connected\n\n")
        return server.NOT_DONE_YET

    def seq(self, session: Session) -> int:
        return 0

    def close(self, session: Session) -> None:
        pass
