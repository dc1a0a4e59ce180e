"""Triton's model configuration mapped onto ``config.yaml``'s fields.

Two sources share one mapping: a model directory's ``config.pbtxt`` (protobuf text format,
parsed against our copy of Triton's ``model_config.proto``: a complete configuration,
absent fields at Triton's defaults), and the JSON a load request carries in
``parameters.config`` (an override: the fields it names replace ``config.yaml``'s). Every
field has its meaning or is refused with an error naming it and saying why; none is
accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format, text_format

from gateway.proto import model_config_pb2 as config_pb
from gateway.repository.declared import Declaration, DeclaredTensor
from gateway.repository.triton_fields import TritonConfigError, integer, list_field, object_field
from gateway.repository.triton_fields import shape_field as _shape
from gateway.repository.triton_warmup import model_warmup

PBTXT_FILE = "config.pbtxt"
MAX_PBTXT_BYTES = 1 << 20
"""A ``config.pbtxt`` larger than this is refused before it is parsed (Triton's own are a
few kilobytes)."""

PLATFORMS = {"platform": "onnxruntime_onnx", "backend": "onnxruntime"}
"""Fields that say which runtime serves the model: accepted when they name ONNX Runtime."""

_DYNAMIC_BATCHING = {
    "preferred_batch_size": "preferred_batch_sizes",
    "max_queue_delay_microseconds": "max_queue_delay_ms",
}
_QUEUE_POLICY = {"max_queue_size", "default_timeout_microseconds", "timeout_action"}
_ONNXRUNTIME_PARAMETERS = {
    "intra_op_thread_count": "intra_op_threads",
    "inter_op_thread_count": "inter_op_threads",
}
_GPU_ACCELERATORS = {"tensorrt": "TensorrtExecutionProvider"}
_INPUT_FIELDS = {"name", "data_type", "dims", "format", "reshape", "optional"}
_OUTPUT_FIELDS = {"name", "data_type", "dims", "label_filename", "reshape"}
_WHY_NOT = {
    "sequence_batching": "sequence batching is not served yet",
    "ensemble_scheduling": "ensembles are not served",
    "is_shape_tensor": "shape tensors are a TensorRT feature",
    "allow_ragged_batch": "ragged batches are not served",
    "response_cache": "the response cache is not served",
    "model_transaction_policy": "decoupled models are not served",
    "batch_input": "batch inputs are not served",
    "batch_output": "batch outputs are not served",
}


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a Triton configuration sets: ``config.yaml`` fields and the declared tensors."""

    fields: dict[str, Any]
    """Fields of ``config.yaml`` (a ``ModelConfig.model_dump()`` with these applied)."""
    declaration: Declaration | None
    """The inputs and outputs the configuration declares; none when it declares none."""


def read_pbtxt(path: Path) -> dict[str, Any]:
    """``config.pbtxt`` as protobuf's JSON form of Triton's ``ModelConfig`` (fields at
    their defaults left out); ``TritonConfigError`` when it is too large or does not parse
    (blocking: it reads the file)."""
    with path.open("rb") as file:
        raw = file.read(MAX_PBTXT_BYTES + 1)
    if len(raw) > MAX_PBTXT_BYTES:
        raise TritonConfigError(f"larger than {MAX_PBTXT_BYTES} bytes")
    message = config_pb.ModelConfig()
    try:
        text_format.Parse(raw.decode("utf-8"), message)
    except UnicodeDecodeError as exc:
        raise TritonConfigError(f"not UTF-8 text: {exc}") from None
    except text_format.ParseError as exc:
        raise TritonConfigError(f"cannot parse: {exc}") from None
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def map_triton(
    triton: dict[str, Any], base: dict[str, Any], *, model: str, complete: bool
) -> Mapped:
    """Apply ``triton`` to ``base`` (a ``ModelConfig.model_dump()``). ``complete``: a
    ``config.pbtxt``, whose absent fields are Triton's defaults (``max_batch_size`` 0: no
    batch axis); otherwise an override, whose absent fields leave ``base`` as it is."""
    fields = dict(base)
    fields["batching"] = dict(base.get("batching") or {})
    _check_top_level(triton, model)
    if complete:
        triton = {"max_batch_size": 0, **triton}
        if "dynamic_batching" not in triton:
            # Triton's default scheduler runs each request as it comes: no waiting.
            fields["batching"]["max_queue_delay_ms"] = 0.0
    for key, apply in _APPLY.items():
        if key in triton:
            apply(triton[key], fields)
    declaration = None
    if "input" in triton or "output" in triton:
        declaration = _declaration(triton, fields)
        labels = dict(fields.get("labels") or {})
        labels.update({t.name: t.label_filename for t in declaration.outputs if t.label_filename})
        fields["labels"] = labels
    return Mapped(fields, declaration)


