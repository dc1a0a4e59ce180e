"""Pydantic request and response models generated from a model's signature, for typed routes.

They give the OpenAPI document real input names, element types, fixed dimensions (as
``minItems``/``maxItems``) and an example. Tensor data is not validated through them
(``SkipValidation``, as in ``gateway.protocol.wire``): ``gateway.typed.codec`` decodes it with
the protocol routes' strict codec, so both kinds of route accept and refuse alike.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, WithJsonSchema, create_model

from backends.base import ModelSignature, TensorSpec
from backends.datatypes import from_numpy
from gateway.protocol.json_codec import format_shape

MAX_EXAMPLE_ELEMENTS = 4096
"""Examples of larger tensors are left out: they would bloat the document and Swagger UI."""

_RESERVED = frozenset(dir(BaseModel))
# OpenAPI's own number formats (FP16 has none).
_FORMATS = {4: {"format": "float"}, 8: {"format": "double"}}


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the server enforces beyond the signature, for the schema to state it."""

    finite: bool = True
    """Numbers beyond the element type's range are refused (``allow_non_finite`` off)."""
    max_rows: int | None = None
    """The most rows on the batch axis one request may have (None: no bound)."""
    nullable: bool = False
    """Float elements may be null: how JSON carries a model's NaN and infinities."""


@dataclass(frozen=True, slots=True)
class TypedSchema:
    """The generated models of one model signature."""

    request: type[BaseModel]
    response: type[BaseModel]


def class_prefix(model_name: str) -> str:
    """A PascalCase class-name prefix for a model name: ``my-model.v2`` -> ``MyModelV2``."""
    parts = re.split(r"[^0-9A-Za-z]+", model_name)
    prefix = "".join(part[:1].upper() + part[1:] for part in parts if part)
    return prefix if prefix[:1].isalpha() else f"Model{prefix}"


def python_name(tensor_name: str, taken: set[str]) -> str:
    """A field name for a tensor; the tensor's own name stays the JSON key (an alias)."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", tensor_name).strip("_").lower() or "tensor"
    if name[0].isdigit():
        name = f"t_{name}"
    if keyword.iskeyword(name) or name in _RESERVED or name.startswith("model_"):
        name = f"{name}_"
    while name in taken:
        name = f"{name}_"
    taken.add(name)
    return name


def element_schema(
    dtype: np.dtype[Any], *, finite: bool = True, nullable: bool = False
) -> dict[str, Any]:
    """JSON Schema of one tensor element, with the datatype's OpenAPI format or range;
    ``finite``: floats beyond the type's range are refused, so the range is stated;
    ``nullable``: floats may be null (a model's NaN or infinity, which JSON cannot write)."""
    if dtype.kind == "f":
        kind: Any = ["number", "null"] if nullable else "number"
        schema: dict[str, Any] = {"type": kind, **_FORMATS.get(dtype.itemsize, {})}
        if finite:
            largest = float(np.finfo(dtype).max)
            schema.update(minimum=-largest, maximum=largest)
        return schema
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if dtype.kind == "i" and dtype.itemsize in (4, 8):
            return {"type": "integer", "format": f"int{dtype.itemsize * 8}"}
        # FastAPI stores bounds as floats: beyond 2**53 they would be rounded, so 64-bit
        # unsigned integers only get their lower bound.
        bounds = {"minimum": int(info.min)}
        if info.max < 2**53:
            bounds["maximum"] = int(info.max)
        return {"type": "integer", **bounds}
    if dtype.kind == "b":
        return {"type": "boolean"}
    return {"type": "string"}


def describe_tensor(spec: TensorSpec) -> str:
    """``FP32 [-1, 64]`` plus what the dynamic dimensions mean."""
    text = f"{from_numpy(spec.dtype)} tensor of shape {format_shape(spec.shape)}"
    if spec.has_dynamic_batch:
        return f"{text}, nested lists; the first dimension is the batch (one entry per sample)"
    if any(dim is None for dim in spec.shape):
        return f"{text}, nested lists; -1 marks a dimension of any size"
    return f"{text}, nested lists" if spec.rank else text


def tensor_schema(spec: TensorSpec, bounds: Bounds = Bounds()) -> dict[str, Any]:
    """JSON Schema of a whole tensor as nested arrays; fixed dimensions bound their length,
    and the batch axis the rows one request may have."""
    schema = element_schema(spec.dtype, finite=bounds.finite, nullable=bounds.nullable)
    for axis, dim in reversed(list(enumerate(spec.shape))):
        level: dict[str, Any] = {"type": "array", "items": schema}
        if dim is not None:
            level["minItems"] = level["maxItems"] = dim
        elif axis == 0 and spec.has_dynamic_batch and bounds.max_rows is not None:
            level["maxItems"] = bounds.max_rows
        schema = level
    return {**schema, "description": describe_tensor(spec)}


def example_tensor(spec: TensorSpec) -> Any:
    """Zeros of the spec's type, one sample on dynamic dimensions; None when too large."""
    shape = [1 if dim is None else dim for dim in spec.shape]
    if math.prod(shape) > MAX_EXAMPLE_ELEMENTS:
        return None
    value: Any = {"f": 0.0, "i": 0, "u": 0, "b": False}.get(spec.dtype.kind, "")
    for dim in reversed(shape):
        value = [value] * dim
    return value


def _tensor_field(spec: TensorSpec, bounds: Bounds, *, required: bool) -> tuple[Any, Any]:
    annotation = Annotated[SkipValidation[Any], WithJsonSchema(tensor_schema(spec, bounds))]
    if required:
        return annotation, Field(alias=spec.name)
    # Optional outputs carry no "default": null, which would contradict their array type.
    return annotation, Field(default=None, alias=spec.name, json_schema_extra=_drop_default)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _tensors_model(
    name: str, doc: str, specs: tuple[TensorSpec, ...], bounds: Bounds, *, required: bool
) -> type[BaseModel]:
    taken: set[str] = set()
    fields: dict[str, Any] = {
        python_name(spec.name, taken): _tensor_field(
            spec, bounds, required=required and not spec.optional
        )
        for spec in specs
    }
    return create_model(
        name,
        __config__=ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=()),
        __doc__=doc,
        **fields,
    )


