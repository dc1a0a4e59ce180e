"""The inference request's envelope: validated, binary extension refused, outputs chosen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from backends.base import ModelSignature
from gateway.errors import InvalidInput
from gateway.protocol.wire import InferenceRequest, RequestOutput
from gateway.validation import Location, NameAt, describe_errors

BINARY_HINT = (
    "the binary tensor data extension is not supported yet; send tensors as JSON "
    "(with tritonclient: binary_data=False on inputs and requested outputs)"
)


def _item_name(raw: Mapping[str, Any]) -> NameAt:
    def name_at(loc: Location) -> str | None:
        if len(loc) != 2 or loc[0] not in ("inputs", "outputs"):
            return None
        items = raw.get(str(loc[0]))
        index = loc[1]
        if isinstance(items, list) and isinstance(index, int) and index < len(items):
            item = items[index]
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                return str(item["name"])[:64]
        return None

    return name_at


def parse_request(raw: Any) -> InferenceRequest:
    """Validate the envelope of a parsed body."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(raw).__name__}")
    try:
        return InferenceRequest.model_validate(raw)
    except ValidationError as exc:
        detail = describe_errors(exc.errors(), name_at=_item_name(raw))
        raise InvalidInput(f"invalid inference request: {detail}") from None


def reject_binary_extension(request: InferenceRequest) -> None:
    """Refuse requests that ask for binary tensor data in or out."""
    params = request.parameters or {}
    if params.get("binary_data_output") is True:
        raise InvalidInput(f"parameter binary_data_output=true: {BINARY_HINT}")
    for inp in request.inputs:
        if inp.parameters and "binary_data_size" in inp.parameters:
            raise InvalidInput(f"input '{inp.name}' has binary_data_size: {BINARY_HINT}")
    for out in request.outputs or ():
        if out.parameters and out.parameters.get("binary_data") is True:
            raise InvalidInput(f"output '{out.name}' asks for binary_data: {BINARY_HINT}")


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
