"""Typed dependencies of the FastAPI routes; each reads the lifespan state via ``app_state``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from gateway.api.exchange import exchange_of
from gateway.api.state import app_state
from gateway.auth.principal import (
    METRICS_READ,
    MODELS_INFER,
    MODELS_READ,
    SCOPE_DESCRIPTIONS,
    Principal,
    infer_scope,
)
from gateway.cluster.control import RepositoryControl
from gateway.errors import Unauthorized
from gateway.metrics import GatewayMetrics
from gateway.repository.registry import ModelRegistry
from gateway.repository.versions import VERSION_OR_LABEL_PATTERN
from gateway.settings import Settings

BEARER_SCHEME = "bearerAuth"

VersionPath = Annotated[
    str,
    Path(
        description="A version number (1, 12) or one of the model's version labels (canary)",
        # In the schema only: the route's own check answers in Triton's words (400/404).
        json_schema_extra={"pattern": VERSION_OR_LABEL_PATTERN},
    ),
]
"""The ``{model_version}`` segment of a route."""

# Declares the scheme in OpenAPI (Swagger UI's Authorize dialog); the header itself is
# parsed by the Authenticator, so auto_error stays off and its result is unused.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    bearerFormat="JWT",
    description="A JWT in `Authorization: Bearer <token>`. Scopes: "
    + "; ".join(f"`{scope}`: {text}" for scope, text in SCOPE_DESCRIPTIONS.items())
    + ". `tensorgate token` mints one in development.",
)


def _registry(request: Request) -> ModelRegistry:
    return app_state(request.scope).registry


def _control(request: Request) -> RepositoryControl:
    return app_state(request.scope).control


def _settings(request: Request) -> Settings:
    return app_state(request.scope).settings


def _metrics(request: Request) -> GatewayMetrics:
    return app_state(request.scope).metrics


async def _authenticate(request: Request) -> Principal:
    """The caller, its subject (or why it was refused) noted for the access log."""
    authenticator = app_state(request.scope).authenticator
    exchange = exchange_of(request.scope)
    try:
        principal = await authenticator.authenticate(request.headers.get("authorization"))
    except Unauthorized as exc:
        if exchange is not None:
            exchange.failed(exc.message)
        raise
    if exchange is not None:
        exchange.subject = principal.subject
    return principal


async def _principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await _authenticate(request)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


async def _scoped(security_scopes: SecurityScopes, principal: CurrentPrincipal) -> Principal:
    for scope in security_scopes.scopes:
        principal.require(scope)
    return principal


def require_scopes(*scopes: str) -> Any:
    """A route dependency needing every one of ``scopes`` (declared in OpenAPI too)."""
    return Security(_scoped, scopes=list(scopes))


REQUIRE_READ = require_scopes(MODELS_READ)

# The inference routes' security in the OpenAPI document. The pipeline enforces it
# (``api.pipeline.endpoint``); these only declare it.
INFER_SECURITY_DECLARATION = Security(_principal, scopes=[MODELS_INFER])


def infer_security(model_placeholder: str) -> dict[str, Any]:
    """OpenAPI security alternatives of inference on one model: ``models:infer`` (declared
    by ``INFER_SECURITY_DECLARATION``) or the per-model scope."""
    return {"security": [{BEARER_SCHEME: [infer_scope(model_placeholder)]}]}


async def _docs_access(request: Request) -> None:
    if _settings(request).auth.protect_docs:
        await _authenticate(request)


async def _metrics_access(request: Request) -> None:
    if _settings(request).auth.protect_metrics:
        (await _authenticate(request)).require(METRICS_READ)


# Not declared in OpenAPI on purpose: whether they need a token is a deployment setting.
DOCS_ACCESS = Depends(_docs_access)
METRICS_ACCESS = Depends(_metrics_access)

RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ControlDep = Annotated[RepositoryControl, Depends(_control)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
