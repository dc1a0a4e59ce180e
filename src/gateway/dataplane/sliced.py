"""Large request bodies: decoded while the event loop keeps serving, then queued.

``InferenceService.submit`` decodes a body in one go, which is right for the small bodies
of the hot path; a body of megabytes would hold the event loop for hundreds of
milliseconds that way (docs/protocol.md#large-json-bodies). Here the codec's
``decode_large`` runs first, awaited, and ``submit`` then queues what it decoded.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.batching.observer import BatchTrace
from gateway.dataplane.codecs import DecodedRequest, DecodingRules, RequestCodec, Slicing
from gateway.dataplane.inference import Admission, InferenceService, PendingInference


class _Decoded:
    """A codec that answers with a request already decoded under ``rules``; under other
    rules (the version was swapped while the body was decoded) it decodes afresh."""

    def __init__(self, codec: RequestCodec, rules: DecodingRules, decoded: DecodedRequest) -> None:
        self._codec = codec
        self._rules = rules
        self._decoded = decoded

    @property
    def route(self) -> str:
        """The decoding codec's route family."""
        return self._codec.route

    def decode(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        subject: str | None = None,
    ) -> DecodedRequest:
        """The request decoded before, when ``model`` is what it was decoded under."""
        if model == self._rules:
            return self._decoded
        return self._codec.decode(body, headers, model, subject)

    async def decode_large(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        slicing: Slicing,
        subject: str | None = None,
    ) -> DecodedRequest:
        """As ``decode``."""
        del slicing
        return self.decode(body, headers, model, subject)


async def submit_sliced(
    service: InferenceService,
    codec: RequestCodec,
    admission: Admission,
    body: bytes,
    headers: Mapping[str, str],
    slicing: Slicing,
    trace: BatchTrace | None = None,
    subject: str | None = None,
) -> PendingInference:
    """``service.submit`` for a large body, decoded with ``codec.decode_large`` first: the
    same answers and errors, with the event loop free while the tensors are decoded."""
    model = admission.model
    if not model.accepting:
        model = service.registry.route(admission.name, admission.version, admission.key)
    rules = service.decoding_rules(model)
    decoded = await codec.decode_large(body, headers, rules, slicing, subject)
    return service.submit(
        _Decoded(codec, rules, decoded), admission, body, headers, trace, subject=subject
    )
