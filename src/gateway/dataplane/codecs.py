"""The request codecs of the inference routes: all that differs between them.

A codec turns a request body into checked arrays and names the outputs to compute; the
response encoder it returns writes the body of the answer. Everything else (admission,
auth, deadlines, batching, disconnects, metrics, errors) is one pipeline for all codecs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from backends.base import Array, ModelSignature
from gateway.protocol.request_codec import (
    ProtocolRequest,
    decode_protocol_request,
    encode_protocol_response,
)
from gateway.protocol.shm_table import SharedMemoryTable
from gateway.protocol.sliced_request import decode_large_request
from gateway.typed.codec import decode_typed_request, encode_typed_response

ResponseEncoder = Callable[[str, int, Mapping[str, Array]], bytes]
"""Writes a response body from (model name, version, outputs)."""


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """What a codec read from one request."""

    inputs: dict[str, Array]
    outputs: list[str]
    parameters: Mapping[str, Any] | None
    """Protocol parameters (``timeout`` sets the deadline); None on typed routes."""
    encode: ResponseEncoder


@dataclass(frozen=True, slots=True)
class DecodingRules:
    """What a codec checks a request against: the model's and its config's part."""

    signature: ModelSignature
    allow_non_finite: bool = False
    max_rows: int | None = None
    """Most rows on the batch axis (``PayloadTooLarge`` past it, checked before the data)."""
    labels: Mapping[str, Sequence[str]] | None = None
    """Class labels by output name, for the classification extension."""
    regions: SharedMemoryTable | None = None
    """The callers' shared-memory regions (None: no tensor can be in shared memory)."""


class RequestCodec(Protocol):
    """Decodes one route family's request bodies."""

    @property
    def route(self) -> str:
        """The route family, as metrics and logs name it."""
        ...

    def decode(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        subject: str | None = None,
    ) -> DecodedRequest:
        """The request's arrays and outputs; ``InvalidInput`` when it does not fit the
        ``model``'s rules, ``PayloadTooLarge`` past its ``max_rows``. ``subject``: the
        caller, whose shared-memory regions the request may name."""
        ...

    async def decode_large(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        slicing: Slicing,
        subject: str | None = None,
    ) -> DecodedRequest:
        """What ``decode`` returns (or raises) for a large body, giving the event loop
        back while it works where the codec can (``slicing``)."""
        ...


@dataclass(frozen=True, slots=True)
class Slicing:
    """How a large body is decoded in slices (``gateway.protocol.sliced_request``)."""

    slice_bytes: int
    """About how much of a tensor's text is decoded between two turns of the loop."""
    abandoned: Callable[[], bool]
    """True once nobody waits for the result (the client left): the decode stops."""


class ProtocolJsonCodec:
    """Open Inference Protocol JSON (``POST /v2/models/.../infer``), with the binary tensor
    data extension; a response with binary outputs is a ``BinaryBody``."""

    route = "infer"

    def decode(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        subject: str | None = None,
    ) -> DecodedRequest:
        """Decode the envelope and tensors (JSON, binary or in the ``subject``'s shared
        memory); the response echoes the request id, sends the outputs asked for as binary
        data that way, those asked for as classifications as their top-k classes (with
        ``labels``), and writes those named in shared memory there."""
        request = decode_protocol_request(
            body,
            headers,
            model.signature,
            allow_non_finite=model.allow_non_finite,
            max_rows=model.max_rows,
            callers=(model.regions, subject),
        )
        return _answered(request, model.labels)

    async def decode_large(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        slicing: Slicing,
        subject: str | None = None,
    ) -> DecodedRequest:
        """``decode``, with each large JSON ``data`` array decoded in slices."""
        request = await decode_large_request(
            body,
            headers,
            model.signature,
            allow_non_finite=model.allow_non_finite,
            max_rows=model.max_rows,
            slice_bytes=slicing.slice_bytes,
            abandoned=slicing.abandoned,
            callers=(model.regions, subject),
        )
        return _answered(request, model.labels)


def _answered(
    request: ProtocolRequest, labels: Mapping[str, Sequence[str]] | None
) -> DecodedRequest:
    """A decoded protocol request, with the response encoder its answer needs."""
    request_id, outputs, binary = request.id, request.outputs, request.binary_outputs
    classifications, regions = request.classifications, request.regions

    def encode(name: str, version: int, results: Mapping[str, Array]) -> bytes:
        return encode_protocol_response(
            name, version, request_id, outputs, results, binary, classifications, labels, regions
        )

    return DecodedRequest(request.inputs, outputs, request.parameters, encode)


class TypedJsonCodec:
    """Typed per-model bodies (``POST /models/<name>/predict``)."""

    route = "predict"

    def decode(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        subject: str | None = None,
    ) -> DecodedRequest:
        """Decode ``{"inputs": {name: nested lists}}``; no header changes how, and no
        tensor is in shared memory."""
        del headers, subject
        inputs, outputs = decode_typed_request(
            body, model.signature, allow_non_finite=model.allow_non_finite, max_rows=model.max_rows
        )

        def encode(name: str, version: int, results: Mapping[str, Array]) -> bytes:
            return encode_typed_response(name, version, results, outputs)

        return DecodedRequest(inputs, outputs, None, encode)

    async def decode_large(
        self,
        body: bytes,
        headers: Mapping[str, str],
        model: DecodingRules,
        slicing: Slicing,
        subject: str | None = None,
    ) -> DecodedRequest:
        """``decode``: typed bodies are not sliced yet (their arrays are keyed by name)."""
        del slicing, subject
        return self.decode(body, headers, model)


PROTOCOL_JSON = ProtocolJsonCodec()
TYPED_JSON = TypedJsonCodec()
