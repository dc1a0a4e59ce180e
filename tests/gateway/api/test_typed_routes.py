"""Typed per-model routes through the ASGI app: same results and errors as the protocol routes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

import demo_models
from gateway.api.app import create_app
from gateway.api.state import app_state
from gateway.auth.minting import mint_token, signing_key
from gateway.repository.config import ModelConfig
from gateway.settings import AuthSettings, Settings
from support.app import TOKEN_TTL_S
from support.onnx_models import identity_model, write_model
from support.paths import DEMO_MODELS

MLP_ONNX = DEMO_MODELS / "mlp" / "1" / "model.onnx"
DIGITS_ONNX = DEMO_MODELS / "digits" / "1" / "model.onnx"


def _held_out_digits(count: int) -> tuple[list[list[float]], list[int]]:
    """Test-split rows of scikit-learn's digits data set, which the demo model was not fit on."""
    _, x_test, _, y_test = demo_models.digits_split()
    return x_test[:count].tolist(), y_test[:count].tolist()


PIXELS, LABELS = _held_out_digits(10)
SEVEN = PIXELS[LABELS.index(7)]


@dataclass
class Gateway:
    """A running app: an HTTP client and the lifespan state (its registry)."""

    http: httpx.AsyncClient
    state: Mapping[str, Any]
    auth: AuthSettings


def _token(auth: AuthSettings, *scopes: str) -> str:
    return mint_token(signing_key(auth), subject="typed-test", scopes=scopes, ttl_s=TOKEN_TTL_S)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """The demo repository served in-process, lifespan running; requests carry a token
    with ``models:infer``."""
    auth = AuthSettings(secret=SecretStr(secrets.token_urlsafe(48)))
    app = create_app(Settings(model_repository=DEMO_MODELS, auth=auth))

    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # What a server does with lifespan state: a copy in every request scope.
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        headers = {"Authorization": f"Bearer {_token(auth, 'models:infer')}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as http:
            yield Gateway(http, state, auth)


def _protocol_body(pixels: list[list[float]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "pixels", "shape": [len(pixels), 64], "datatype": "FP32", "data": pixels}
        ]
    }


async def test_typed_prediction_matches_the_protocol_route(gateway: Gateway) -> None:
    typed = await gateway.http.post("/models/digits/predict", json={"inputs": {"pixels": PIXELS}})
    assert typed.status_code == 200, typed.text
    body = typed.json()
    assert body["model_name"] == "digits"
    assert body["model_version"] == "1"
    assert body["outputs"]["label"] == LABELS
    protocol = await gateway.http.post("/v2/models/digits/infer", json=_protocol_body(PIXELS))
    by_name = {out["name"]: out["data"] for out in protocol.json()["outputs"]}
    assert body["outputs"]["label"] == by_name["label"]
    flat = [p for row in body["outputs"]["probabilities"] for p in row]
    assert flat == by_name["probabilities"]


async def test_versioned_route_and_requested_outputs(gateway: Gateway) -> None:
    response = await gateway.http.post(
        "/models/digits/versions/1/predict",
        json={"inputs": {"pixels": [SEVEN, [0.0] * 64]}, "outputs": ["label"]},
    )
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert list(outputs) == ["label"]
    assert len(outputs["label"]) == 2


