"""Scope names and the principal: who called, and what their token lets them do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import Forbidden

MODELS_READ = "models:read"
MODELS_INFER = "models:infer"
METRICS_READ = "metrics:read"
ADMIN = "admin"

# One table for the docs and the OpenAPI description.
SCOPE_DESCRIPTIONS = {
    MODELS_READ: "model metadata, model readiness and the repository index",
    MODELS_INFER: "inference on every model",
    f"{MODELS_INFER}:<model_name>": "inference on that one model",
    METRICS_READ: "the /metrics endpoint when auth.protect_metrics is on",
    ADMIN: "repository control (load and unload models)",
}


def infer_scope(model_name: str) -> str:
    """The scope that allows inference on ``model_name`` alone."""
    return f"{MODELS_INFER}:{model_name}"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: subject, granted scopes and the verified claims."""

    subject: str
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(default_factory=dict)
    unrestricted: bool = False

    @classmethod
    def anonymous(cls) -> Principal:
        """The caller when authentication is disabled: allowed everything."""
        return cls(subject="anonymous", scopes=frozenset(), unrestricted=True)

    def allows(self, scope: str) -> bool:
        """Whether the granted scopes cover ``scope`` (``models:infer`` covers each model)."""
        if self.unrestricted or scope in self.scopes:
            return True
        return scope.startswith(f"{MODELS_INFER}:") and MODELS_INFER in self.scopes

    def require(self, scope: str) -> None:
        """Raise ``Forbidden`` naming the missing scope unless it is granted."""
        if not self.allows(scope):
            raise Forbidden(f"the token lacks the scope '{scope}' this route needs", scope=scope)

    def require_infer(self, model_name: str) -> None:
        """Raise ``Forbidden`` unless ``models:infer`` or ``models:infer:<model_name>`` is held."""
        if self.unrestricted or MODELS_INFER in self.scopes:  # the usual grant, per request
            return
        if not self.allows(infer_scope(model_name)):
            raise Forbidden(
                f"the token lacks the scope '{MODELS_INFER}' or '{infer_scope(model_name)}' "
                "this route needs",
                scope=f"{MODELS_INFER} {infer_scope(model_name)}",
            )


def parse_scopes(claims: Mapping[str, Any]) -> frozenset[str] | None:
    """Scopes from ``scope`` (space-separated) and ``scp`` (list or string); None if malformed."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            granted.update(item for item in value if item)
        else:
            return None
    return frozenset(granted)
