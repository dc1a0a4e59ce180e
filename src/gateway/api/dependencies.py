"""Typed dependencies; the only module that reads ``request.state``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from gateway.auth import Authenticator
from gateway.errors import Unauthorized
from gateway.inference import InferenceService
from gateway.metrics import GatewayMetrics
from gateway.registry import ModelRegistry
from gateway.scopes import (
    ADMIN,
    METRICS_READ,
    MODELS_INFER,
    MODELS_READ,
    SCOPE_DESCRIPTIONS,
    Principal,
    infer_scope,
)
from gateway.settings import Settings

logger = logging.getLogger("gateway.access")

BEARER_SCHEME = "bearerAuth"

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
    registry: ModelRegistry = request.state.registry
    return registry


def _inference(request: Request) -> InferenceService:
    service: InferenceService = request.state.inference
    return service


def _settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def _metrics(request: Request) -> GatewayMetrics:
    metrics: GatewayMetrics = request.state.metrics
    return metrics


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.state.authenticator
    return authenticator


async def _authenticate(request: Request) -> Principal:
    authenticator = _authenticator(request)
    try:
        principal = await authenticator.authenticate(request.headers.get("authorization"))
    except Unauthorized as exc:
        logger.info("%s %s refused: %s", request.method, request.url.path, exc.message)
        raise
    # The subject, never the token: it is what the access log needs to say who called.
    logger.info("%s %s sub=%r", request.method, request.url.path, principal.subject)
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


async def _infer_scoped(model_name: str, principal: CurrentPrincipal) -> Principal:
    principal.require_infer(model_name)
    return principal


def require_scopes(*scopes: str) -> Any:
    """A route dependency needing every one of ``scopes`` (declared in OpenAPI too)."""
    return Security(_scoped, scopes=list(scopes))


ReadPrincipal = Annotated[Principal, require_scopes(MODELS_READ)]
AdminPrincipal = Annotated[Principal, require_scopes(ADMIN)]
# Needs a ``model_name`` path parameter: ``models:infer`` or ``models:infer:<model_name>``.
InferPrincipal = Annotated[Principal, Security(_infer_scoped, scopes=[MODELS_INFER])]

REQUIRE_READ = require_scopes(MODELS_READ)
REQUIRE_ADMIN = require_scopes(ADMIN)
REQUIRE_INFER = Security(_infer_scoped, scopes=[MODELS_INFER])

# OpenAPI security requirements are alternatives: the per-model scope also suffices.
INFER_SECURITY: dict[str, Any] = {
    "security": [{BEARER_SCHEME: [f"{MODELS_INFER}:{{model_name}}"]}],
}


def require_infer_on(model_name: str) -> Any:
    """For one model's typed routes: ``models:infer`` or ``models:infer:<model_name>``."""

    async def _guard(principal: CurrentPrincipal) -> Principal:
        principal.require_infer(model_name)
        return principal

    return Security(_guard, scopes=[MODELS_INFER])


def infer_security(model_name: str) -> dict[str, Any]:
    """OpenAPI security of one model's typed routes: the per-model scope also suffices."""
    return {"security": [{BEARER_SCHEME: [infer_scope(model_name)]}]}


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
InferenceDep = Annotated[InferenceService, Depends(_inference)]
SettingsDep = Annotated[Settings, Depends(_settings)]
AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
