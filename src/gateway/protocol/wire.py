"""Wire models of the Open Inference Protocol (KServe v2) REST API.

Pydantic owns the envelope and the OpenAPI schema. Tensor ``data`` is deliberately not
validated element by element here (``SkipValidation``): ``gateway.protocol.json_codec``
turns it into one numpy array checked against the model's signature, ~50x cheaper.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, StrictInt, WithJsonSchema

from backends.datatypes import DATATYPES

_TENSOR_DATA_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Tensor elements in row-major order, flat or nested to the tensor's shape. "
    "Numbers for numeric datatypes, true/false for BOOL, strings for BYTES.",
    "items": {
        "anyOf": [
            {"type": "number"},
            {"type": "boolean"},
            {"type": "string"},
            {"type": "array", "items": {}},
        ]
    },
}

TensorData = Annotated[SkipValidation[list[Any]], WithJsonSchema(_TENSOR_DATA_SCHEMA)]
# A model's NaN and infinities leave as null: JSON has no way to write them.
_OUTPUT_DATA_SCHEMA: dict[str, Any] = {
    **_TENSOR_DATA_SCHEMA,
    "description": _TENSOR_DATA_SCHEMA["description"]
    + " null stands for a NaN or infinity the model produced.",
    "items": {"anyOf": [*_TENSOR_DATA_SCHEMA["items"]["anyOf"], {"type": "null"}]},
}
OutputData = Annotated[SkipValidation[list[Any]], WithJsonSchema(_OUTPUT_DATA_SCHEMA)]

MAX_RANK = 16
MAX_DIMENSION = 2**31 - 1
# The codec checks the bounds (with messages naming the input); the schema states them.
# fail_fast everywhere a list is validated: Pydantic would otherwise build one error per
# bad element, megabytes of them for a small body (issue 10, item 1).
Shape = Annotated[
    list[StrictInt],
    Field(fail_fast=True),
    WithJsonSchema(
        {
            "type": "array",
            "maxItems": MAX_RANK,
            "items": {"type": "integer", "minimum": 0, "maximum": MAX_DIMENSION},
        }
    ),
]
Datatype = Annotated[str, Field(json_schema_extra={"enum": list(DATATYPES)})]
Parameters = dict[str, Any]


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", use_attribute_docstrings=True)


class RequestInput(_Wire):
    """One input tensor of an inference request."""

    name: str
    """Name of the model input."""
    shape: Shape
    """Shape of the tensor, e.g. [1, 64]."""
    datatype: Datatype
    """Element type of the tensor."""
    parameters: Parameters | None = None
    """Optional per-input parameters."""
    data: TensorData
    """Tensor contents."""


class RequestOutput(_Wire):
    """An output the client asks for; without any, all outputs are returned."""

    name: str
    """Name of the model output."""
    parameters: Parameters | None = None
    """Optional per-output parameters."""


class InferenceRequest(_Wire):
    """Body of ``POST /v2/models/{name}[/versions/{version}]/infer``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "req-1",
                    "inputs": [
                        {
                            "name": "pixels",
                            "shape": [1, 64],
                            "datatype": "FP32",
                            "data": [0.0] * 64,
                        }
                    ],
                    "outputs": [{"name": "label"}],
                }
            ]
        }
    )

    id: str | None = None
    """Request id, echoed in the response."""
    parameters: Parameters | None = None
    """Request parameters; ``timeout`` (microseconds) is honoured where supported."""
    inputs: Annotated[list[RequestInput], Field(min_length=1, fail_fast=True)]
    """Input tensors, one per model input."""
    outputs: Annotated[list[RequestOutput], Field(fail_fast=True)] | None = None
    """Outputs to return; all of them when absent."""


class ResponseOutput(BaseModel):
    """One output tensor of an inference response."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: OutputData


class InferenceResponse(BaseModel):
    """Body of a successful inference."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "digits",
                    "model_version": "1",
                    "id": "req-1",
                    "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [0]}],
                }
            ]
        }
    )

    model_name: str
    model_version: str
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    """Name, datatype and shape of a model input or output; -1 marks a dynamic dimension."""

    name: str
    datatype: Datatype
    shape: list[int]


class VersionStatus(BaseModel):
    """One version of a model: its state, why it is not ready, and its labels."""

    version: str
    state: str
    reason: str = ""
    labels: list[str] = Field(default_factory=list)


class ModelMetadataResponse(BaseModel):
    """Body of ``GET /v2/models/{name}[/versions/{version}]``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "digits",
                    "versions": ["1"],
                    "platform": "onnxruntime_onnx",
                    "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
                    "outputs": [
                        {"name": "label", "datatype": "INT64", "shape": [-1]},
                        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                    ],
                    "parameters": {"execution_provider": "CPUExecutionProvider"},
                }
            ]
        }
    )

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, str] = Field(default_factory=dict)
    """tensorgate extension: facts such as the execution provider in use."""
    version_states: list[VersionStatus] = Field(default_factory=list)
    """tensorgate extension: every version of the model, its state and labels."""
    traffic: dict[str, int] = Field(default_factory=dict)
    """tensorgate extension: the weights by which the unversioned routes share requests
    between versions (by label or version number); empty: the newest ready version."""


class ServerMetadataResponse(BaseModel):
    """Body of ``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class LiveResponse(BaseModel):
    """Body of ``GET /v2/health/live``."""

    live: bool


class ReadyResponse(BaseModel):
    """Body of ``GET /v2/health/ready``."""

    ready: bool


class ModelReadyResponse(BaseModel):
    """Body of ``GET /v2/models/{name}[/versions/{version}]/ready``."""

    name: str
    version: str | None = None
    ready: bool


class RepositoryIndexEntry(BaseModel):
    """One model version in the repository index, with its state and why."""

    name: str
    version: str
    state: str
    reason: str = ""
    labels: list[str] = Field(default_factory=list)
    """tensorgate extension: the version labels naming this version."""


class ErrorResponse(BaseModel):
    """Every error answer: a message naming what was wrong and what was expected."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "Request for unknown model: 'foo' is not found"}]}
    )

    error: str
