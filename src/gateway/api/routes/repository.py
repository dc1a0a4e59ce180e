"""The model repository extension: the index, and loading and unloading models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.dependencies import REQUIRE_READ, RegistryDep, SettingsDep, require_scopes
from gateway.api.responses import AUTH, BAD_REQUEST, NOT_FOUND, Responses
from gateway.auth.principal import ADMIN
from gateway.dataplane import metadata, repository
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

    ready: bool = False
    """List only ready versions."""


@router.post(
    "/v2/repository/index",
    operation_id="repository_index",
    responses=AUTH,
    dependencies=[REQUIRE_READ],
)
async def repository_index(
    registry: RegistryDep, body: IndexRequest | None = None
) -> list[RepositoryIndexEntry]:
    """Every model version with its state and, when it cannot serve, the reason."""
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
)
async def repository_model_load(
    model_name: str,
    registry: RegistryDep,
    settings: SettingsDep,
    body: ModelControlRequest | None = None,
) -> Response:
    """Load ``<repository>/<model>`` (reload it when loaded: the old one serves until the
    new one is ready); a Triton configuration in ``parameters.config`` overrides its
    ``config.yaml`` where the fields map, and anything else is a 400 naming it."""
    raw = None if body is None else body.model_dump()
    await repository.load_model(registry, settings.model_repository, model_name, raw)
    return Response(status_code=200)


@router.post(
    "/v2/repository/models/{model_name}/unload",
    operation_id="repository_model_unload",
    responses={**_DONE, **AUTH, **BAD_REQUEST, **NOT_FOUND},
    response_class=Response,
    dependencies=[_REQUIRE_ADMIN],
)
async def repository_model_unload(
    model_name: str, registry: RegistryDep, body: ModelControlRequest | None = None
) -> Response:
    """Stop serving a model: queued requests still get their answers, then it closes."""
    raw = None if body is None else body.model_dump()
    await repository.unload_model(registry, model_name, raw)
    return Response(status_code=200)