async def test_a_body_without_content_type_is_read_as_json(gateway: Gateway) -> None:
    response = await gateway.http.post(
        "/models/digits/predict", content=b'{"inputs": {"pixels": [' + str(SEVEN).encode() + b"]}}"
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("typed_data", "protocol_data"),
    [
        ([[1.0] * 63], [[1.0] * 63]),  # a fixed dimension is wrong
        ([["1"] * 64], [["1"] * 64]),  # strings are never numbers
    ],
)
async def test_errors_have_the_protocol_status_and_body(
    gateway: Gateway, typed_data: list[Any], protocol_data: list[Any]
) -> None:
    typed = await gateway.http.post(
        "/models/digits/predict", json={"inputs": {"pixels": typed_data}}
    )
    wire = _protocol_body(protocol_data)
    wire["inputs"][0]["shape"] = [1, len(protocol_data[0])]
    protocol = await gateway.http.post("/v2/models/digits/infer", json=wire)
    assert typed.status_code == protocol.status_code == 400
    assert typed.json() == protocol.json()
    assert set(typed.json()) == {"error"}


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "request body is empty"),
        (b"{", 400, "not valid JSON"),
        (b'{"inputs": {"pixels": [[0.0]]}, "x": 1}', 400, "x: Extra inputs are not permitted"),
    ],
)
async def test_malformed_bodies_get_a_clear_400(
    gateway: Gateway, content: bytes, status: int, message: str
) -> None:
    response = await gateway.http.post("/models/digits/predict", content=content)
    assert response.status_code == status
    assert message in response.json()["error"]


async def test_unknown_versions_and_methods_answer_in_the_error_shape(gateway: Gateway) -> None:
    missing = await gateway.http.post("/models/digits/versions/9/predict", json={})
    assert missing.status_code == 404
    assert set(missing.json()) == {"error"}
    wrong_method = await gateway.http.get("/models/digits/predict")
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) == {"error"}


async def test_each_model_gets_readable_operation_ids_and_a_tag(gateway: Gateway) -> None:
    document = (await gateway.http.get("/openapi.json")).json()
    operation = document["paths"]["/models/digits/predict"]["post"]
    assert operation["operationId"] == "predict_digits"
    assert operation["tags"] == ["digits"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DigitsPredictRequest"
    }
    versioned = document["paths"]["/models/digits/versions/1/predict"]["post"]
    assert versioned["operationId"] == "predict_digits_v1"
    assert document["paths"]["/models/mlp/predict"]["post"]["operationId"] == "predict_mlp"
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert {"digits", "mlp"} <= {tag["name"] for tag in document["tags"]}
    inputs = document["components"]["schemas"]["DigitsInputs"]["properties"]["pixels"]
    assert inputs["items"]["minItems"] == inputs["items"]["maxItems"] == 64


async def test_the_document_follows_models_loaded_and_unloaded_at_run_time(
    gateway: Gateway,
) -> None:
    registry = app_state({"state": gateway.state}).registry
    before = (await gateway.http.get("/openapi.json")).json()
    assert "/models/extra/predict" not in before["paths"]

    await registry.load_version("extra", 3, MLP_ONNX, ModelConfig())
    loaded = (await gateway.http.get("/openapi.json")).json()
    assert loaded["paths"]["/models/extra/predict"]["post"]["operationId"] == "predict_extra"
    assert "/models/extra/versions/3/predict" in loaded["paths"]
    assert "ExtraPredictRequest" in loaded["components"]["schemas"]
    answer = await gateway.http.post(
        "/models/extra/predict", json={"inputs": {"input": [[0.5] * 256]}}
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["outputs"]["logits"][0]) == 10

    await registry.unload_version("extra", 3)
    unloaded = (await gateway.http.get("/openapi.json")).json()
    assert "/models/extra/predict" not in unloaded["paths"]
    assert "ExtraPredictRequest" not in unloaded["components"]["schemas"]
    gone = await gateway.http.post(
        "/models/extra/predict", json={"inputs": {"input": [[0.5] * 256]}}
    )
    assert gone.status_code == 404
    assert unloaded["paths"].keys() == before["paths"].keys()


