"""What a client is told when a backend fails: runtime errors stay generic, a remote
model's upstream failures become 502, 503 or 504 naming the upstream."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import Array
from backends.errors import InferenceError
from gateway.dataplane.inference import outputs_of
from gateway.errors import GatewayError, status_for
from gateway.repository.config import ModelConfig
from gateway.repository.registry import ModelVersion


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("UpstreamUnavailable", 503),
        ("DeadlineExceeded", 504),
        ("BadGateway", 502),
        ("InvalidArgument", 400),
        ("Fail", 500),
    ],
)
async def test_backend_failures_map_to_statuses(kind: str, status: int) -> None:
    model = ModelVersion("m", 2, ModelConfig())
    future: asyncio.Future[dict[str, Array]] = asyncio.get_running_loop().create_future()
    future.set_exception(InferenceError("http://gpu-0:8000: open (ConnectError)", kind=kind))
    with pytest.raises(GatewayError) as raised:
        await outputs_of(model, future)
    assert status_for(raised.value) == status
    message = raised.value.message
    if status in (502, 503, 504):
        assert message == "model 'm' version 2: http://gpu-0:8000: open (ConnectError)"
    else:
        assert "gpu-0" not in message  # a runtime's own words stay in the log
