"""Open Inference Protocol inference routes.

They read the raw body and parse it themselves: Triton's client sends no Content-Type,
and FastAPI's body binding would validate every tensor element through Pydantic.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gateway.api.dependencies import INFER_SECURITY, REQUIRE_INFER, InferenceDep
from gateway.api.responses import INFER_ROUTE
from gateway.protocol import InferenceResponse

router = APIRouter(tags=["inference"], dependencies=[REQUIRE_INFER])

INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}
        },
    },
    **INFER_SECURITY,
}


async def _infer(
    service: InferenceDep, request: Request, name: str, version: str | None
) -> Response:
    body = await request.body()
    payload = await service.infer_json(name, version, body, request.headers)
    return Response(payload, media_type="application/json")


@router.post(
    "/v2/models/{model_name}/infer",
    operation_id="model_infer",
    response_model=InferenceResponse,
    responses=INFER_ROUTE,
    openapi_extra=INFER_OPENAPI,
)
async def model_infer(model_name: str, request: Request, service: InferenceDep) -> Response:
    """Run inference on the highest ready version of a model."""
    return await _infer(service, request, model_name, None)


@router.post(
    "/v2/models/{model_name}/versions/{model_version}/infer",
    operation_id="model_version_infer",
    response_model=InferenceResponse,
    responses=INFER_ROUTE,
    openapi_extra=INFER_OPENAPI,
)
async def model_version_infer(
    model_name: str, model_version: str, request: Request, service: InferenceDep
) -> Response:
    """Run inference on one version of a model."""
    return await _infer(service, request, model_name, model_version)
