"""One gRPC call's record: its metadata read once, its access-log line and its metrics.

A call is logged as the HTTP/2 request it is (``POST /inference.GRPCInferenceService/...``)
with the HTTP status its answer maps from (``gateway.grpc.status``), so that one log query
and one error-ratio query cover both transports.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from typing import Any

from gateway.api.exchange import Exchange, new_request_id
from gateway.api.state import AppState

SERVICE = "inference.GRPCInferenceService"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_UNKNOWN_MODEL = "(unknown)"
_PEER = re.compile(r"(?:ipv4|ipv6):\[?([^\]]*?)\]?:(\d+)")

Metadata = Collection[tuple[str, str | bytes]]


class CallMetadata:
    """The metadata a call's handling reads: the bearer token, the request id, a trace."""

    __slots__ = ("_metadata", "authorization", "request_id", "traceparent")

    def __init__(self, metadata: Metadata | None) -> None:
        self._metadata = metadata or ()
        self.authorization: str | None = None
        self.request_id: bytes | None = None
        self.traceparent: bytes | None = None
        for key, value in self._metadata:
            if isinstance(value, bytes):  # binary ("-bin") metadata: none of ours
                continue
            if key == "authorization":
                self.authorization = value
            elif key == "x-request-id" and _REQUEST_ID.fullmatch(value):
                self.request_id = value.encode()
            elif key == "traceparent" and _TRACEPARENT.fullmatch(value):
                self.traceparent = value.encode()

    def get(self, name: str) -> str | None:
        """The text value of the metadata key ``name`` (lower case), if the call has it."""
        for key, value in self._metadata:
            if key == name and isinstance(value, str):
                return value
        return None


def client_of(peer: str) -> tuple[str, int] | None:
    """``ipv4:127.0.0.1:5000`` (grpc's peer string) as an ASGI-style ``client``."""
    match = _PEER.fullmatch(peer)
    return (match.group(1), int(match.group(2))) if match else None


class Call:
    """A gRPC call being answered: an ``Exchange`` (what the access log writes) and the
    scope-like facts the log line needs."""

    __slots__ = ("_peer", "_started", "exchange", "method")

    def __init__(self, method: str, metadata: CallMetadata, peer: str) -> None:
        self.method = method
        self._peer = peer
        self._started = time.perf_counter()
        self.exchange = Exchange(metadata.request_id or new_request_id(), metadata.traceparent)

    def finish(self, state: AppState, *, inference: bool) -> None:
        """Log the call and, for an inference call, count it in the inference metrics."""
        seconds = time.perf_counter() - self._started
        exchange = self.exchange
        if inference:
            model = exchange.model or _UNKNOWN_MODEL
            if not state.registry.knows(model):
                model = _UNKNOWN_MODEL  # names clients make up would grow the label set
            state.request_metrics.record_grpc(
                (model, exchange.version or "", exchange.status), seconds
            )
        log = state.access_log
        if log is not None:
            log.record(self._scope(), exchange, seconds)

    def _scope(self) -> dict[str, Any]:
        return {
            "method": "POST",
            "path": f"/{SERVICE}/{self.method}",
            "client": client_of(self._peer),
        }
