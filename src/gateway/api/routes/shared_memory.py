"""Triton's shared-memory routes (``/v2/systemsharedmemory/...``, ``/v2/cudasharedmemory/...``):
a caller registers, lists and unregisters its own regions (``gateway.protocol.shm_table``);
on several workers a change reaches every one before it is answered
(``gateway.cluster.group``). Status needs ``models:read``, a change ``models:infer``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.body import json_body
from gateway.api.dependencies import require_scopes
from gateway.api.state import app_state
from gateway.auth.principal import MODELS_INFER, MODELS_READ, Principal
from gateway.errors import InvalidInput
from gateway.protocol.shm_regions import RegionSpec
from gateway.protocol.shm_table import Kind
from gateway.validation import shown

router = APIRouter(tags=["shared memory"])
_EXTENSIONS: dict[str, Kind] = {"systemsharedmemory": "system", "cudasharedmemory": "cuda"}

Reader = Annotated[Principal, require_scopes(MODELS_READ)]
Changer = Annotated[Principal, require_scopes(MODELS_INFER)]


class RegisterRegion(BaseModel):
    """A registration's body: the shared-memory object's key and the region's part of it
    (a CUDA registration's ``raw_handle`` and ``device_id`` are accepted, then refused)."""

    model_config = ConfigDict(extra="ignore")

    key: str = Field(default="", max_length=1024)
    offset: int = Field(default=0, ge=0, le=2**62)
    byte_size: int = Field(ge=0, le=2**62)


def _add(extension: str, kind: Kind) -> None:
    async def status_all(request: Request, principal: Reader) -> list[dict[str, Any]]:
        return app_state(request.scope).control.regions.status(kind, principal.subject, None)

    async def status_one(
        request: Request, region_name: str, principal: Reader
    ) -> list[dict[str, Any]]:
        regions = app_state(request.scope).control.regions
        return regions.status(kind, principal.subject, region_name)

    async def unregister_all(request: Request, principal: Changer) -> dict[str, Any]:
        await app_state(request.scope).control.unregister_region(kind, principal.subject, None)
        return {}

    async def unregister_one(
        request: Request, region_name: str, principal: Changer
    ) -> dict[str, Any]:
        control = app_state(request.scope).control
        await control.unregister_region(kind, principal.subject, region_name)
        return {}

    async def register(request: Request, region_name: str, principal: Changer) -> dict[str, Any]:
        body = await json_body(request, RegisterRegion)
        if body is None:
            raise InvalidInput(
                f"failed to register {kind} shared memory region '{shown(region_name)}': the "
                'body must be {"key": ..., "offset": ..., "byte_size": ...}'
            )
        spec = RegionSpec(region_name, body.key, body.offset, body.byte_size)
        await app_state(request.scope).control.register_region(kind, principal.subject, spec)
        return {}

    routes = (
        ("status", "GET", "", status_all),
        ("status", "GET", "/region/{region_name}", status_one),
        ("unregister", "POST", "", unregister_all),
        ("unregister", "POST", "/region/{region_name}", unregister_one),
        ("register", "POST", "/region/{region_name}", register),
    )
    for action, method, region, handler in routes:
        router.add_api_route(
            f"/v2/{extension}{region}/{action}",
            handler,
            methods=[method],
            operation_id=f"{extension}_{action}{'_region' if region else ''}",
            summary=f"{action} ({extension})",
            # Triton's routes for Triton's clients, not operations to try in Swagger UI.
            include_in_schema=False,
        )


for _extension, _kind in _EXTENSIONS.items():
    _add(_extension, _kind)
