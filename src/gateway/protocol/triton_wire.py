"""Wire models of Triton's model configuration and statistics extensions (answers only).

Field names follow Triton's JSON (``model_config.proto`` and ``extension_statistics.md``
in triton-inference-server/server), so that ``tritonclient`` and tools written for Triton
read them unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TensorReshape(BaseModel):
    """The model's own shape of a tensor served with other ``dims``."""

    shape: list[int]


class ModelTensorConfig(BaseModel):
    """One input or output of a model's configuration."""

    name: str
    data_type: str = Field(examples=["TYPE_FP32"])
    """Triton's datatype name: ``TYPE_`` + the protocol datatype, ``TYPE_STRING`` for BYTES."""
    dims: list[int]
    """The shape without the batch axis when ``max_batch_size`` > 0; -1 for a free axis."""
    reshape: TensorReshape | None = None
    """Present when ``config.pbtxt`` reshapes the tensor: the model's own shape (without
    the batch axis when it batches), which clients never see."""


class ModelInputConfig(ModelTensorConfig):
    """One input of a model's configuration."""

    format: str = Field(default="FORMAT_NONE", examples=["FORMAT_NONE", "FORMAT_NCHW"])
    """The layout ``config.pbtxt`` declares (``FORMAT_NCHW``, ``FORMAT_NHWC``), which
    Triton's image clients read; ``FORMAT_NONE`` otherwise."""
    optional: bool = False
    """A request may leave the input out (the model's own default is used)."""


class ModelOutputConfig(ModelTensorConfig):
    """One output of a model's configuration."""

    label_filename: str = ""
    """The class labels file of the classification extension (``labels`` in
    ``config.yaml``); empty when the output has none."""


class QueuePolicy(BaseModel):
    """The bound and default deadline of a version's queue."""

    max_queue_size: int
    default_timeout_microseconds: int
    """0: requests that name no deadline have none."""


class DynamicBatching(BaseModel):
    """How concurrent requests are merged (present only when batching is on)."""

    preferred_batch_size: list[int]
    max_queue_delay_microseconds: int
    default_queue_policy: QueuePolicy


class InstanceGroup(BaseModel):
    """How many batches of the model may run at the same time, and where."""

    name: str
    kind: Literal["KIND_CPU", "KIND_GPU"]
    count: int
    gpus: list[int] | None = None
    """The GPU a KIND_GPU group runs on (``cuda.device_id``); left out for the CPU."""


class WarmupInput(BaseModel):
    """One input of a warm-up sample, as Triton prints it: one of ``zero_data``,
    ``random_data`` or ``input_data_file``."""

    data_type: str
    dims: list[int]
    zero_data: bool | None = None
    random_data: bool | None = None
    input_data_file: str | None = None


class ModelWarmup(BaseModel):
    """One warm-up sample a new version runs before it takes traffic."""

    name: str
    batch_size: int
    inputs: dict[str, WarmupInput]
    count: int


class ModelConfigResponse(BaseModel):
    """A model's configuration, in Triton's JSON form."""

    name: str
    platform: str
    backend: str
    version_policy: dict[str, dict[str, int | list[int]]] = Field(
        examples=[{"all": {}}, {"latest": {"num_versions": 1}}, {"specific": {"versions": [1]}}]
    )
    max_batch_size: int
    """Most rows of one backend call; 0 when the model has no batch axis to merge on."""
    input: list[ModelInputConfig]
    output: list[ModelOutputConfig]
    dynamic_batching: DynamicBatching | None = None
    instance_group: list[InstanceGroup]
    parameters: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Triton's form of free parameters: here the execution provider in use
    (``execution_provider``), the one asked for and the GPU (``device_id``)."""
    model_warmup: list[ModelWarmup] = Field(default_factory=list)
    """The warm-up a new version runs: ``config.pbtxt``'s ``model_warmup``, or
    ``config.yaml``'s ``warmup`` in that form (generated inputs as ``random_data``); empty
    without one, and for warm-up inputs from ``.npy`` files, which it has no form for."""


class StatDuration(BaseModel):
    """A count and a cumulative duration in nanoseconds."""

    count: int
    ns: int


class InferStatistics(BaseModel):
    """Per-request counts and cumulative durations of one model version."""

    success: StatDuration
    fail: StatDuration
    queue: StatDuration
    compute_input: StatDuration
    compute_infer: StatDuration
    compute_output: StatDuration


class InferBatchStatistics(BaseModel):
    """The backend calls made with one batch size."""

    batch_size: int
    compute_input: StatDuration
    compute_infer: StatDuration
    compute_output: StatDuration


class ModelStatistics(BaseModel):
    """The statistics of one model version."""

    name: str
    version: str
    last_inference: int
    """Milliseconds since the epoch of the last successful inference; 0: none yet."""
    inference_count: int
    """Rows answered successfully (each row of a batched request counts)."""
    execution_count: int
    """Backend calls (batches) that succeeded."""
    inference_stats: InferStatistics
    batch_stats: list[InferBatchStatistics]


class ModelStatisticsResponse(BaseModel):
    """Statistics of the model versions asked for."""

    model_config = ConfigDict(protected_namespaces=())

    model_stats: list[ModelStatistics]
