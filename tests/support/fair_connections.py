"""Connections as the serving protocol drives fair reads, for tests of ``FairReads``."""

from __future__ import annotations

from gateway.dataplane.fairness import Share
from gateway.serving.fair_reads import ConnectionShare, FairReads


class Connection:
    """A connection as the protocol drives fair reads: begin, end, maybe held."""

    def __init__(self, reads: FairReads, flow: str, weight: float = 1.0) -> None:
        self.reads = reads
        self.share = ConnectionShare()
        self.share.share = Share(flow, weight)
        self.held = False
        self.busy = False

    def begin(self) -> None:
        self.busy = True
        self.reads.begin(self.share)

    def answer(self) -> None:
        """The request ends; the connection is held if its caller is over its share."""
        self.busy = False
        self.reads.end(self.share)
        if self.reads.holds_back(self.share):
            self.held = True
            self.reads.hold(self.share, self.resume)

    def resume(self) -> None:
        self.held = False


def crowd(reads: FairReads, flow: str, count: int, weight: float = 1.0) -> list[Connection]:
    connections = [Connection(reads, flow, weight) for _ in range(count)]
    for connection in connections:
        connection.begin()
    return connections
