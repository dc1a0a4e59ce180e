"""Typed dependencies; the only module that reads ``request.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.inference import InferenceService
from gateway.metrics import GatewayMetrics
from gateway.registry import ModelRegistry
from gateway.settings import Settings


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


RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
InferenceDep = Annotated[InferenceService, Depends(_inference)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[GatewayMetrics, Depends(_metrics)]
