"""Builds the OpenAPI document: FastAPI's routes, the declared inference operations, and
the schemas of bodies the pipeline parses itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api.responses import EVERY_ROUTE
from gateway.api.routes.inference import protocol_inference_routes
from gateway.api.routes.typed import TypedRoutes
from gateway.protocol.wire import ErrorResponse, InferenceRequest

DESCRIPTION = """\
An async inference gateway for ONNX models speaking the Open Inference Protocol
(KServe v2) REST API. Errors are always `{"error": "..."}` with the matching status code.
"""

_TAGS = [
    {"name": "health", "description": "Liveness, readiness and server metadata"},
    {"name": "models", "description": "Model metadata and readiness"},
    {"name": "inference", "description": "Open Inference Protocol inference"},
    {"name": "repository", "description": "The model repository"},
]
# Tag names must be unique: a model called "models" shares the existing tag.
_TAG_NAMES = frozenset(tag["name"] for tag in _TAGS)

# Models that routes parse from the raw body, so FastAPI does not see them.
_RAW_BODY_MODELS = (InferenceRequest,)


def build_openapi(app: FastAPI, typed: TypedRoutes) -> dict[str, Any]:
    """The OpenAPI document of ``app``, cached on the app until the typed routes change."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=DESCRIPTION,
        routes=[*app.routes, *protocol_inference_routes(), *typed.declarations()],
        tags=[*_TAGS, *(tag for tag in typed.tags() if tag["name"] not in _TAG_NAMES)],
    )
    body_models: list[type[BaseModel]] = [*_RAW_BODY_MODELS, *typed.body_models()]
    _, extra = models_json_schema(
        [(model, "validation") for model in body_models],
        ref_template="#/components/schemas/{model}",
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in extra.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    _answers_as_sent(document)
    app.openapi_schema = document
    return document


def _answers_as_sent(document: dict[str, Any]) -> None:
    """Make every operation list the statuses the server sends, and only those.

    FastAPI documents 422 wherever a route has parameters; this server answers its
    validation errors 400, and no route here can fail them (path parameters are plain
    strings), so 422 goes. Every operation can answer 413 and 500 (``EVERY_ROUTE``).
    """
    every = {
        str(status): {
            "description": answer["description"],
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        }
        for status, answer in EVERY_ROUTE.items()
    }
    for path_item in document["paths"].values():
        for operation in path_item.values():
            responses = operation["responses"]
            responses.pop("422", None)
            for status, answer in every.items():
                responses.setdefault(status, answer)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document["components"]["schemas"]
    schemas.setdefault("ErrorResponse", ErrorResponse.model_json_schema())
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
