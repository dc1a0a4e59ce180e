"""A version's warm-up in the form of Triton's ``model_warmup``, for its configuration
answer: explicit samples as they were given, generated inputs as ``random_data`` at each
batch size."""

from __future__ import annotations

from backends.base import ModelSignature, TensorSpec
from gateway.protocol.triton_wire import ModelWarmup, WarmupInput
from gateway.repository.declared import triton_data_type
from gateway.repository.warmup_config import WarmupConfig, WarmupSample, WarmupTensor

WARMUP_DIR = "warmup/"
"""Where Triton reads ``input_data_file``: a file under it is named from there."""


def warmup_samples(
    config: WarmupConfig | None, signature: ModelSignature, *, batched: bool
) -> list[ModelWarmup]:
    """``config`` as Triton's ``model_warmup`` entries (none for ``.npy`` inputs)."""
    if config is None or config.runs == 0 or (config.inputs and not config.samples):
        return []
    if config.samples:
        return [_sample(sample, signature, batched=batched) for sample in config.samples]
    return [
        ModelWarmup(
            name=f"generated, {rows} row(s)",
            batch_size=rows if batched else 0,
            inputs={spec.name: _generated(spec, batched=batched) for spec in signature.inputs},
            count=config.runs,
        )
        for rows in (config.batch_sizes if batched else config.batch_sizes[:1])
    ]


def _sample(sample: WarmupSample, signature: ModelSignature, *, batched: bool) -> ModelWarmup:
    first = next(iter(sample.inputs.values()), None)
    rows = first.shape[0] if batched and first is not None and first.shape else 0
    inputs = {
        name: _input(tensor, signature.input(name), batched=batched)
        for name, tensor in sample.inputs.items()
    }
    return ModelWarmup(name=sample.name, batch_size=rows, inputs=inputs, count=sample.count)


def _input(tensor: WarmupTensor, spec: TensorSpec | None, *, batched: bool) -> WarmupInput:
    dims = tensor.shape[1:] if batched else tensor.shape
    if tensor.datatype is not None:
        datatype = tensor.datatype
        data_type = "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"
    else:
        data_type = triton_data_type(spec) if spec is not None else "TYPE_INVALID"
    if tensor.file is not None:
        named = tensor.file.removeprefix(WARMUP_DIR)
        return WarmupInput(data_type=data_type, dims=list(dims), input_data_file=named)
    if tensor.values == "zeros":
        return WarmupInput(data_type=data_type, dims=list(dims), zero_data=True)
    return WarmupInput(data_type=data_type, dims=list(dims), random_data=True)


def _generated(spec: TensorSpec, *, batched: bool) -> WarmupInput:
    shape = spec.shape[1:] if batched else spec.shape
    return WarmupInput(
        data_type=triton_data_type(spec),
        dims=[1 if size is None else size for size in shape],
        random_data=True,
    )