def _example(specs: tuple[TensorSpec, ...]) -> dict[str, Any] | None:
    values = {spec.name: example_tensor(spec) for spec in specs}
    if any(value is None for value in values.values()):
        return None
    return values


def _request_model(
    prefix: str, model_name: str, signature: ModelSignature, bounds: Bounds
) -> type[BaseModel]:
    inputs = _tensors_model(
        f"{prefix}Inputs",
        f"Input tensors of model '{model_name}', by name.",
        signature.inputs,
        bounds,
        required=True,
    )
    output_names = [spec.name for spec in signature.outputs]
    names: Any = Literal.__getitem__(tuple(output_names))
    # Each output at most once: duplicates are refused (400), so the schema says so.
    requested = {
        "type": "array",
        "items": {"type": "string", "enum": output_names},
        "uniqueItems": True,
        "maxItems": len(output_names),
    }
    example = _example(signature.inputs)
    extra: dict[str, Any] | None = (
        {"examples": [{"inputs": example}]} if example is not None else None
    )
    return create_model(
        f"{prefix}PredictRequest",
        __config__=ConfigDict(extra="forbid", protected_namespaces=(), json_schema_extra=extra),
        __doc__=f"Body of a prediction with model '{model_name}'.",
        inputs=(inputs, Field(description="Input tensors by name.")),
        outputs=(
            Annotated[list[names], WithJsonSchema(requested)] | None,
            Field(
                default=None,
                description="Outputs to return, each once; all of them when absent or empty.",
            ),
        ),
    )


def _response_model(prefix: str, model_name: str, signature: ModelSignature) -> type[BaseModel]:
    outputs = _tensors_model(
        f"{prefix}Outputs",
        f"Output tensors of model '{model_name}', by name (those requested, or all).",
        signature.outputs,
        Bounds(finite=False, nullable=True),  # what the model returned, unchecked
        required=False,
    )
    example = _example(signature.outputs)
    extra: dict[str, Any] | None = None
    if example is not None:
        extra = {"examples": [{"model_name": model_name, "model_version": "1", "outputs": example}]}
    return create_model(
        f"{prefix}PredictResponse",
        __config__=ConfigDict(protected_namespaces=(), json_schema_extra=extra),
        __doc__=f"Result of a prediction with model '{model_name}'.",
        model_name=(str, Field(description="Name of the model that ran.")),
        model_version=(str, Field(description="Version of the model that ran.")),
        outputs=(outputs, Field(description="Output tensors by name.")),
    )


def build_typed_schema(
    prefix: str, model_name: str, signature: ModelSignature, bounds: Bounds = Bounds()
) -> TypedSchema:
    """Request and response models for ``signature``; class names start with ``prefix``;
    ``bounds`` are what the server enforces on requests beyond the signature."""
    return TypedSchema(
        request=_request_model(prefix, model_name, signature, bounds),
        response=_response_model(prefix, model_name, signature),
    )
