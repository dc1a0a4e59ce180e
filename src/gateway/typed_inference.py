"""Typed predictions: decode a typed body, run it on the shared inference path, encode."""

from __future__ import annotations

import asyncio

from backends.base import Array
from gateway.inference import InferenceService, outputs_of
from gateway.registry import ModelVersion
from gateway.typed_codec import decode_typed_request, encode_typed_response


class PendingPrediction:
    """A typed request admitted to its model's queue; ``result`` waits for the body."""

    __slots__ = ("_model", "_outputs", "future")

    def __init__(
        self, model: ModelVersion, outputs: list[str], future: asyncio.Future[dict[str, Array]]
    ) -> None:
        self._model = model
        self._outputs = outputs
        self.future = future

    def cancel(self) -> None:
        """Withdraw the request (its client went away); it is skipped if still queued."""
        self.future.cancel()

    async def result(self) -> bytes:
        """The JSON response body once the request's batch has run."""
        model = self._model
        results = await outputs_of(model, self.future)
        return encode_typed_response(model.name, model.version, results, self._outputs)


def submit_prediction(
    service: InferenceService, model: ModelVersion, body: bytes, timeout_header: str | None
) -> PendingPrediction:
    """Decode one typed request for a resolved, ready version and queue it."""
    backend = model.backend
    assert backend is not None  # ModelRegistry.resolve returns ready versions only
    arrays, outputs = decode_typed_request(
        body, backend.signature, allow_non_finite=model.config.allow_non_finite
    )
    future = service.submit_arrays(model, arrays, outputs, timeout_header)
    return PendingPrediction(model, outputs, future)