def _check_top_level(triton: dict[str, Any], model: str) -> None:
    for key, value in triton.items():
        if key in PLATFORMS:
            if value != PLATFORMS[key]:
                raise TritonConfigError(f"config.{key} {value!r} is not served: {PLATFORMS[key]}")
        elif key == "name":
            if value != model:
                raise TritonConfigError(f"config.name {value!r} is not the model's ('{model}')")
        elif key not in _APPLY:
            raise _refused(f"config.{key}", key)


def _declaration(triton: dict[str, Any], fields: dict[str, Any]) -> Declaration:
    inputs = list_field(triton.get("input", []), "config.input")
    outputs = list_field(triton.get("output", []), "config.output")
    return Declaration(
        batched=_batch_size(triton, fields) > 0,
        inputs=tuple(_tensor(t, f"config.input[{i}]", _INPUT_FIELDS) for i, t in enumerate(inputs)),
        outputs=tuple(
            _tensor(t, f"config.output[{i}]", _OUTPUT_FIELDS) for i, t in enumerate(outputs)
        ),
    )


def _refused(path: str, key: str) -> TritonConfigError:
    why = _WHY_NOT.get(key, "it has no counterpart in config.yaml")
    return TritonConfigError(f"unsupported field {path}: {why}")


def _batch_size(triton: dict[str, Any], fields: dict[str, Any]) -> int:
    """The rows of one call, as Triton counts them: 0 when the model has no batch axis."""
    if "max_batch_size" in triton:
        return integer(triton["max_batch_size"], "config.max_batch_size")
    batching = fields["batching"]
    return int(batching.get("max_batch_size", 1)) if batching.get("enabled", True) else 0


def _max_batch_size(value: Any, fields: dict[str, Any]) -> None:
    size = integer(value, "config.max_batch_size")
    if size == 0:
        fields["batching"]["enabled"] = False
    else:
        fields["batching"]["enabled"] = True
        fields["batching"]["max_batch_size"] = size


def _dynamic_batching(value: Any, fields: dict[str, Any]) -> None:
    batching = fields["batching"]
    for key, setting in object_field(value, "config.dynamic_batching").items():
        path = f"config.dynamic_batching.{key}"
        if key == "max_queue_delay_microseconds":
            batching["max_queue_delay_ms"] = integer(setting, path) / 1000
        elif key == "preferred_batch_size":
            batching["preferred_batch_sizes"] = [
                integer(s, path) for s in list_field(setting, path)
            ]
        elif key == "default_queue_policy":
            _queue_policy(object_field(setting, path), batching)
        elif key == "preserve_ordering":
            continue  # answers always go back to their own request, in any order
        else:
            raise TritonConfigError(
                f"unsupported field {path}: priority levels and per-priority queues are not "
                "served yet"
                if "priority" in key
                else f"unsupported field {path}"
            )


def _queue_policy(policy: dict[str, Any], batching: dict[str, Any]) -> None:
    for key, value in policy.items():
        path = f"config.dynamic_batching.default_queue_policy.{key}"
        if key not in _QUEUE_POLICY and key != "allow_timeout_override":
            raise TritonConfigError(f"unsupported field {path}")
        if key == "max_queue_size":
            batching["max_queue_size"] = integer(value, path)
        elif key == "default_timeout_microseconds":
            microseconds = integer(value, path)
            batching["default_timeout_ms"] = microseconds / 1000 if microseconds else None
        elif key == "timeout_action" and value != "REJECT":
            raise TritonConfigError(
                f"unsupported value {path}: {value!r}; a request past its deadline is refused "
                "(REJECT), never run late"
            )


def _instance_group(value: Any, fields: dict[str, Any]) -> None:
    groups = list_field(value, "config.instance_group")
    if len(groups) != 1:
        raise TritonConfigError("config.instance_group must hold exactly one group")
    group = object_field(groups[0], "config.instance_group[0]")
    for key in sorted(set(group) - {"count", "kind", "name", "gpus"}):
        raise TritonConfigError(f"unsupported field config.instance_group[0].{key}")
    fields["instances"] = integer(group.get("count", 1), "config.instance_group[0].count")
    kind = group.get("kind", "KIND_AUTO")
    gpus = [integer(g, "config.instance_group[0].gpus") for g in group.get("gpus", [])]
    if kind == "KIND_GPU" or gpus:
        if kind not in ("KIND_GPU", "KIND_AUTO"):
            raise TritonConfigError("config.instance_group[0].gpus needs kind KIND_GPU")
        if len(gpus) > 1:
            raise TritonConfigError(
                "config.instance_group[0].gpus names several GPUs; a model version runs on "
                "one (run a replica per GPU)"
            )
        fields["execution_providers"] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        fields["cuda"] = {**(fields.get("cuda") or {}), "device_id": gpus[0] if gpus else 0}
    elif kind not in ("KIND_CPU", "KIND_AUTO"):
        raise TritonConfigError(
            f"unsupported instance kind {kind!r}: KIND_CPU, KIND_GPU or KIND_AUTO"
        )


