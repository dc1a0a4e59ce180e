"""The transport-agnostic inference path: decode a request, run it, encode the response."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from backends.base import Array, ModelSignature
from backends.errors import InferenceError
from gateway.codec import decode_inputs, dumps, encode_tensor, parse_json
from gateway.errors import BackendError, GatewayError, InvalidInput
from gateway.protocol import InferenceRequest, RequestOutput
from gateway.registry import ModelRegistry, ModelVersion

logger = logging.getLogger(__name__)

BINARY_HEADER = "inference-header-content-length"
TIMEOUT_HEADER = "x-request-timeout-ms"
_BINARY_HINT = (
    "the binary tensor data extension is not supported yet; send tensors as JSON "
    "(with tritonclient: binary_data=False on inputs and requested outputs)"
)


def _describe_validation(error: ValidationError, raw: Mapping[str, Any]) -> str:
    """Pydantic errors as 'inputs[0] (pixels).shape[1]: message'."""
    parts = []
    for item in error.errors():
        loc = item["loc"]
        where = ""
        for index, part in enumerate(loc):
            if isinstance(part, int):
                where += f"[{part}]"
                name = _input_name(raw, loc[: index + 1])
                where += f" ({name})" if name else ""
            else:
                where += f".{part}" if where else str(part)
        parts.append(f"{where or 'request'}: {item['msg']}")
    return "invalid inference request: " + "; ".join(parts[:5])


def _input_name(raw: Mapping[str, Any], loc: tuple[int | str, ...]) -> str | None:
    if len(loc) != 2 or loc[0] not in ("inputs", "outputs"):
        return None
    items = raw.get(str(loc[0]))
    index = loc[1]
    if isinstance(items, list) and isinstance(index, int) and index < len(items):
        item = items[index]
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            return str(item["name"])[:64]
    return None


def parse_request(raw: Any) -> InferenceRequest:
    """Validate the envelope of a parsed body."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(raw).__name__}")
    try:
        return InferenceRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(_describe_validation(exc, raw)) from None


def reject_binary_extension(request: InferenceRequest) -> None:
    """Refuse requests that ask for binary tensor data in or out."""
    params = request.parameters or {}
    if params.get("binary_data_output") is True:
        raise InvalidInput(f"parameter binary_data_output=true: {_BINARY_HINT}")
    for inp in request.inputs:
        if inp.parameters and "binary_data_size" in inp.parameters:
            raise InvalidInput(f"input '{inp.name}' has binary_data_size: {_BINARY_HINT}")
    for out in request.outputs or ():
        if out.parameters and out.parameters.get("binary_data") is True:
            raise InvalidInput(f"output '{out.name}' asks for binary_data: {_BINARY_HINT}")


def select_outputs(requested: list[RequestOutput] | None, signature: ModelSignature) -> list[str]:
    """Names of the outputs to compute, in request order; all outputs when none named."""
    if not requested:
        return [spec.name for spec in signature.outputs]
    names: list[str] = []
    known = ", ".join(spec.name for spec in signature.outputs)
    for out in requested:
        if out.name in names:
            raise InvalidInput(f"output '{out.name}' is requested more than once")
        if signature.output(out.name) is None:
            raise InvalidInput(f"unknown output '{out.name}'; the model's outputs are: {known}")
        names.append(out.name)
    return names


def request_timeout_s(
    parameters: Mapping[str, Any] | None, header: str | None, default_ms: float | None
) -> float | None:
    """The request's deadline in seconds from now, or None for no deadline.

    Order: the protocol's ``parameters.timeout`` (microseconds, as Triton's client sends
    it), then the ``X-Request-Timeout-Ms`` header, then the model's default. A timeout
    of 0 means "not set", as in Triton.
    """
    value = (parameters or {}).get("timeout")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(
                f"parameter timeout must be a non-negative integer of microseconds, got {value!r}"
            )
        if value > 0:
            return value / 1_000_000
    if header is not None:
        try:
            millis = float(header)
        except ValueError:
            millis = -1.0
        if not millis >= 0 or millis == float("inf"):
            raise InvalidInput(
                "header X-Request-Timeout-Ms must be a non-negative number of milliseconds, "
                f"got {header[:32]!r}"
            )
        if millis > 0:
            return millis / 1000
    return None if default_ms is None else default_ms / 1000


ResponseEncoder = Callable[[ModelVersion, dict[str, Array]], bytes]
"""Writes a response body from a version's outputs (protocol or typed shape)."""


