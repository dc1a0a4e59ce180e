"""The model repository extension: the index, and loading and unloading models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from gateway.api.body import json_body
from gateway.api.dependencies import REQUIRE_READ, ControlDep, RegistryDep, require_scopes
from gateway.api.responses import AUTH, BAD_REQUEST, NOT_FOUND, Responses
from gateway.auth.principal import ADMIN
from gateway.dataplane import metadata
from gateway.protocol.wire import RepositoryIndexEntry

router = APIRouter(tags=["repository"])
_REQUIRE_ADMIN = require_scopes(ADMIN)
_DONE: Responses = {200: {"description": "Done; the body is empty, as Triton's"}}


class ModelControlRequest(BaseModel):
    """Body of a load or unload request, as Triton's clients send it (optional)."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    """``config``: a Triton model configuration as a JSON string (load);
    ``unload_dependents`` (unload, accepted: no model depends on another here)."""


class IndexRequest(BaseModel):
    """Body of an index request: ``ready`` lists only the versions ready to serve."""

    model_config = ConfigDict(extra="forbid")

    ready: StrictBool = False
    """List only ready versions."""


def _declare(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}


@router.post(
    "/v2/repository/index",
    operation_id="repository_index",
    responses={**AUTH, **BAD_REQUEST},
    dependencies=[REQUIRE_READ],
    openapi_extra=_declare(IndexRequest),
)
async def repository_index(request: Request, registry: RegistryDep) -> list[RepositoryIndexEntry]:
    """Every model version with its state and, when it cannot serve, the reason."""
    body = await json_body(request, IndexRequest)
    entries = metadata.repository_index(registry)
    if body is not None and body.ready:
        entries = [entry for entry in entries if entry.state == "READY"]
    return entries


@router.post(
    "/v2/repository/models/{model_name}/load",
    operation_id="repository_model_load",
    responses={**_DONE, **AUTH, **BAD_REQUEST},
    response_class=Response,
    dependencies=[_REQUIRE_ADMIN],
    openapi_extra=_declare(ModelControlRequest),
)
async def repository_model_load(model_name: str, request: Request, control: ControlDep) -> Response:
    """Load ``<repository>/<model>`` (reload it when loaded: the old one serves until the
    new one is ready); a Triton configuration in ``parameters.config`` overrides its
    ``config.yaml`` where the fields map, and anything else is a 400 naming it. With
    several worker processes it answers once every worker has loaded it."""
    body = await json_body(request, ModelControlRequest)
    raw = None if body is None else body.model_dump()
    await control.load(model_name, raw)
    return Response(status_code=200)


@router.post(
    "/v2/repository/models/{model_name}/unload",
    operation_id="repository_model_unload",
    responses={**_DONE, **AUTH, **BAD_REQUEST, **NOT_FOUND},
    response_class=Response,
    dependencies=[_REQUIRE_ADMIN],
    openapi_extra=_declare(ModelControlRequest),
)
async def repository_model_unload(
    model_name: str, request: Request, control: ControlDep
) -> Response:
    """Stop serving a model: queued requests still get their answers, then it closes (on
    every worker process, before this answers)."""
    body = await json_body(request, ModelControlRequest)
    raw = None if body is None else body.model_dump()
    await control.unload(model_name, raw)
    return Response(status_code=200)
