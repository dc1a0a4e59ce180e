"""Typed predictions: decode a typed body, run it on the shared inference path, encode."""

from __future__ import annotations

from gateway.inference import InferenceService
from gateway.registry import ModelVersion
from gateway.typed_codec import decode_typed_request, encode_typed_response


async def predict(service: InferenceService, model: ModelVersion, body: bytes) -> bytes:
    """Answer one typed request for a resolved, ready model version."""
    backend = model.backend
    assert backend is not None  # ModelRegistry.resolve returns ready versions only
    arrays, outputs = decode_typed_request(
        body, backend.signature, allow_non_finite=model.config.allow_non_finite
    )
    results = await service.infer_arrays(model, arrays, outputs)
    return encode_typed_response(model.name, model.version, results, outputs)
