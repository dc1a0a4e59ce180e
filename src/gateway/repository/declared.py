"""The inputs and outputs a Triton configuration declares, checked against the model.

Triton's ``config.pbtxt`` states each tensor's datatype and dims; a version whose ONNX
file disagrees fails its load naming the tensor, rather than serving under a description
that is not true. The declaration also carries what only the configuration knows: an
input's ``format`` (which Triton's image clients read), an output's labels file, and a
tensor's ``reshape``: the shape the model itself has, where ``dims`` is the shape clients
send and receive (the model's file is checked against ``reshape`` then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backends.base import ModelSignature, TensorSpec
from backends.datatypes import from_numpy


def triton_data_type(spec: TensorSpec) -> str:
    """Triton's name of a tensor's datatype: ``TYPE_FP32``; BYTES is ``TYPE_STRING``."""
    datatype = from_numpy(spec.dtype)
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


@dataclass(frozen=True, slots=True)
class DeclaredTensor:
    """One ``input`` or ``output`` entry of a Triton configuration."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    """Without the batch axis when the model batches; -1 for any size."""
    format: str = "FORMAT_NONE"
    label_filename: str = ""
    reshape: tuple[int, ...] | None = None
    """The model's own shape of the tensor (without the batch axis when the model
    batches), when it differs from ``dims``; fixed sizes, as many elements as ``dims``."""
    optional: bool = False
    """An input a request may leave out (an overridable initializer of the model)."""

    def reshape_problem(self) -> str | None:
        """Why this tensor's ``reshape`` cannot be served; ``None`` when it can (or has none)."""
        if self.reshape is None:
            return None
        if -1 in self.dims or -1 in self.reshape:
            return (
                f"reshape {list(self.reshape)} of dims {list(self.dims)}: a reshape between "
                "variable-size dims is not served (give both fixed sizes)"
            )
        if math.prod(self.dims) != math.prod(self.reshape):
            return (
                f"reshape {list(self.reshape)} holds {math.prod(self.reshape)} elements, "
                f"dims {list(self.dims)} hold {math.prod(self.dims)}: a reshape keeps the "
                "element count"
            )
        return None


@dataclass(frozen=True, slots=True)
class Declaration:
    """The tensors a configuration declares, and whether its dims leave out a batch axis."""

    batched: bool
    inputs: tuple[DeclaredTensor, ...]
    outputs: tuple[DeclaredTensor, ...]

    @property
    def reshaped(self) -> bool:
        """Whether any tensor is reshaped between the clients and the model."""
        return any(t.reshape is not None for t in (*self.inputs, *self.outputs))

    def reshape_of(self, name: str) -> tuple[int, ...] | None:
        """The declared ``reshape`` of input or output ``name``, if any."""
        return next((t.reshape for t in (*self.inputs, *self.outputs) if t.name == name), None)

    def format_of(self, name: str) -> str:
        """The declared ``format`` of input ``name`` (``FORMAT_NONE`` when undeclared)."""
        return next((t.format for t in self.inputs if t.name == name), "FORMAT_NONE")

    def mismatch(self, signature: ModelSignature) -> str | None:
        """Why the model does not fit this declaration; ``None`` when it does."""
        for kind, declared, specs in (
            ("input", self.inputs, signature.inputs),
            ("output", self.outputs, signature.outputs),
        ):
            by_name = {spec.name: spec for spec in specs}
            for tensor in declared:
                spec = by_name.get(tensor.name)
                if spec is None:
                    return (
                        f"config declares {kind} '{tensor.name}', which the model does not "
                        f"have (its {kind}s: {', '.join(by_name) or 'none'})"
                    )
                problem = _tensor_mismatch(tensor, spec, self.batched)
                if problem is not None:
                    return f"config {kind} '{tensor.name}': {problem}"
        return None


def _tensor_mismatch(tensor: DeclaredTensor, spec: TensorSpec, batched: bool) -> str | None:
    actual = triton_data_type(spec)
    if tensor.data_type != actual:
        return f"data_type {tensor.data_type}, the model's is {actual}"
    problem = tensor.reshape_problem()
    if problem is not None:
        return problem
    declared = tensor.dims if tensor.reshape is None else tensor.reshape
    field = "dims" if tensor.reshape is None else "reshape"
    shape = spec.shape
    if batched:
        if not spec.has_dynamic_batch:
            return (
                "max_batch_size > 0 needs a free first axis to batch on, the model's shape is "
                f"{_dims(shape)} (set max_batch_size: 0)"
            )
        shape = shape[1:]
    fits = len(declared) == len(shape) and all(
        model is None or size == model for size, model in zip(declared, shape, strict=True)
    )
    if not fits:
        axes = " without the batch axis" if batched else ""
        return f"{field} {list(declared)}, the model's are {_dims(shape)}{axes}"
    return None


def _dims(shape: tuple[int | None, ...]) -> list[int]:
    return [-1 if dim is None else dim for dim in shape]
