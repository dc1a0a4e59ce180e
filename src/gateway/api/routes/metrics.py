"""The Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.api.dependencies import METRICS_ACCESS, MetricsDep
from gateway.api.responses import METRICS_AUTH

router = APIRouter(tags=["health"], dependencies=[METRICS_ACCESS])


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **METRICS_AUTH,
    },
)
async def metrics(collectors: MetricsDep) -> Response:
    """Prometheus metrics of every worker process: HTTP, queues, batches, inference."""
    payload, media_type = collectors.exposition()
    return Response(payload, media_type=media_type)
