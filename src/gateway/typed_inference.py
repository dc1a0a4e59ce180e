"""Typed predictions: decode a typed body, run it on the shared inference path, encode."""

from __future__ import annotations

from backends.base import Array
from gateway.inference import InferenceService, PendingInference
from gateway.registry import ModelVersion
from gateway.typed_codec import decode_typed_request, encode_typed_response


def submit_prediction(
    service: InferenceService, model: ModelVersion, body: bytes, timeout_header: str | None
) -> PendingInference:
    """Decode one typed request for a resolved, ready version and queue it."""
    backend = model.backend
    assert backend is not None  # ModelRegistry.resolve returns ready versions only
    arrays, outputs = decode_typed_request(
        body, backend.signature, allow_non_finite=model.config.allow_non_finite
    )

    def encode(version: ModelVersion, results: dict[str, Array]) -> bytes:
        return encode_typed_response(version.name, version.version, results, outputs)

    future = service.submit_arrays(model, arrays, outputs, timeout_header)
    return PendingInference(model, future, encode)
