"""Metrics an operator alerts on: the instrumentator's request metrics for every route
(inference included), model version states, build info."""

from __future__ import annotations

import platform
from pathlib import Path

import onnxruntime

from backends.base import RuntimeOptions
from backends.errors import ModelLoadError
from support.app import make_settings, open_client
from support.fake_backend import FakeBackend, FakeLoader

BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.0] * 4}]}


def write_model(root: Path, name: str, *versions: int) -> None:
    for version in versions:
        (root / name / str(version)).mkdir(parents=True, exist_ok=True)
        (root / name / str(version) / "model.onnx").write_bytes(b"fake")


class BrokenVersionTwo(FakeLoader):
    """Version 2 of every model fails to load."""

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> FakeBackend:
        if path.parent.name == "2":
            raise ModelLoadError("not a model")
        return super().__call__(path, options, label)


async def test_inference_and_other_routes_share_the_instrumentator_metrics(
    tmp_path: Path,
) -> None:
    write_model(tmp_path, "echo", 1)
    async with open_client(make_settings(tmp_path), loader=FakeLoader()) as http:
        for _ in range(3):
            assert (await http.post("/v2/models/echo/infer", json=BODY)).status_code == 200
        assert (await http.post("/v2/models/echo/versions/1/infer", json={})).status_code == 400
        typed = {"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}
        assert (await http.post("/models/echo/predict", json=typed)).status_code == 200
        assert (await http.get("/v2/health/live")).status_code == 200
        text = (await http.get("/metrics")).text
    expected = [
        'http_requests_total{handler="/v2/models/{model_name}/infer",'
        'method="POST",status="2xx"} 3.0',
        'http_requests_total{handler="/v2/models/{model_name}/versions/{model_version}/infer",'
        'method="POST",status="4xx"} 1.0',
        'http_requests_total{handler="/models/{model_name}/predict",'
        'method="POST",status="2xx"} 1.0',
        'http_requests_total{handler="/v2/health/live",method="GET",status="2xx"} 1.0',
        'http_request_duration_seconds_count{handler="/v2/models/{model_name}/infer",'
        'method="POST"} 3.0',
        'http_request_size_bytes_count{handler="/v2/models/{model_name}/infer"} 3.0',
        "http_request_duration_highr_seconds_count 6.0",
    ]
    for line in expected:
        assert line in text, line
    sizes = [
        line
        for line in text.splitlines()
        if line.startswith('http_response_size_bytes_sum{handler="/v2/models/{model_name}/infer"}')
    ]
    assert float(sizes[0].rsplit(" ", 1)[1]) > 0


async def test_version_states_and_build_info_are_exported(tmp_path: Path) -> None:
    write_model(tmp_path, "m", 1, 2)
    async with open_client(make_settings(tmp_path), loader=BrokenVersionTwo()) as http:
        text = (await http.get("/metrics")).text
        assert 'tensorgate_model_version_state{model="m",state="READY",version="1"} 1.0' in text
        assert (
            'tensorgate_model_version_state{model="m",state="UNAVAILABLE",version="1"} 0.0' in text
        )
        assert (
            'tensorgate_model_version_state{model="m",state="UNAVAILABLE",version="2"} 1.0' in text
        )
        info = (
            f'tensorgate_build_info{{onnxruntime="{onnxruntime.__version__}",'
            f'python="{platform.python_version()}",'
        )
        assert info in text
        assert (await http.post("/v2/repository/models/m/unload")).status_code == 200
        after = (await http.get("/metrics")).text
    assert 'tensorgate_model_version_state{model="m",state="READY",version="1"} 0.0' in after