async def test_clashing_names_and_changed_signatures_get_distinct_schemas(
    gateway: Gateway,
) -> None:
    """``my-model`` and ``my_model`` both read MyModel; versions with the same signature
    share models, named after the highest of them; the highest ready version's are plain."""
    registry = app_state({"state": gateway.state}).registry
    mlp, digits = MLP_ONNX, DIGITS_ONNX
    await registry.load_version("my-model", 1, mlp, ModelConfig())
    await registry.load_version("my_model", 1, mlp, ModelConfig())
    await registry.load_version("my_model", 2, mlp, ModelConfig())
    await registry.load_version("my_model", 3, digits, ModelConfig())
    document = (await gateway.http.get("/openapi.json")).json()

    def request_schema(path: str) -> str:
        operation = document["paths"][path]["post"]
        ref: str = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return f"{operation['operationId']} {ref.rsplit('/', 1)[1]}"

    assert request_schema("/models/my-model/predict") == "predict_my_model MyModelPredictRequest"
    assert request_schema("/models/my_model/predict") == "predict_my_model2 MyModel2PredictRequest"
    assert [
        request_schema(f"/models/my_model/versions/{version}/predict") for version in (1, 2, 3)
    ] == [
        "predict_my_model2_v1 MyModel2V2PredictRequest",
        "predict_my_model2_v2 MyModel2V2PredictRequest",
        "predict_my_model2_v3 MyModel2PredictRequest",
    ]


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (("models:infer:digits",), 200),
        (("models:infer",), 200),
        (("models:infer:mlp",), 403),
        (("models:read",), 403),
        ((), 403),
    ],
)
async def test_typed_routes_need_the_infer_scope_for_their_model(
    gateway: Gateway, scopes: tuple[str, ...], status: int
) -> None:
    headers = {"Authorization": f"Bearer {_token(gateway.auth, *scopes)}"}
    for path in ("/models/digits/predict", "/models/digits/versions/1/predict"):
        response = await gateway.http.post(
            path, json={"inputs": {"pixels": [SEVEN]}}, headers=headers
        )
        assert response.status_code == status, response.text
        if status == 403:
            assert "models:infer:digits" in response.json()["error"]


async def test_typed_routes_refuse_a_missing_token_before_reading_the_body(
    gateway: Gateway,
) -> None:
    response = await gateway.http.post(
        "/models/digits/predict", content=b"not json", headers={"Authorization": ""}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error"}


async def test_the_document_declares_the_per_model_scope(gateway: Gateway) -> None:
    document = (await gateway.http.get("/openapi.json")).json()
    security = document["paths"]["/models/digits/predict"]["post"]["security"]
    assert {"bearerAuth": ["models:infer"]} in security
    assert {"bearerAuth": ["models:infer:digits"]} in security


async def test_a_model_named_like_a_builtin_tag_keeps_the_document_valid(
    gateway: Gateway,
) -> None:
    registry = app_state({"state": gateway.state}).registry
    await registry.load_version("models", 1, MLP_ONNX, ModelConfig())
    document = (await gateway.http.get("/openapi.json")).json()
    names = [tag["name"] for tag in document["tags"]]
    assert len(names) == len(set(names))
    assert document["paths"]["/models/models/predict"]["post"]["tags"] == ["models"]
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []


async def test_every_datatype_round_trips_from_the_documented_example(
    gateway: Gateway, tmp_path: Path
) -> None:
    """The identity model echoes one input per datatype: the example in the document is
    accepted, and every output comes back as it went in."""
    path = write_model(tmp_path, "identity", identity_model())
    await app_state({"state": gateway.state}).registry.load_version(
        "identity", 1, path, ModelConfig()
    )
    document = (await gateway.http.get("/openapi.json")).json()
    example = document["components"]["schemas"]["IdentityPredictRequest"]["examples"][0]
    inputs = dict(example["inputs"])
    assert inputs["in_fp32"] == [[0.0, 0.0]]
    inputs["in_bytes"] = [["a", "é"]]
    inputs["in_int8"] = [[-128, 127]]
    inputs["in_bool"] = [[True, False]]
    response = await gateway.http.post("/models/identity/predict", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert outputs == {name.replace("in_", "out_"): value for name, value in inputs.items()}
