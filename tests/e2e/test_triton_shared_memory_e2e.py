"""System shared memory as Triton's own examples use it (simple_http_shm_client.py,
simple_grpc_shm_client.py, simple_http_shm_string_client.py): tritonclient's shared-memory
utilities create POSIX objects in /dev/shm, the client registers them, inputs are read
from them and outputs written to them, over HTTP and gRPC, on one server process and on
two workers. A region belongs to the subject that registered it."""

from __future__ import annotations

import queue
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import (
    InferenceServerException,
    serialize_byte_tensor,
    serialized_byte_size,
    triton_to_np_dtype,
)

from support.app import bearer, make_settings
from support.grpc_calls import TOKEN, Served, serve
from support.paths import DEMO_MODELS
from support.triton_examples import triton_example_repository

pytestmark = pytest.mark.e2e

HEADERS = {"authorization": TOKEN}
OTHER = {"authorization": bearer(make_settings(DEMO_MODELS), subject="someone-else")}
FIRST = np.arange(16, dtype=np.int32).reshape(1, 16)
SECOND = np.ones((1, 16), dtype=np.int32)
SIZE = FIRST.nbytes


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return triton_example_repository(tmp_path_factory.mktemp("triton"))


@pytest.fixture(scope="module", params=["1", "2"], ids=["one-process", "two-workers"])
def served(request: pytest.FixtureRequest, repo: Path) -> Iterator[Served]:
    process, port = serve(repo, "--workers", request.param)
    with process:
        started = re.compile(r"Application startup complete")
        seen = sum(1 for line in process.lines if started.search(line))
        for _ in range(int(request.param) - seen):
            process.wait_for(started)
        yield Served(process, port)


class Regions:
    """The input and output objects of one example run, destroyed at the end."""

    def __init__(self, input_bytes: int, output_bytes: int) -> None:
        tag = uuid.uuid4().hex[:12]  # the examples' fixed keys, made unique per run
        self.input_key, self.output_key = f"/input_simple_{tag}", f"/output_simple_{tag}"
        self.input = shm.create_shared_memory_region("input_data", self.input_key, input_bytes)
        self.output = shm.create_shared_memory_region("output_data", self.output_key, output_bytes)

    def __enter__(self) -> Regions:
        return self

    def __exit__(self, *_: object) -> None:
        shm.destroy_shared_memory_region(self.input)
        shm.destroy_shared_memory_region(self.output)


def _numeric_inputs(module: Any) -> tuple[list[Any], list[Any]]:
    inputs = [module.InferInput(name, [1, 16], "INT32") for name in ("INPUT0", "INPUT1")]
    inputs[0].set_shared_memory("input_data", SIZE)
    inputs[1].set_shared_memory("input_data", SIZE, offset=SIZE)
    outputs = [module.InferRequestedOutput(name) for name in ("OUTPUT0", "OUTPUT1")]
    outputs[0].set_shared_memory("output_data", SIZE)
    outputs[1].set_shared_memory("output_data", SIZE, offset=SIZE)
    return inputs, outputs


def _read_outputs(result: Any, regions: Regions, from_http: bool) -> tuple[Any, Any]:
    found = []
    for index, name in enumerate(("OUTPUT0", "OUTPUT1")):
        output = result.get_output(name)  # a dict over HTTP, a protobuf message over gRPC
        datatype = output["datatype"] if from_http else output.datatype
        shape = output["shape"] if from_http else list(output.shape)
        found.append(
            shm.get_contents_as_numpy(
                regions.output, triton_to_np_dtype(datatype), shape, offset=index * SIZE
            )
        )
    return found[0], found[1]


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_shm_example_runs_unchanged(served: Served, transport: str) -> None:
    """simple_{http,grpc}_shm_client.py: unregister all, register the output then the
    input region, infer with every tensor in shared memory, read the outputs there."""
    client: Any
    if transport == "http":
        client = httpclient.InferenceServerClient(served.process.base_url.removeprefix("http://"))
        module: Any = httpclient
    else:
        client = grpcclient.InferenceServerClient(served.url)
        module = grpcclient
    with Regions(2 * SIZE, 2 * SIZE) as regions:
        client.unregister_system_shared_memory(headers=HEADERS)
        client.unregister_cuda_shared_memory(headers=HEADERS)
        client.register_system_shared_memory(
            "output_data", regions.output_key, 2 * SIZE, headers=HEADERS
        )
        shm.set_shared_memory_region(regions.input, [FIRST])
        shm.set_shared_memory_region(regions.input, [SECOND], offset=SIZE)
        client.register_system_shared_memory(
            "input_data", regions.input_key, 2 * SIZE, headers=HEADERS
        )
        inputs, outputs = _numeric_inputs(module)
        for _ in range(3):  # every worker (connections may land on either)
            result = client.infer("simple", inputs, outputs=outputs, headers=HEADERS)
            total, difference = _read_outputs(result, regions, transport == "http")
            assert total.tolist() == (FIRST + SECOND).tolist()
            assert difference.tolist() == (FIRST - SECOND).tolist()
        status = client.get_system_shared_memory_status(headers=HEADERS)
        if transport == "grpc":
            status = [
                {"name": r.name, "key": r.key, "offset": r.offset, "byte_size": r.byte_size}
                for r in status.regions.values()
            ]
        assert sorted(status, key=lambda r: str(r["name"])) == [
            {"name": "input_data", "key": regions.input_key, "offset": 0, "byte_size": 2 * SIZE},
            {"name": "output_data", "key": regions.output_key, "offset": 0, "byte_size": 2 * SIZE},
        ]
        client.unregister_system_shared_memory(headers=HEADERS)
        with pytest.raises(InferenceServerException) as gone:
            client.infer("simple", inputs, outputs=outputs, headers=HEADERS)
        assert "Unable to find shared memory region: '" in str(gone.value.message())
    client.close()


