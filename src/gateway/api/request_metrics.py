"""The metrics of one answered inference request, counted as one series per label set.

An inference request feeds seven series: ``tensorgate_inference_requests_total`` and
``tensorgate_inference_request_seconds`` (``gateway.metrics``), and the instrumentator's
``http_requests_total``, request and response sizes and both latency histograms
(``api.http_metrics``). They always move together, so the pipeline counts them with one
``RequestTally`` per label set rather than seven observations (``gateway.tally``).
"""

from __future__ import annotations

from gateway.api.http_metrics import HttpMetrics, status_class
from gateway.metrics import GatewayMetrics
from gateway.tally import RequestTally

_MAX_SERIES = 4096
_Key = tuple[str, str, int, str, str]
_GrpcKey = tuple[str, str, int]


class InferenceRequestMetrics:
    """Records answered inference requests in the gateway's and the instrumentator's series."""

    def __init__(self, metrics: GatewayMetrics, http: HttpMetrics) -> None:
        self._metrics = metrics
        self._http = http
        self._series: dict[_Key, RequestTally] = {}
        self._grpc_series: dict[_GrpcKey, RequestTally] = {}

    def record(
        self,
        key: _Key,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """One answered request: ``key`` is (model, version, status, method, route
        template); model names clients make up must be folded into one by the caller."""
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key)
        series.add(seconds, (request_bytes, response_bytes))

    def record_grpc(self, key: _GrpcKey, seconds: float) -> None:
        """One answered gRPC inference call: ``key`` is (model, version, the HTTP status its
        code maps from); it feeds the gateway's series only (the instrumentator's are
        HTTP's)."""
        series = self._grpc_series.get(key)
        if series is None:
            if len(self._grpc_series) >= _MAX_SERIES:
                self._metrics.tallies.flush()
                self._grpc_series.clear()
            model, version, status = key
            metrics = self._metrics
            series = RequestTally(
                metrics.tallies,
                counters=[metrics.requests_total.labels(model, version, str(status), "grpc")],
                sizes=[],
                durations=[metrics.request_seconds.labels(model, version)],
            )
            self._grpc_series[key] = series
        series.add(seconds, ())

    def _new_series(self, key: _Key) -> RequestTally:
        if len(self._series) >= _MAX_SERIES:  # label values come from clients (404s too)
            self._metrics.tallies.flush()  # nothing counted is dropped with the cache
            self._series.clear()
        model, version, status, method, route = key
        metrics, http = self._metrics, self._http
        series = RequestTally(
            metrics.tallies,
            counters=[
                metrics.requests_total.labels(model, version, str(status), "http"),
                http.total.labels(method, status_class(status), route),
            ],
            sizes=[http.request_size.labels(route), http.response_size.labels(route)],
            durations=[
                metrics.request_seconds.labels(model, version),
                http.latency_highr,
                http.latency_lowr.labels(method, route),
            ],
        )
        self._series[key] = series
        return series