def _version_policy(value: Any, fields: dict[str, Any]) -> None:
    policy = object_field(value, "config.version_policy")
    if len(policy) != 1:
        raise TritonConfigError("config.version_policy must have one of all, latest, specific")
    ((kind, setting),) = policy.items()
    setting = setting if isinstance(setting, dict) else {}
    path = f"config.version_policy.{kind}"
    if kind == "all":
        fields["version_policy"] = "all"
    elif kind == "latest":
        fields["version_policy"] = {"latest": integer(setting.get("num_versions", 0), path)}
    elif kind == "specific":
        versions = list_field(setting.get("versions", []), path)
        fields["version_policy"] = {"specific": [integer(v, path) for v in versions]}
    else:
        raise TritonConfigError(f"unsupported field {path}")


def _parameters(value: Any, fields: dict[str, Any]) -> None:
    for key, entry in object_field(value, "config.parameters").items():
        path = f"config.parameters.{key}"
        if key not in _ONNXRUNTIME_PARAMETERS:
            raise TritonConfigError(
                f"unsupported field {path}: the ONNX Runtime parameters served are "
                f"{', '.join(sorted(_ONNXRUNTIME_PARAMETERS))}"
            )
        text = object_field(entry, path).get("string_value", "")
        fields[_ONNXRUNTIME_PARAMETERS[key]] = integer(text, f"{path}.string_value")


def _optimization(value: Any, fields: dict[str, Any]) -> None:
    for key, setting in object_field(value, "config.optimization").items():
        path = f"config.optimization.{key}"
        if key != "execution_accelerators":
            raise TritonConfigError(f"unsupported field {path}")
        for kind, accelerators in object_field(setting, path).items():
            if kind != "gpu_execution_accelerator":
                raise TritonConfigError(
                    f"unsupported field {path}.{kind}: only GPU accelerators (tensorrt)"
                )
            for index, accelerator in enumerate(list_field(accelerators, f"{path}.{kind}")):
                where = f"{path}.{kind}[{index}]"
                name = object_field(accelerator, where).get("name", "")
                if name not in _GPU_ACCELERATORS or set(accelerator) - {"name"}:
                    raise TritonConfigError(
                        f"unsupported {where}: {name!r} without parameters is what is served "
                        f"({', '.join(_GPU_ACCELERATORS)}); set provider options in "
                        "config.yaml's cuda section"
                    )
                providers = list(fields.get("execution_providers") or [])
                first = _GPU_ACCELERATORS[name]
                rest = [p for p in providers if p != first] or [
                    "CUDAExecutionProvider",
                    "CPUExecutionProvider",
                ]
                if "CUDAExecutionProvider" not in rest:
                    rest.insert(0, "CUDAExecutionProvider")
                fields["execution_providers"] = [first, *rest]


def _tensor(value: Any, path: str, allowed: set[str]) -> DeclaredTensor:
    tensor = object_field(value, path)
    for key in tensor:
        if key not in allowed:
            raise _refused(f"{path}.{key}", key)
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise TritonConfigError(f"{path}.name must name a tensor of the model")
    dims = _shape(tensor.get("dims", []), f"{path}.dims")
    reshape = None
    if "reshape" in tensor:
        where = f"{path}.reshape"
        fields = object_field(tensor["reshape"], where)
        for key in fields.keys() - {"shape"}:
            raise TritonConfigError(f"unsupported field {where}.{key}")
        reshape = _shape(fields.get("shape", []), f"{where}.shape")
    return DeclaredTensor(
        name=name,
        data_type=str(tensor.get("data_type", "TYPE_INVALID")),
        dims=dims,
        format=str(tensor.get("format", "FORMAT_NONE")),
        label_filename=str(tensor.get("label_filename", "")),
        reshape=reshape,
        optional=tensor.get("optional") is True,
    )


_APPLY: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "max_batch_size": _max_batch_size,
    "dynamic_batching": _dynamic_batching,
    "instance_group": _instance_group,
    "version_policy": _version_policy,
    "parameters": _parameters,
    "optimization": _optimization,
    "model_warmup": model_warmup,
    "input": lambda _value, _fields: None,  # declared tensors: read below
    "output": lambda _value, _fields: None,
}
