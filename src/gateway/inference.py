"""The transport-agnostic inference path: decode a request, run it, encode the response."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from backends.base import Array, ModelSignature
from backends.errors import InferenceError
from gateway.codec import decode_inputs, dumps, encode_tensor, parse_json
from gateway.errors import BackendError, InvalidInput
from gateway.protocol import InferenceRequest, RequestOutput
from gateway.registry import ModelRegistry, ModelVersion

logger = logging.getLogger(__name__)

BINARY_HEADER = "inference-header-content-length"
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


class InferenceService:
    """Runs Open Inference Protocol requests against the registry's models."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    async def infer_json(
        self, name: str, version: str | None, body: bytes, headers: Mapping[str, str]
    ) -> bytes:
        """Answer one JSON inference request with the JSON response body."""
        model = self._registry.resolve(name, version)
        if BINARY_HEADER in headers:
            raise InvalidInput(f"header Inference-Header-Content-Length: {_BINARY_HINT}")
        allow_non_finite = model.config.allow_non_finite
        request = parse_request(parse_json(body, allow_non_finite=allow_non_finite))
        reject_binary_extension(request)
        backend = model.backend
        assert backend is not None  # resolve() returns ready versions only
        outputs = select_outputs(request.outputs, backend.signature)
        inputs = decode_inputs(request.inputs, backend.signature, allow_non_finite=allow_non_finite)
        results = await self.infer_arrays(model, inputs, outputs)
        document: dict[str, Any] = {
            "model_name": model.name,
            "model_version": str(model.version),
            "outputs": [encode_tensor(out, results[out]) for out in outputs],
        }
        if request.id is not None:
            document["id"] = request.id
        return dumps(document)

    async def infer_arrays(
        self, model: ModelVersion, inputs: dict[str, Array], outputs: list[str]
    ) -> dict[str, Array]:
        """Run decoded, signature-checked arrays on a resolved version: the one inference path.

        Protocol and typed routes both end here, so both share batching and error mapping.
        """
        backend = model.backend
        assert backend is not None
        try:
            return await backend.infer(inputs, outputs)
        except InferenceError as exc:
            logger.error(
                "inference failed in model %s version %d (%s): %s",
                model.name,
                model.version,
                exc.kind,
                exc,
            )
            if exc.kind == "InvalidArgument":
                raise InvalidInput(
                    f"model '{model.name}' rejected the inputs (InvalidArgument); compare "
                    f"them with GET /v2/models/{model.name}"
                ) from None
            raise BackendError(
                f"inference failed in model '{model.name}' version {model.version} ({exc.kind})"
            ) from None
        except Exception:
            # A backend broke its contract; never let its internals reach the client.
            logger.exception("backend of model %s version %d crashed", model.name, model.version)
            raise BackendError(
                f"inference failed in model '{model.name}' version {model.version} (internal error)"
            ) from None
