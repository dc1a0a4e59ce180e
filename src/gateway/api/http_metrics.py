"""prometheus-fastapi-instrumentator's request metrics, for every route, inference included.

The instrumentator's middleware sees only the requests FastAPI routes; the inference
paths are answered before FastAPI (``api.pipeline``). So the collectors are made here,
with the names, labels and buckets of the instrumentator's default set, and fed both by
the instrumentator (an instrumentation function it calls per request) and by the
pipeline, with label children cached: one family per metric, whoever answered.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, Summary
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info
from starlette.types import ASGIApp

from gateway.tally import CounterTally, HistogramTally, SummaryTally, TallyBook

_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5,
    7.5, 10, 30, 60,
)  # fmt: skip
_LOWR_BUCKETS = (0.1, 0.5, 1)
_MAX_CACHED = 4096


class HttpMetrics:
    """``http_requests_total``, ``http_request_size_bytes``, ``http_response_size_bytes``,
    ``http_request_duration_highr_seconds`` and ``http_request_duration_seconds``."""

    def __init__(self, registry: CollectorRegistry, tallies: TallyBook | None = None) -> None:
        self.registry = registry
        self._tallies = tallies if tallies is not None else TallyBook(direct=True)
        self.total = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("method", "status", "handler"),
            registry=registry,
        )
        self.request_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. Only value of header is "
            "respected. Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.response_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. Only value of header is "
            "respected. Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.latency_highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate "
            "percentile calculations. ",
            buckets=_HIGHR_BUCKETS,
            registry=registry,
        )
        self.latency_lowr = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation "
            "by handler is important. ",
            ("method", "handler"),
            buckets=_LOWR_BUCKETS,
            registry=registry,
        )
        self._highr = HistogramTally(self.latency_highr, self._tallies)
        self._children: dict[
            tuple[str, str, str], tuple[CounterTally, SummaryTally, SummaryTally, HistogramTally]
        ] = {}

    def install(self, app: ASGIApp) -> None:
        """Have the instrumentator's middleware record FastAPI's requests here
        (``/metrics`` itself excluded)."""
        instrumentator = Instrumentator(registry=self.registry, excluded_handlers=["/metrics"])
        instrumentator.add(self._instrumentation).instrument(app)  # type: ignore[arg-type]

    def _instrumentation(self, info: Info) -> None:
        request_bytes = int(info.request.headers.get("Content-Length", 0) or 0)
        response = info.response
        headers = getattr(response, "headers", None)
        response_bytes = int(headers.get("Content-Length", 0) or 0) if headers else 0
        self.record(
            info.method,
            info.modified_handler,
            info.modified_status,
            info.modified_duration,
            request_bytes,
            response_bytes,
        )

    def record(
        self,
        method: str,
        handler: str,
        status: str,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """One answered request: ``handler`` is the route template, ``status`` its class
        (``2xx``) as the instrumentator groups it."""
        key = (method, handler, status)
        children = self._children.get(key)
        if children is None:
            if len(self._children) >= _MAX_CACHED:
                self._tallies.flush()  # nothing counted is dropped with the cache
                self._children.clear()
            tallies = self._tallies
            children = (
                CounterTally(self.total.labels(method, status, handler), tallies),
                SummaryTally(self.request_size.labels(handler), tallies),
                SummaryTally(self.response_size.labels(handler), tallies),
                HistogramTally(self.latency_lowr.labels(method, handler), tallies),
            )
            self._children[key] = children
        total, request_size, response_size, latency = children
        total.inc()
        request_size.observe(request_bytes)
        response_size.observe(response_bytes)
        self._highr.observe(seconds)
        latency.observe(seconds)


def status_class(status: int) -> str:
    """``503`` -> ``5xx``, as the instrumentator groups status codes."""
    return f"{status // 100}xx"
