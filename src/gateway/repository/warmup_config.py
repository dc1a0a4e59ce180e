"""The ``warmup`` section of a model's ``config.yaml``: generated inputs at a few batch
sizes, ``.npy`` files, or explicit samples (what Triton's ``model_warmup`` maps onto)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from gateway.repository.section import ConfigSection

_BatchSizes = Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(min_length=1)]
_Size = Annotated[int, Field(ge=0, le=1 << 24)]
MAX_SAMPLE_ELEMENTS = 1 << 24
"""Elements of one warm-up input at most (64 MiB of FP32): a sample is made in memory
when the version loads, so its size is bounded before anything is allocated."""
WarmupDatatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
WARMUP_DATATYPES = frozenset(get_args(WarmupDatatype))


class WarmupTensor(ConfigSection):
    """One input of a warm-up sample."""

    shape: Annotated[list[_Size], Field(max_length=32)]
    """The whole shape the call gets, the batch axis included when the model has one."""
    datatype: WarmupDatatype | None = None
    """The input's datatype, checked against the model's (none: the model's)."""
    values: Literal["random", "zeros"] = "random"
    """Generated values: random ones of the datatype, or zeros (empty strings for BYTES)."""
    file: Annotated[str, Field(min_length=1)] | None = None
    """Instead of generated values, a file of the tensor's raw bytes (little-endian
    numbers; BYTES as 4-byte lengths and their bytes), relative to the model directory,
    staying inside it."""

    @model_validator(mode="after")
    def _bounded(self) -> WarmupTensor:
        elements = 1
        for size in self.shape:
            elements *= size
        if elements > MAX_SAMPLE_ELEMENTS:
            raise ValueError(
                f"shape {self.shape} holds {elements} elements; a warm-up input holds at "
                f"most {MAX_SAMPLE_ELEMENTS}"
            )
        return self


class WarmupSample(ConfigSection):
    """One warm-up call: every input of the model, and how many times it runs."""

    name: str = ""
    """Named in the log when the sample fails."""
    count: Annotated[int, Field(ge=1, le=1000)] = 1
    """Times the call is made."""
    inputs: dict[str, WarmupTensor]
    """Every input of the model, by name."""


class WarmupConfig(ConfigSection):
    """Runs a new version makes before it takes traffic (docs/operations.md)."""

    runs: Annotated[int, Field(ge=0, le=1000)] = 1
    """Backend calls per batch size; 0 turns warm-up off (``samples`` included)."""
    # A plain default so that the JSON Schema shows it; pydantic copies it per instance.
    batch_sizes: _BatchSizes = [1]  # noqa: RUF012
    """Rows per warm-up call, each input generated: random values of its type and shape,
    1 for dynamic axes other than the batch axis. Ignored when ``inputs`` names files or
    ``samples`` is set."""
    inputs: dict[str, Annotated[str, Field(min_length=1)]] = Field(default_factory=dict)
    """``.npy`` files by input name, relative to the model directory, used as they are
    (with their own batch size) instead of generated inputs; every input must be named.
    A name must stay inside the model directory: no absolute path, ``..`` or link out."""
    samples: Annotated[list[WarmupSample], Field(max_length=64)] = Field(default_factory=list)
    """Explicit warm-up calls, each run its ``count`` times, in order (what a Triton
    ``model_warmup`` becomes); when set, ``batch_sizes`` and ``inputs`` are not used."""

    def files(self) -> dict[str, str]:
        """Every file this section names, by the field that names it."""
        named = {f"warmup.inputs.{name}": file for name, file in self.inputs.items()}
        for index, sample in enumerate(self.samples):
            for name, tensor in sample.inputs.items():
                if tensor.file is not None:
                    named[f"warmup.samples[{index}].inputs.{name}.file"] = tensor.file
        return named
