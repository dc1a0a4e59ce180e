"""The runs that need the paced client: its capacity, 4x overload, memory at 70%."""

from __future__ import annotations

import asyncio
import math
import os
import re
import statistics
import urllib.request
from pathlib import Path

from paced_client import PacedResult, closed_run, paced_run
from servers import HOST, Server


def client_capacity(server: Server, body: Path, seconds: float) -> float:
    """Requests/s the paced client itself gets at 64 connections: the capacity its runs
    are compared with (it shares the 2 cores with the server, unlike wrk)."""
    token = os.environ.get("BENCH_BEARER_TOKEN") or None
    payload = body.read_bytes()
    result = asyncio.run(
        closed_run(HOST, server.port, "/v2/models/mlp/infer", payload, 64, seconds, token=token)
    )
    return result.goodput


def queue_wait_buckets(server: Server) -> dict[float, float]:
    """Cumulative buckets of ``tensorgate_queue_seconds`` for ``mlp``, from /metrics."""
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    pattern = r'tensorgate_queue_seconds_bucket\{le="([^"]+)",model="mlp",version="1"\} (\S+)'
    return {float(edge): float(count) for edge, count in re.findall(pattern, text)}


def bucket_percentile(cumulative: dict[float, float], q: float) -> float:
    """The ``q`` quantile of a cumulative histogram, interpolated linearly inside its
    bucket as Prometheus' ``histogram_quantile`` does."""
    edges = sorted(cumulative)
    total = cumulative[edges[-1]] if edges else 0.0
    lower_edge, lower_count = 0.0, 0.0
    for edge in edges:
        if cumulative[edge] >= q * total > 0:
            if math.isinf(edge):
                return lower_edge
            share = (q * total - lower_count) / max(cumulative[edge] - lower_count, 1e-9)
            return lower_edge + (edge - lower_edge) * share
        lower_edge, lower_count = edge, cumulative[edge]
    return math.nan


def overload(
    server: Server, body: Path, capacity: float, seconds: float, queue_size: int
) -> dict[str, float]:
    """Offer 4x capacity from clients that honour Retry-After."""
    token = os.environ.get("BENCH_BEARER_TOKEN") or None
    payload = body.read_bytes()
    before = queue_wait_buckets(server)
    result: PacedResult = asyncio.run(
        paced_run(
            HOST,
            server.port,
            "/v2/models/mlp/infer",
            payload,
            4 * capacity,
            seconds,
            max_connections=256,
            token=token,
        )
    )
    others = sum(n for status, n in result.statuses.items() if status not in (200, 503))
    after = queue_wait_buckets(server)
    waits = {edge: after[edge] - before.get(edge, 0.0) for edge in after}
    return {
        "server_p99_queue_wait_ms": bucket_percentile(waits, 0.99) * 1000,
        "offered_per_s": 4 * capacity,
        "attempts_per_s": result.attempts / seconds,
        "ok": result.statuses[200],
        "rejected_503": result.statuses[503],
        "other_statuses": others,
        "client_dropped": result.dropped,
        "goodput_per_s": result.goodput,
        "capacity_per_s": capacity,
        "p50_admitted_ms": result.percentile(50),
        "p99_admitted_ms": result.percentile(99),
        # A request admitted last waits for the full queue ahead of it and the batch running.
        "queue_bound_ms": (queue_size + 64) / max(result.goodput, 1.0) * 1000,
    }


def memory(server: Server, body: Path, capacity: float, seconds: float) -> dict[str, float]:
    """RSS over a steady run at 70% of capacity, sampled once a second."""
    token = os.environ.get("BENCH_BEARER_TOKEN") or None
    payload = body.read_bytes()
    samples: list[float] = []

    async def sample() -> None:
        while True:
            samples.append(server.rss_bytes() / 2**20)
            await asyncio.sleep(1.0)

    async def both() -> PacedResult:
        sampler = asyncio.ensure_future(sample())
        try:
            return await paced_run(
                HOST,
                server.port,
                "/v2/models/mlp/infer",
                payload,
                0.7 * capacity,
                seconds,
                max_connections=512,
                token=token,
            )
        finally:
            sampler.cancel()

    result = asyncio.run(both())
    # The first 10% is warm-up (allocator pools, caches); compare the next 10% with the last.
    tenth = max(1, len(samples) // 10)
    start = statistics.mean(samples[tenth : 2 * tenth])
    end = statistics.mean(samples[-tenth:])
    return {
        "seconds": seconds,
        "rate_per_s": 0.7 * capacity,
        "achieved_per_s": result.goodput,
        "errors": sum(n for status, n in result.statuses.items() if status != 200),
        "rejected_503": result.statuses[503],
        "rss_start_mib": start,
        "rss_end_mib": end,
        "growth_pct": (end / start - 1) * 100,
    }
