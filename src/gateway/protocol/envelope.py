"""The inference request's envelope: validated, outputs chosen and how each is sent."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from pydantic import BaseModel, ValidationError

from backends.base import ModelSignature, TensorSpec
from gateway.errors import InvalidInput
from gateway.protocol.wire import InferenceRequest, RequestInput, RequestOutput
from gateway.validation import Location, NameAt, describe_errors, shown

# Pydantic reports this many unknown fields at little cost, along with the missing ones.
_FEW_FIELDS = 16


def _item_name(raw: Mapping[str, Any]) -> NameAt:
    def name_at(loc: Location) -> str | None:
        if len(loc) != 2 or loc[0] not in ("inputs", "outputs"):
            return None
        items = raw.get(str(loc[0]))
        index = loc[1]
        if isinstance(items, list) and isinstance(index, int) and index < len(items):
            item = items[index]
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                return shown(item["name"])
        return None

    return name_at


def unknown_fields(item: Mapping[str, Any], model: type[BaseModel], where: str) -> None:
    """Refuse an object with many fields ``model`` does not have, naming the first few:
    Pydantic would build one error per unknown key, however many the body holds. A few
    are left to Pydantic, whose message also names the missing fields."""
    if len(item) <= _FEW_FIELDS or item.keys() <= model.model_fields.keys():
        return
    extra = islice((key for key in item if key not in model.model_fields), 3)
    names = ", ".join(f"'{shown(key)}'" for key in extra)
    known = ", ".join(model.model_fields)
    raise InvalidInput(f"{where}unknown field(s) {names}; the fields are: {known}")


def check_count(
    items: Any,
    what: str,
    specs: tuple[TensorSpec, ...],
    container: type[list[Any] | dict[str, Any]],
) -> None:
    """A request never needs more ``what`` (inputs, outputs) than the model has: refuse
    more before validating any of them. Anything but a ``container`` is left to Pydantic."""
    if isinstance(items, container) and len(items) > len(specs):
        names = ", ".join(spec.name for spec in specs)
        raise InvalidInput(
            f"request has {len(items)} {what}; the model has {len(specs)} ({names}), so a "
            f"request names at most {len(specs)}"
        )


def _bound(raw: Mapping[str, Any], signature: ModelSignature) -> None:
    """Bound the work validation can do to the model's size, not the body's."""
    if len(raw) > _FEW_FIELDS:  # (the checks are repeated inline: this runs per request)
        unknown_fields(raw, InferenceRequest, "invalid inference request: ")
    inputs, outputs = raw.get("inputs"), raw.get("outputs")
    check_count(inputs, "inputs", signature.inputs, list)
    if outputs is not None:
        check_count(outputs, "outputs", signature.outputs, list)
    for field, model, items in (
        ("inputs", RequestInput, inputs),
        ("outputs", RequestOutput, outputs),
    ):
        for index, item in enumerate(items if isinstance(items, list) else ()):
            if isinstance(item, dict) and len(item) > _FEW_FIELDS:
                unknown_fields(item, model, f"invalid inference request: {field}[{index}]: ")


def parse_request(raw: Any, signature: ModelSignature) -> InferenceRequest:
    """Validate the envelope of a parsed body, within bounds set by ``signature``."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(raw).__name__}")
    _bound(raw, signature)
    try:
        return InferenceRequest.model_validate(raw)
    except ValidationError as exc:
        detail = describe_errors(exc.errors(), name_at=_item_name(raw))
        raise InvalidInput(f"invalid inference request: {detail}") from None


def _flag(parameters: Mapping[str, Any] | None, key: str, where: str) -> bool | None:
    value = (parameters or {}).get(key)
    if value is None or type(value) is bool:
        return value
    raise InvalidInput(
        f"{where}parameters.{key} must be true or false, got {shown(repr(value)[:40])}"
    )


def binary_outputs(request: InferenceRequest, outputs: list[str]) -> frozenset[str]:
    """The outputs to send as binary data: those whose ``binary_data`` is true, and all the
    others when the request's ``binary_data_output`` is (tritonclient sets it when it names
    no output)."""
    default = _flag(request.parameters, "binary_data_output", "") or False
    chosen = {
        out.name: _flag(out.parameters, "binary_data", f"output '{out.name}': ")
        for out in request.outputs or ()
    }
    return frozenset(
        name for name in outputs if (flag := chosen.get(name)) or (flag is None and default)
    )


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
