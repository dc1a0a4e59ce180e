"""Which requests the pipeline answers: the protocol and typed inference paths."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

from gateway.dataplane.codecs import PROTOCOL_JSON, TYPED_JSON, RequestCodec


@dataclass(frozen=True, slots=True)
class InferenceTarget:
    """The model and version a request names, and the codec of its route."""

    model: str
    version: str | None
    codec: RequestCodec
    route: str
    """The path template, as the OpenAPI document and the HTTP metrics name it."""


def inference_target(scope: Scope) -> InferenceTarget | None:
    """The target of an HTTP request to an inference path (any method), else None.

    ``/v2/models/{m}[/versions/{v}]/infer`` (the protocol) and
    ``/models/{m}[/versions/{v}]/predict`` (typed routes).
    """
    if scope["type"] != "http":
        return None
    parts = scope["path"].split("/")
    last = parts[-1]
    if last == "infer" and parts[1:3] == ["v2", "models"]:
        return _target(parts[3:-1], PROTOCOL_JSON, _PROTOCOL_ROUTES)
    if last == "predict" and parts[1] == "models":
        return _target(parts[2:-1], TYPED_JSON, _TYPED_ROUTES)
    return None


_PROTOCOL_ROUTES = (
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}/infer",
)
_TYPED_ROUTES = (
    "/models/{model_name}/predict",
    "/models/{model_name}/versions/{model_version}/predict",
)


def _target(
    middle: list[str], codec: RequestCodec, routes: tuple[str, str]
) -> InferenceTarget | None:
    """``[m]`` or ``[m, "versions", v]``, names non-empty."""
    if len(middle) == 1 and middle[0]:
        return InferenceTarget(middle[0], None, codec, routes[0])
    if len(middle) == 3 and middle[0] and middle[1] == "versions" and middle[2]:
        return InferenceTarget(middle[0], middle[2], codec, routes[1])
    return None