class PendingInference:
    """A request admitted to its model's queue; ``result`` waits for the response body,
    written by the request's own ``encode`` (protocol or typed routes)."""

    __slots__ = ("_encode", "_model", "future")

    def __init__(
        self,
        model: ModelVersion,
        future: asyncio.Future[dict[str, Array]],
        encode: ResponseEncoder,
    ) -> None:
        self.future = future
        self._model = model
        self._encode = encode

    def cancel(self) -> None:
        """Withdraw the request (its client went away); it is skipped if still queued."""
        self.future.cancel()

    async def result(self) -> bytes:
        """The JSON response body once the request's batch has run."""
        return self._encode(self._model, await outputs_of(self._model, self.future))


def protocol_response(request_id: str | None, outputs: list[str]) -> ResponseEncoder:
    """The encoder of an Open Inference Protocol response naming ``outputs``."""

    def encode(model: ModelVersion, results: dict[str, Array]) -> bytes:
        document: dict[str, Any] = {
            "model_name": model.name,
            "model_version": str(model.version),
            "outputs": [encode_tensor(out, results[out]) for out in outputs],
        }
        if request_id is not None:
            document["id"] = request_id
        return dumps(document)

    return encode


async def outputs_of(
    model: ModelVersion, future: asyncio.Future[dict[str, Array]]
) -> dict[str, Array]:
    """Wait for a queued request's outputs; backend failures become safe domain errors."""
    try:
        return await future
    except GatewayError:
        raise  # the queue's own answers: 504, 503
    except InferenceError as exc:
        raise _inference_failure(model, exc) from None
    except Exception:
        # A backend broke its contract; never let its internals reach the client.
        logger.exception("backend of %s crashed", model.label)
        raise BackendError(
            f"inference failed in model '{model.name}' version {model.version} (internal error)"
        ) from None


def _inference_failure(model: ModelVersion, exc: InferenceError) -> Exception:
    logger.error(
        "inference failed in %s (%s): %s",
        model.label,
        exc.kind,
        exc,
    )
    if exc.kind == "InvalidArgument":
        return InvalidInput(
            f"model '{model.name}' rejected the inputs (InvalidArgument); compare "
            f"them with GET /v2/models/{model.name}"
        )
    return BackendError(
        f"inference failed in model '{model.name}' version {model.version} ({exc.kind})"
    )


class InferenceService:
    """Runs Open Inference Protocol requests against the registry's models."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    def check_admission(self, name: str, version: str | None) -> None:
        """Refuse at once (404, 503) what could not be queued, before the body is read."""
        batcher = self._registry.resolve(name, version).batcher
        assert batcher is not None  # resolve() returns ready versions only
        batcher.check_admission()

    def submit_json(
        self, name: str, version: str | None, body: bytes, headers: Mapping[str, str]
    ) -> PendingInference:
        """Decode one JSON request and queue it; raises at once when it cannot be admitted.

        ``headers`` maps lower-case header names to values.
        """
        model = self._registry.resolve(name, version)
        if BINARY_HEADER in headers:
            raise InvalidInput(f"header Inference-Header-Content-Length: {_BINARY_HINT}")
        config = model.config
        request = parse_request(parse_json(body, allow_non_finite=config.allow_non_finite))
        reject_binary_extension(request)
        backend, batcher = model.backend, model.batcher
        assert backend is not None
        assert batcher is not None
        outputs = select_outputs(request.outputs, backend.signature)
        inputs = decode_inputs(
            request.inputs, backend.signature, allow_non_finite=config.allow_non_finite
        )
        timeout = request_timeout_s(
            request.parameters, headers.get(TIMEOUT_HEADER), config.batching.default_timeout_ms
        )
        future = batcher.submit(inputs, outputs, timeout)
        return PendingInference(model, future, protocol_response(request.id, outputs))

    def submit_arrays(
        self,
        model: ModelVersion,
        inputs: dict[str, Array],
        outputs: list[str],
        timeout_header: str | None = None,
    ) -> asyncio.Future[dict[str, Array]]:
        """Queue decoded, signature-checked arrays on a resolved version: the one inference
        path. Protocol and typed routes both end in the version's batcher, so both share
        batching, the queue bound, deadlines and error mapping. ``timeout_header`` is the
        ``X-Request-Timeout-Ms`` value, if any; else the model's default deadline."""
        batcher = model.batcher
        assert batcher is not None  # resolve() returns ready versions only
        default_ms = model.config.batching.default_timeout_ms
        timeout = request_timeout_s(None, timeout_header, default_ms)
        return batcher.submit(inputs, outputs, timeout)

    async def infer_json(
        self, name: str, version: str | None, body: bytes, headers: Mapping[str, str]
    ) -> bytes:
        """Answer one JSON inference request with the JSON response body."""
        return await self.submit_json(name, version, body, headers).result()
