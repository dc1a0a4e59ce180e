"""Server metadata, liveness and readiness (Open Inference Protocol health API)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from gateway.api.dependencies import RegistryDep, SettingsDep
from gateway.api.responses import NOT_READY
from gateway.api.state import app_state
from gateway.dataplane.metadata import check_server_ready
from gateway.errors import ModelNotReady
from gateway.protocol.wire import LiveResponse, ReadyResponse, ServerMetadataResponse

router = APIRouter(tags=["health"])

SERVER_EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_repository",
    "model_configuration",
    "statistics",
    "system_shared_memory",
]
"""The protocol extensions tensorgate implements, as server metadata lists them."""


def server_version() -> str:
    """tensorgate's installed version (``0+unknown`` when run from a bare source tree)."""
    try:
        return version("tensorgate")
    except PackageNotFoundError:
        return "0+unknown"


@router.get("/v2", operation_id="server_metadata")
async def server_metadata() -> ServerMetadataResponse:
    """Name, version and protocol extensions of this server."""
    return ServerMetadataResponse(
        name="tensorgate",
        version=server_version(),
        extensions=SERVER_EXTENSIONS,
    )


@router.get("/v2/health/live", operation_id="server_live")
async def server_live() -> LiveResponse:
    """200 while the process can answer requests."""
    return LiveResponse(live=True)


@router.get("/v2/health/ready", operation_id="server_ready", responses=NOT_READY)
async def server_ready(
    request: Request, registry: RegistryDep, settings: SettingsDep
) -> ReadyResponse:
    """200 when the models the repository asks for are ready (a model is ready when one
    of its versions is), 503 otherwise and from the moment the server is told to stop."""
    if app_state(request.scope).lifecycle.draining:
        raise ModelNotReady("server is not ready: it is shutting down")
    check_server_ready(registry, require_all=settings.readiness_requires_all_models)
    return ReadyResponse(ready=True)
