"""A large reply (a pool listing) leaves a piece at a time as the transport drains, whole and in
order, and stops when the connection goes (oned.rpc.server.LargeReply)."""

from __future__ import annotations

from oned.rpc.server import LargeReply


class Request:
    """Stands in for twisted.web's Request: the transport pauses its producer after every
    write, as a real one does once its buffer holds more than 64 KB."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.producer: LargeReply | None = None
        self.finished = 0

    def registerProducer(self, producer: LargeReply, streaming: bool) -> None:
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        assert not self.finished
        self.written.append(data)
        if self.producer is not None:
            self.producer.pauseProducing()

    def finish(self) -> None:
        self.finished += 1


PARTS = [b"<head>", *(b"%05d" % n * 40 for n in range(1000)), b"<tail>"]  # 200 KB


def test_a_large_reply_is_written_a_piece_at_a_time_whole_and_in_order(monkeypatch):
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    request = Request()
    reply = LargeReply(list(PARTS), request)  # type: ignore[arg-type]
    reply.start()
    assert len(request.written) == 1 and not request.finished
    while request.producer is not None:
        request.producer.resumeProducing()
    assert b"".join(request.written) == b"".join(PARTS)
    assert len(request.written) == 13 and request.finished == 1
    assert max(map(len, request.written)) < 16 * 1024 + 200


def test_a_reply_whose_connection_went_stops_without_finishing(monkeypatch):
    monkeypatch.setattr(LargeReply, "piece", 16 * 1024)
    request = Request()
    reply = LargeReply(list(PARTS), request)  # type: ignore[arg-type]
    reply.start()
    reply.stopProducing()
    reply.resumeProducing()
    assert len(request.written) == 1 and request.finished == 0
