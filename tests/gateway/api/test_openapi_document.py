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
