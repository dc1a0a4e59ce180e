"""Triton's ``model_warmup`` mapped onto ``config.yaml``'s ``warmup.samples`` (a part of
``triton_config``'s mapping, in a module of its own)."""

from __future__ import annotations

from typing import Any

from gateway.repository.triton_fields import (
    TritonConfigError,
    integer,
    list_field,
    object_field,
    shape_field,
)
from gateway.repository.warmup_config import WARMUP_DATATYPES


def model_warmup(value: Any, fields: dict[str, Any]) -> None:
    """Triton's warm-up samples as ``warmup.samples``: the batch size becomes each input's
    first axis when the model batches; ``input_data_file`` is read from ``warmup/`` in the
    model directory, as Triton reads it."""
    batched = bool(fields["batching"].get("enabled", True))
    samples = []
    for index, entry in enumerate(list_field(value, "config.model_warmup")):
        path = f"config.model_warmup[{index}]"
        sample = object_field(entry, path)
        for key in sorted(sample.keys() - {"name", "batch_size", "inputs", "count"}):
            raise TritonConfigError(f"unsupported field {path}.{key}")
        rows = integer(sample.get("batch_size", 0), f"{path}.batch_size")
        if batched and rows < 1:
            raise TritonConfigError(f"{path}.batch_size must be at least 1 (max_batch_size > 0)")
        if not batched and rows > 1:
            raise TritonConfigError(f"{path}.batch_size must be 0 or 1 (max_batch_size 0)")
        inputs = {
            name: _warmup_input(tensor, f"{path}.inputs.{name}", rows if batched else None)
            for name, tensor in object_field(sample.get("inputs", {}), f"{path}.inputs").items()
        }
        count = max(1, integer(sample.get("count", 0), f"{path}.count"))
        samples.append({"name": str(sample.get("name", "")), "count": count, "inputs": inputs})
    fields["warmup"] = {**(fields.get("warmup") or {}), "samples": samples}


def _warmup_input(value: Any, where: str, rows: int | None) -> dict[str, Any]:
    tensor = object_field(value, where)
    sources = {"zero_data", "random_data", "input_data_file"}
    for key in sorted(tensor.keys() - {"data_type", "dims"} - sources):
        raise TritonConfigError(f"unsupported field {where}.{key}")
    dims = shape_field(tensor.get("dims", []), f"{where}.dims")
    if -1 in dims:
        raise TritonConfigError(f"{where}.dims: a warm-up sample has sizes, not -1")
    data_type = str(tensor.get("data_type", "TYPE_INVALID"))
    datatype = "BYTES" if data_type == "TYPE_STRING" else data_type.removeprefix("TYPE_")
    if datatype not in WARMUP_DATATYPES:
        raise TritonConfigError(f"{where}.data_type {data_type} is not a datatype served")
    made: dict[str, Any] = {
        "shape": [rows, *dims] if rows is not None else list(dims),
        "datatype": datatype,
    }
    if tensor.get("zero_data"):
        made["values"] = "zeros"
    elif "input_data_file" in tensor:
        made["file"] = f"warmup/{tensor['input_data_file']}"
    elif not tensor.get("random_data"):
        raise TritonConfigError(f"{where} needs zero_data, random_data or input_data_file")
    return made
