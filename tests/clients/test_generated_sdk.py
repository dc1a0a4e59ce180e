"""A Python SDK generated from schemas/openapi.json calls a real server through typed methods."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from support.live_gateway import Digits, LiveServer
from support.paths import SCHEMAS

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "tensorgate_client"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Generate the client package, pip-install it into a temporary directory, import it."""
    work = tmp_path_factory.mktemp("sdk")
    config = work / "generator.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")  # no formatter runs on output
    subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(SCHEMAS / "openapi.json"),
            "--meta",
            "setup",
            "--config",
            str(config),
            "--output-path",
            str(work / "project"),
        ],
        check=True,
        capture_output=True,
    )
    site = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",  # httpx and attrs are already here; nothing is downloaded
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(work / "project"),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(site))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_typed_method_takes_the_generated_model_and_returns_labels(
    sdk: ModuleType, live_server: LiveServer, digits: Digits
) -> None:
    predict_digits = importlib.import_module(f"{PACKAGE}.api.digits.predict_digits")
    models = importlib.import_module(f"{PACKAGE}.models")
    body = models.DigitsPredictRequest(inputs=models.DigitsInputs(pixels=digits.pixels))
    with sdk.AuthenticatedClient(
        base_url=live_server.base_url, token=live_server.token, raise_on_unexpected_status=True
    ) as client:
        result = predict_digits.sync(client=client, body=body)
    assert isinstance(result, models.DigitsPredictResponse)
    assert result.model_name == "digits"
    assert result.outputs.label == digits.labels
    assert len(result.outputs.probabilities) == len(digits.labels)


def test_typed_method_returns_the_error_model_for_bad_input(
    sdk: ModuleType, live_server: LiveServer
) -> None:
    predict_digits = importlib.import_module(f"{PACKAGE}.api.digits.predict_digits")
    models = importlib.import_module(f"{PACKAGE}.models")
    body = models.DigitsPredictRequest(inputs=models.DigitsInputs(pixels=[[0.0] * 63]))
    with sdk.AuthenticatedClient(base_url=live_server.base_url, token=live_server.token) as client:
        response = predict_digits.sync_detailed(client=client, body=body)
    assert response.status_code == 400
    assert isinstance(response.parsed, models.ErrorResponse)
    assert "the model expects 64" in response.parsed.error


def test_without_a_token_the_typed_method_gets_a_401_error_model(
    sdk: ModuleType, live_server: LiveServer, digits: Digits
) -> None:
    predict_digits = importlib.import_module(f"{PACKAGE}.api.digits.predict_digits")
    models = importlib.import_module(f"{PACKAGE}.models")
    body = models.DigitsPredictRequest(inputs=models.DigitsInputs(pixels=digits.pixels))
    with sdk.Client(base_url=live_server.base_url) as client:
        response = predict_digits.sync_detailed(client=client, body=body)
    assert response.status_code == 401
    assert isinstance(response.parsed, models.ErrorResponse)
    assert "bearer token" in response.parsed.error
