"""Builds the OpenAPI document: FastAPI's routes, the declared inference operations, and
the schemas of bodies the pipeline parses itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.api.routes.inference import protocol_inference_routes
from gateway.api.routes.typed import TypedRoutes
from gateway.protocol.wire import InferenceRequest

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
    app.openapi_schema = document
    return document
