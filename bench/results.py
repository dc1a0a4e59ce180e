"""What ``make bench`` measures: the servers' row labels, one measured row, and a run's
results as the report reads them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from wrk import WrkResult

NAIVE = "naive, ORT on the event loop"
NAIVE_THREAD = "naive, ORT in a worker thread"
ASGI_FLOOR = "bare ASGI app (floor)"
STARLETTE_FLOOR = "plain Starlette route (floor)"
ON = "tensorgate, --workers 1"
OFF = "tensorgate, batching off"
DEFAULT = "tensorgate, default workers"
TWO_WORKERS = "tensorgate, --workers 2"
CEILING = "onnxruntime in-process (ceiling)"
ACCESS_LOG_ON = "tensorgate, access log on"
ACCESS_LOG_OFF = "tensorgate, access log off"
REMOTE = "tensorgate -> remote tensorgate"
BINARY_JSON = "tensorgate JSON"
BINARY = "tensorgate binary"
GRPC = "tensorgate gRPC"
SHM = "tensorgate shared memory"
GRPC_FLOOR = "bare grpc.aio app (floor)"
LARGE_ALONE = "one-row mlp alone"
LARGE_DURING = "one-row mlp beside large JSON requests"
KINDS = (NAIVE, NAIVE_THREAD, ASGI_FLOOR, STARLETTE_FLOOR, OFF, ON, DEFAULT, CEILING)
"""The servers of the main matrix, in the order of its tables."""


@dataclass(frozen=True)
class Measurement:
    """One server x model x connection count."""

    server: str
    model: str
    connections: int
    requests_per_s: float
    """Answers per second, errors included (what wrk reports)."""
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int

    @property
    def ok_per_s(self) -> float:
        """Successful (2xx) answers per second: what the tables, ratios and plot show."""
        if self.requests == 0:  # the in-process ceiling has no HTTP answers
            return self.requests_per_s
        return self.requests_per_s * (self.requests - self.errors) / self.requests


def median_of(server: str, model: str, conns: int, runs: list[WrkResult]) -> Measurement:
    """Median rate and latencies over the rounds; errors and requests summed."""
    return Measurement(
        server,
        model,
        conns,
        statistics.median(r.requests_per_s for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
        sum(r.requests for r in runs),
    )


@dataclass(frozen=True)
class LargeJson:
    """The largest JSON request tensorgate takes: its decode against the floor, and what
    a stream of them does to the latency of one-row requests."""

    body_bytes: int
    rows: int
    """``mlp`` rows in the large body."""
    rounds: int
    floor_ms: float
    """Median time of ``orjson.loads`` + ``np.asarray`` on the large body, in-process."""
    decode_ms: float
    """Median time of tensorgate's request codec on the same body, in-process."""
    alone: Measurement
    """One-row ``mlp`` requests, 16 connections, nothing else sent (``LARGE_ALONE``)."""
    during: Measurement
    """The same while one client keeps sending the large body (``LARGE_DURING``)."""
    large_answered: int
    large_ok: int
    large_p50_ms: float
    """Median time of one large request, sent to its answer read."""


@dataclass(frozen=True)
class TwoSubjects:
    """A polite caller (4 closed-loop connections on ``mlp``) alone and beside another
    caller flooding at 256 connections, on one server: medians over ``rounds``."""

    server: str
    rounds: int
    seconds: float
    """Of each polite run."""
    alone_ok_per_s: float
    alone_p99_ms: float
    """Of the polite caller's 200 answers."""
    alone_ok_share: float
    """The polite caller's answers that were 200 (over every round)."""
    beside_ok_per_s: float
    beside_p99_ms: float
    beside_ok_share: float
    flood_ok_per_s: float
    flood_503_share: float
    unanswered: int = 0
    """Requests of either caller (beside the flood, every round) with no answer within
    ``paced_client.ANSWER_TIMEOUT_S``: a request that arrived must be answered."""

    @property
    def p99_bound_ms(self) -> float:
        """The most the polite p99 may reach beside the flood: 3x alone, or alone + 20 ms."""
        return max(3 * self.alone_p99_ms, self.alone_p99_ms + 20)

    @property
    def goodput_kept(self) -> float:
        """The polite goodput beside the flood over its goodput alone."""
        return self.beside_ok_per_s / self.alone_ok_per_s if self.alone_ok_per_s else 0.0

    @property
    def met(self) -> bool:
        """Issue 20's targets: >= 95% answered 200, >= half its goodput alone, p99 bound,
        and every request of both callers answered."""
        return (
            self.beside_ok_share >= 0.95
            and self.goodput_kept >= 0.5
            and self.beside_p99_ms <= self.p99_bound_ms
            and self.unanswered == 0
        )


@dataclass(frozen=True)
class Report:
    """Everything one run measured."""

    measurements: list[Measurement]
    binary: list[Measurement]
    """JSON and binary bodies (``BINARY_JSON`` / ``BINARY``) and unary gRPC calls
    (``GRPC``), same server; the gRPC floor's calls (``GRPC_FLOOR``, ``mlp`` only); the
    input in a shared-memory region (``SHM``, ``image`` only)."""
    binary_rounds: int
    grpc_failures: dict[str, int]
    """gRPC calls of the ``GRPC`` rows that were not OK, by status, over every run."""
    access_log: list[Measurement]
    """``mlp`` with the access log on and off, same run, in turns."""
    remote: list[Measurement]
    """``mlp`` local (``ON``) and through a remote model (``REMOTE``), in turns."""
    large_json: LargeJson
    two_subjects: list[TwoSubjects]
    """The polite caller beside a flood: the one-process server, then ``--workers 2``."""
    overload: dict[str, float]
    memory: dict[str, float]
    default_workers: int
    """Processes serving requests in the ``DEFAULT`` server (``--workers`` not passed)."""
    load_before: float
    load_after: float
    seconds_per_run: int
    rounds: int
    total_s: float
    quick: bool
    auth: bool
    cpu: str
