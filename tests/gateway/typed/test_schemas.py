"""Generated typed-route models: names, element types, shapes, examples that round-trip."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import ModelSignature, TensorSpec
from backends.datatypes import DATATYPES, to_numpy
from gateway.typed.codec import decode_typed_request
from gateway.typed.schemas import (
    MAX_EXAMPLE_ELEMENTS,
    Bounds,
    build_typed_schema,
    class_prefix,
    element_schema,
    example_tensor,
    python_name,
    tensor_schema,
)

DIGITS = ModelSignature(
    inputs=(TensorSpec("pixels", np.dtype(np.float32), (None, 64), ("batch", None)),),
    outputs=(
        TensorSpec("label", np.dtype(np.int64), (None,), ("batch",)),
        TensorSpec("probabilities", np.dtype(np.float32), (None, 10), ("batch", None)),
    ),
)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("digits", "Digits"), ("my-model.v2", "MyModelV2"), ("3d_net", "Model3dNet"), ("mlp", "Mlp")],
)
def test_class_prefix_is_pascal_case_and_starts_with_a_letter(name: str, prefix: str) -> None:
    assert class_prefix(name) == prefix


def test_python_names_are_identifiers_that_never_shadow_pydantic() -> None:
    taken: set[str] = set()
    names = [
        python_name(n, taken) for n in ["input:0", "class", "json", "model_x", "0a", "x.1", "x_1"]
    ]
    assert names == ["input_0", "class_", "json_", "model_x_", "t_0a", "x_1", "x_1_"]
    assert all(name.isidentifier() for name in names)


F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)


@pytest.mark.parametrize(
    ("datatype", "schema"),
    [
        ("FP32", {"type": "number", "format": "float", "minimum": -F32_MAX, "maximum": F32_MAX}),
        ("FP64", {"type": "number", "format": "double", "minimum": -F64_MAX, "maximum": F64_MAX}),
        ("FP16", {"type": "number", "minimum": -65504.0, "maximum": 65504.0}),
        ("INT64", {"type": "integer", "format": "int64"}),
        ("INT32", {"type": "integer", "format": "int32"}),
        ("INT8", {"type": "integer", "minimum": -128, "maximum": 127}),
        ("UINT8", {"type": "integer", "minimum": 0, "maximum": 255}),
        ("UINT64", {"type": "integer", "minimum": 0}),
        ("BOOL", {"type": "boolean"}),
        ("BYTES", {"type": "string"}),
    ],
)
def test_element_schema_follows_the_datatype(datatype: str, schema: dict[str, Any]) -> None:
    assert element_schema(to_numpy(datatype)) == schema


def test_float_elements_unbounded_where_non_finite_values_pass_and_nullable_in_outputs() -> None:
    # Fails before: FP32 had no bounds, though values beyond float32 are refused (400)
    # unless allow_non_finite; and a model's NaN (sent as null) broke the response schema.
    assert element_schema(to_numpy("FP32"), finite=False) == {"type": "number", "format": "float"}
    assert element_schema(to_numpy("FP64"), finite=False, nullable=True) == {
        "type": ["number", "null"],
        "format": "double",
    }
    assert element_schema(to_numpy("INT8"), nullable=True)["type"] == "integer"


def test_tensor_schema_nests_arrays_and_bounds_fixed_dimensions() -> None:
    schema = tensor_schema(DIGITS.inputs[0])
    assert schema["type"] == "array"
    assert "minItems" not in schema  # the batch dimension is dynamic
    assert "maxItems" not in schema  # and unbounded without a row limit
    assert schema["items"]["minItems"] == schema["items"]["maxItems"] == 64
    assert schema["items"]["items"] == {
        "type": "number",
        "format": "float",
        "minimum": -F32_MAX,
        "maximum": F32_MAX,
    }
    bounded = tensor_schema(DIGITS.inputs[0], Bounds(max_rows=8192))
    assert bounded["maxItems"] == 8192
    assert "maxItems" not in bounded["items"]["items"]
    assert "FP32" in schema["description"]
    assert "[-1, 64]" in schema["description"]
    assert "batch" in schema["description"]


def test_examples_are_one_sample_of_zeros_and_left_out_when_huge() -> None:
    assert example_tensor(DIGITS.inputs[0]) == [[0.0] * 64]
    huge = TensorSpec("image", np.dtype(np.float32), (None, 3, 224, 224))
    assert MAX_EXAMPLE_ELEMENTS < 3 * 224 * 224
    assert example_tensor(huge) is None
    request = build_typed_schema("Huge", "huge", ModelSignature((huge,), DIGITS.outputs)).request
    assert "examples" not in request.model_json_schema()


def test_request_schema_has_input_names_output_enum_and_an_example() -> None:
    schema = build_typed_schema("Digits", "digits", DIGITS).request.model_json_schema()
    assert schema["title"] == "DigitsPredictRequest"
    inputs = schema["$defs"]["DigitsInputs"]
    assert inputs["required"] == ["pixels"]
    assert inputs["additionalProperties"] is False
    outputs = schema["properties"]["outputs"]["anyOf"][0]
    assert outputs["items"]["enum"] == ["label", "probabilities"]
    jsonschema.validate(schema["examples"][0], schema)


def test_response_schema_lists_outputs_by_name_none_required() -> None:
    schema = build_typed_schema("Digits", "digits", DIGITS).response.model_json_schema()
    outputs = schema["$defs"]["DigitsOutputs"]
    assert set(outputs["properties"]) == {"label", "probabilities"}
    assert "required" not in outputs  # a request may ask for a subset
    assert "default" not in outputs["properties"]["label"]
    jsonschema.validate(schema["examples"][0], schema)


def test_tensor_names_that_are_not_identifiers_stay_json_keys() -> None:
    spec = TensorSpec("input:0", np.dtype(np.float32), (None, 2))
    schema = build_typed_schema("Odd", "odd", ModelSignature((spec,), (spec,))).request
    assert "input:0" in schema.model_json_schema()["$defs"]["OddInputs"]["properties"]


_DIMS = st.one_of(st.none(), st.integers(min_value=1, max_value=4))


@st.composite
def _specs(draw: st.DrawFn, index: int) -> TensorSpec:
    datatype = draw(st.sampled_from(DATATYPES))
    shape = tuple(draw(st.lists(_DIMS, max_size=3)))
    return TensorSpec(f"in{index}", to_numpy(datatype), shape)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_generated_example_validates_and_decodes(data: st.DataObject) -> None:
    """The schema, its example and the codec agree for any signature."""
    inputs = tuple(data.draw(_specs(i)) for i in range(data.draw(st.integers(1, 3))))
    signature = ModelSignature(inputs, inputs)
    schema = build_typed_schema("Any", "any", signature).request.model_json_schema()
    example = schema["examples"][0]
    jsonschema.validate(example, schema)
    arrays, outputs = decode_typed_request(orjson.dumps(example), signature, allow_non_finite=False)
    assert outputs == [spec.name for spec in inputs]
    for spec in inputs:
        assert arrays[spec.name].shape == tuple(1 if d is None else d for d in spec.shape)
        assert arrays[spec.name].dtype == spec.dtype


def test_requested_outputs_are_unique_and_at_most_all_of_them() -> None:
    # Fails before: no uniqueItems, though a repeated output is refused (400).
    schema = build_typed_schema("Digits", "digits", DIGITS).request.model_json_schema()
    outputs = schema["properties"]["outputs"]["anyOf"][0]
    assert outputs["uniqueItems"] is True
    assert outputs["maxItems"] == len(DIGITS.outputs)
    assert outputs["items"]["enum"] == [spec.name for spec in DIGITS.outputs]
