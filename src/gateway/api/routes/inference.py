"""The Open Inference Protocol inference operations, as the OpenAPI document declares them.

``api.pipeline`` answers these paths; the body is read raw (Triton's client sends no
Content-Type), so its schema is declared by reference.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from gateway.api.dependencies import infer_security
from gateway.api.responses import INFER_ROUTE
from gateway.api.routes.declared import declare_inference
from gateway.protocol.wire import InferenceResponse

_OPENAPI_EXTRA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}
        },
    },
    **infer_security("{model_name}"),
}


def protocol_inference_routes() -> list[APIRoute]:
    """``model_infer`` and ``model_version_infer``."""
    common: dict[str, Any] = {
        "tags": ["inference"],
        "response_model": InferenceResponse,
        "responses": INFER_ROUTE,
        "openapi_extra": _OPENAPI_EXTRA,
    }
    return [
        declare_inference(
            "/v2/models/{model_name}/infer",
            name="model_infer",
            operation_id="model_infer",
            description="Run inference on the highest ready version of a model.",
            **common,
        ),
        declare_inference(
            "/v2/models/{model_name}/versions/{model_version}/infer",
            name="model_version_infer",
            operation_id="model_version_infer",
            description="Run inference on one version of a model.",
            **common,
        ),
    ]