def test_the_shm_string_example_runs_unchanged(served: Served) -> None:
    """simple_http_shm_string_client.py: BYTES tensors serialised into the regions."""
    client = httpclient.InferenceServerClient(served.process.base_url.removeprefix("http://"))
    first = FIRST.astype(np.bytes_).astype(object)
    second = SECOND.astype(np.bytes_).astype(object)
    first_bytes, second_bytes = serialize_byte_tensor(first), serialize_byte_tensor(second)
    sizes = (serialized_byte_size(first_bytes), serialized_byte_size(second_bytes))
    out_size = 1000  # the example's room for each output
    with Regions(sum(sizes), 2 * out_size) as regions:
        client.unregister_system_shared_memory(headers=HEADERS)
        shm.set_shared_memory_region(regions.input, [first_bytes])
        shm.set_shared_memory_region(regions.input, [second_bytes], offset=sizes[0])
        client.register_system_shared_memory(
            "input_data", regions.input_key, sum(sizes), headers=HEADERS
        )
        client.register_system_shared_memory(
            "output_data", regions.output_key, 2 * out_size, headers=HEADERS
        )
        inputs = [httpclient.InferInput(name, [1, 16], "BYTES") for name in ("INPUT0", "INPUT1")]
        inputs[0].set_shared_memory("input_data", sizes[0])
        inputs[1].set_shared_memory("input_data", sizes[1], offset=sizes[0])
        outputs = [httpclient.InferRequestedOutput(n) for n in ("OUTPUT0", "OUTPUT1")]
        outputs[0].set_shared_memory("output_data", out_size)
        outputs[1].set_shared_memory("output_data", out_size, offset=out_size)
        result = client.infer("simple_string", inputs, outputs=outputs, headers=HEADERS)
        found = []
        for index, name in enumerate(("OUTPUT0", "OUTPUT1")):
            output = result.get_output(name)
            found.append(
                shm.get_contents_as_numpy(
                    regions.output, np.object_, output["shape"], offset=index * out_size
                )
            )
        assert [int(v) for v in found[0].ravel()] == (FIRST + SECOND).ravel().tolist()
        assert [int(v) for v in found[1].ravel()] == (FIRST - SECOND).ravel().tolist()
        client.unregister_system_shared_memory(headers=HEADERS)
    client.close()


def test_a_region_is_found_by_its_subject_only(served: Served) -> None:
    client = httpclient.InferenceServerClient(served.process.base_url.removeprefix("http://"))
    with Regions(2 * SIZE, 2 * SIZE) as regions:
        shm.set_shared_memory_region(regions.input, [FIRST])
        shm.set_shared_memory_region(regions.input, [SECOND], offset=SIZE)
        client.register_system_shared_memory(
            "input_data", regions.input_key, 2 * SIZE, headers=HEADERS
        )
        client.register_system_shared_memory(
            "output_data", regions.output_key, 2 * SIZE, headers=HEADERS
        )
        assert client.get_system_shared_memory_status(headers=OTHER) == []
        inputs, outputs = _numeric_inputs(httpclient)
        with pytest.raises(InferenceServerException) as refused:
            client.infer("simple", inputs, outputs=outputs, headers=OTHER)
        assert refused.value.status() == "400"
        assert "Unable to find shared memory region: '" in str(refused.value.message())
        client.unregister_system_shared_memory(headers=OTHER)  # not theirs: nothing happens
        assert len(client.get_system_shared_memory_status(headers=HEADERS)) == 2
        client.unregister_system_shared_memory(headers=HEADERS)
    client.close()


def test_a_grpc_stream_reads_and_writes_regions(served: Served) -> None:
    """ModelStreamInfer: each request of the stream names the regions, as unary calls do."""
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    with Regions(2 * SIZE, 2 * SIZE) as regions, served.client() as client:
        shm.set_shared_memory_region(regions.input, [FIRST])
        shm.set_shared_memory_region(regions.input, [SECOND], offset=SIZE)
        for name, key in (("input_data", regions.input_key), ("output_data", regions.output_key)):
            client.register_system_shared_memory(name, key, 2 * SIZE, headers=HEADERS)
        inputs, outputs = _numeric_inputs(grpcclient)
        client.start_stream(
            callback=lambda result, error: answers.put((result, error)), headers=HEADERS
        )
        for index in range(2):
            client.async_stream_infer("simple", inputs, outputs=outputs, request_id=f"s-{index}")
        for _ in range(2):
            result, error = answers.get(timeout=30)
            assert error is None
            total, difference = _read_outputs(result, regions, from_http=False)
            assert total.tolist() == (FIRST + SECOND).tolist()
            assert difference.tolist() == (FIRST - SECOND).tolist()
        client.stop_stream()
        client.unregister_system_shared_memory(headers=HEADERS)
