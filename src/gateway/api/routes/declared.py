"""Operations the OpenAPI document describes but FastAPI never routes.

The inference paths are answered by ``api.pipeline`` before FastAPI sees the request, so
their operations are declared here as ``APIRoute`` objects that are never mounted on the
app's router: ``build_openapi`` reads them, and no handler exists to drift from the
pipeline. FastAPI reads an operation's path parameters from a callable's signature, so
each declaration gets a callable that has one and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from gateway.api.dependencies import INFER_SECURITY_DECLARATION


def _signature_only(name: str, path_parameters: tuple[str, ...]) -> Callable[..., Any]:
    def operation(**_: str) -> None:
        raise AssertionError(f"{name} is declared for the OpenAPI document, never routed")

    operation.__name__ = name
    operation.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(param, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
            for param in path_parameters
        ]
    )
    return operation


def declare_inference(path: str, *, name: str, **route: Any) -> APIRoute:
    """A ``POST`` inference operation on ``path``, needing ``models:infer`` (or more
    alternatives via ``openapi_extra``) as the pipeline enforces it."""
    parameters = tuple(part[1:-1] for part in path.split("/") if part.startswith("{"))
    return APIRoute(
        path,
        _signature_only(name, parameters),
        methods=["POST"],
        dependencies=[INFER_SECURITY_DECLARATION],
        **route,
    )
