"""Triton's shared-memory extensions, which tensorgate does not implement: a clear 400.

A client probing ``/v2/systemsharedmemory/...`` or ``/v2/cudasharedmemory/...`` learns
that the extension is unsupported, rather than "no such route".
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.dependencies import REQUIRE_READ
from gateway.errors import InvalidInput

router = APIRouter(tags=["shared memory"], dependencies=[REQUIRE_READ])
_EXTENSIONS = {"systemsharedmemory": "system", "cudasharedmemory": "CUDA"}


def _unsupported(extension: str) -> InvalidInput:
    kind = _EXTENSIONS[extension]
    return InvalidInput(
        f"the {kind} shared-memory extension ({extension}) is not supported by tensorgate: "
        "send tensors in the request body (JSON or binary tensor data); GET /v2 lists the "
        "extensions this server implements"
    )


def _add(extension: str) -> None:
    async def refuse() -> None:
        raise _unsupported(extension)

    async def refuse_region(region_name: str) -> None:  # noqa: ARG001 (declares the path)
        raise _unsupported(extension)

    for action, method in (("status", "GET"), ("register", "POST"), ("unregister", "POST")):
        for region, handler in (("", refuse), ("/region/{region_name}", refuse_region)):
            suffix = "_region" if region else ""
            router.add_api_route(
                f"/v2/{extension}{region}/{action}",
                handler,
                methods=[method],
                operation_id=f"{extension}_{action}{suffix}",
                summary=f"{action} ({extension}): not supported, always 400",
                status_code=400,
                # Not operations of this server: undocumented, as Triton's unused routes.
                include_in_schema=False,
            )


for _extension in _EXTENSIONS:
    _add(_extension)
