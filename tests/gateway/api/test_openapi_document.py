"""The checked-in OpenAPI document: in sync with the code and valid OpenAPI 3.1."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.cli import main
from support.paths import DEMO_MODELS, SCHEMAS

CHECKED_IN = SCHEMAS / "openapi.json"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What ``tensorgate openapi`` prints for the demo repository."""
    output = tmp_path_factory.mktemp("openapi") / "openapi.json"
    assert main(["openapi", "--models", str(DEMO_MODELS), "--output", str(output)]) == 0
    return output.read_bytes()


def test_checked_in_document_matches_the_code(exported: bytes) -> None:
    assert exported == CHECKED_IN.read_bytes(), (
        "schemas/openapi.json is out of date: run `make openapi` and commit the result"
    )


def test_document_is_valid_openapi_3_1(exported: bytes) -> None:
    document: dict[str, Any] = orjson.loads(exported)
    assert document["openapi"].startswith("3.1.")
    errors = [str(error) for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_document_describes_the_demo_models_typed_routes(exported: bytes) -> None:
    document: dict[str, Any] = orjson.loads(exported)
    assert document["paths"]["/models/digits/predict"]["post"]["operationId"] == "predict_digits"
    assert document["paths"]["/models/mlp/predict"]["post"]["operationId"] == "predict_mlp"
    schemas = document["components"]["schemas"]
    example = schemas["DigitsPredictRequest"]["examples"][0]
    assert len(example["inputs"]["pixels"][0]) == 64
    assert "InferenceRequest" in schemas


def test_document_lists_the_statuses_the_server_sends(exported: bytes) -> None:
    # Fails before: 422 documented (the server answers 400), 500 and 413 missing where any
    # route can send them, /metrics without its 401/403.
    document: dict[str, Any] = orjson.loads(exported)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert "422" not in statuses, (method, path)
            assert {"413", "500"} <= statuses, (method, path)
    assert {"401", "403"} <= set(document["paths"]["/metrics"]["get"]["responses"])
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_typed_schemas_state_the_bounds_the_server_enforces(exported: bytes) -> None:
    # Fails before: FP32 elements unbounded though beyond-float32 values are refused, no
    # uniqueItems on outputs, no row limit, and output NaN (null) outside the schema.
    schemas = orjson.loads(exported)["components"]["schemas"]
    pixels = schemas["DigitsInputs"]["properties"]["pixels"]
    assert pixels["maxItems"] == 128 * 64  # max_queue_size x max_batch_size
    element = pixels["items"]["items"]
    assert element["maximum"] == -element["minimum"] == 3.4028234663852886e38
    outputs = schemas["DigitsPredictRequest"]["properties"]["outputs"]["anyOf"][0]
    assert outputs["uniqueItems"] is True
    probabilities = schemas["DigitsOutputs"]["properties"]["probabilities"]
    assert probabilities["items"]["items"]["type"] == ["number", "null"]
