"""Typed per-model operations in the OpenAPI document, kept in sync with the registry.

A path parameter (``/models/{name}/predict``) cannot carry per-model schemas, so every
ready model gets ``POST /models/<name>/predict`` (highest ready version) and
``POST /models/<name>/versions/<n>/predict`` declared, added and removed as the registry
changes. ``api.pipeline`` answers those paths with the typed codec.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from backends.base import ModelSignature, TensorSpec
from backends.datatypes import from_numpy
from gateway.api.dependencies import infer_security
from gateway.api.responses import INFER_ROUTE
from gateway.api.routes.declared import declare_inference
from gateway.dataplane.inference import rows_limit
from gateway.protocol.json_codec import format_shape
from gateway.repository.registry import ModelRegistry, ModelVersion
from gateway.typed.schemas import Bounds, TypedSchema, build_typed_schema, class_prefix


@dataclass(frozen=True, slots=True)
class _Plan:
    """One typed route to register."""

    path: str
    operation_id: str
    model: str
    version: str | None
    schema: TypedSchema
    description: str


def _snake(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower() or "model"


def _unique(candidate: str, taken: set[str]) -> str:
    name, n = candidate, 2
    while name in taken:
        name, n = f"{candidate}{n}", n + 1
    taken.add(name)
    return name


def _tensors(specs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(
        f"`{spec.name}` {from_numpy(spec.dtype)} {format_shape(spec.shape)}" for spec in specs
    )


def _description(name: str, which: str, signature: ModelSignature) -> str:
    return (
        f"Runs model `{name}` ({which}) on tensors given by input name as nested lists.\n\n"
        f"Inputs: {_tensors(signature.inputs)}.\n\nOutputs: {_tensors(signature.outputs)}.\n\n"
        f'Validation, batching and errors (`{{"error": ...}}`) are those of '
        f"`POST /v2/models/{name}/infer`."
    )


class TypedRoutes:
    """Declares the typed operations of an app's ready models as its registry changes."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._routes: list[APIRoute] = []
        self._schemas: dict[tuple[str, str, ModelSignature, Bounds], TypedSchema] = {}
        self._models: list[str] = []

    def watch(self, registry: ModelRegistry) -> Callable[[], None]:
        """Follow ``registry`` from now on; returns a function that stops following it."""
        remove = registry.add_listener(lambda _: self.sync(registry))
        self.sync(registry)
        return remove

    def body_models(self) -> list[type[BaseModel]]:
        """Request models of the current routes, for the OpenAPI document's components."""
        return list({id(s.request): s.request for s in self._schemas.values()}.values())

    def tags(self) -> list[dict[str, str]]:
        """One OpenAPI tag per model with typed routes."""
        return [
            {"name": name, "description": f"Typed routes of model `{name}`"}
            for name in self._models
        ]

    def declarations(self) -> list[APIRoute]:
        """The typed operations of the models ready now, for the OpenAPI document."""
        return list(self._routes)

    def sync(self, registry: ModelRegistry) -> None:
        """Declare the typed operations of the registry's ready versions, and drop the
        cached OpenAPI document."""
        plans = self._plan(registry)
        self._routes = [_declare(plan) for plan in plans]
        self._models = sorted({plan.model for plan in plans})
        self._app.openapi_schema = None

    def _plan(self, registry: ModelRegistry) -> list[_Plan]:
        schemas: dict[tuple[str, str, ModelSignature, Bounds], TypedSchema] = {}
        prefixes: set[str] = set()
        operations: set[str] = set()
        plans: list[_Plan] = []

        def schema_for(
            prefix: str, name: str, signature: ModelSignature, bounds: Bounds
        ) -> TypedSchema:
            key = (prefix, name, signature, bounds)
            found = schemas.get(key) or self._schemas.get(key)
            schemas[key] = found or build_typed_schema(prefix, name, signature, bounds)
            return schemas[key]

        for name in registry.names():
            ready = [
                (v.version, (v.backend.signature, _bounds(v)))
                for v in registry.entry(name).ready_versions()
                if v.backend
            ]
            if not ready:
                continue
            operation = _unique(f"predict_{_snake(name)}", operations)
            base = _unique(class_prefix(name), prefixes)
            # Versions sharing a signature share models, named after the highest of them.
            by_signature: dict[tuple[ModelSignature, Bounds], TypedSchema] = {}
            for version, key in ready:
                if key not in by_signature:
                    prefix = _unique(f"{base}V{version}", prefixes) if by_signature else base
                    by_signature[key] = schema_for(prefix, name, *key)
            latest, (signature, bounds) = ready[0]
            plans.append(
                _Plan(
                    f"/models/{name}/predict",
                    operation,
                    name,
                    None,
                    by_signature[signature, bounds],
                    _description(name, f"its highest ready version, now {latest}", signature),
                )
            )
            plans.extend(
                _Plan(
                    f"/models/{name}/versions/{version}/predict",
                    _unique(f"{operation}_v{version}", operations),
                    name,
                    str(version),
                    by_signature[key],
                    _description(name, f"version {version}", key[0]),
                )
                for version, key in sorted(ready, key=lambda pair: pair[0])
            )
            signatures = dict(ready)
            plans.extend(
                _Plan(
                    f"/models/{name}/versions/{label}/predict",
                    _unique(f"{operation}_{_snake(label)}", operations),
                    name,
                    label,
                    by_signature[signatures[version]],
                    _description(name, f"label `{label}`, now version {version}", signature),
                )
                for label, version in sorted(registry.entry(name).routing.labels.items())
                if version in signatures
            )
        self._schemas = schemas
        return plans


def _bounds(version: ModelVersion) -> Bounds:
    """What the server enforces on ``version``'s requests beyond its signature."""
    limit = rows_limit(version.batcher.policy) if version.batcher is not None else None
    return Bounds(finite=not version.config.allow_non_finite, max_rows=limit)


def _declare(plan: _Plan) -> APIRoute:
    extra: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{plan.schema.request.__name__}"}
                }
            },
        },
        **infer_security(plan.model),
    }
    which = "its highest ready version" if plan.version is None else f"version {plan.version}"
    if plan.version is not None and not plan.version.isdigit():
        which = f"label {plan.version}"
    return declare_inference(
        plan.path,
        name=plan.operation_id,
        operation_id=plan.operation_id,
        tags=[plan.model],
        summary=f"Predict with {plan.model} ({which})",
        description=plan.description,
        response_model=plan.schema.response,
        response_description="Output tensors by name",
        responses=INFER_ROUTE,
        openapi_extra=extra,
    )
