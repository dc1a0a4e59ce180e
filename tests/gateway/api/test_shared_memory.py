"""System shared memory over ASGI: registration, tensors read from and written to regions,
and a table of hostile registrations and requests, each a clear 4xx naming what is wrong."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from gateway.auth.principal import MODELS_READ
from support.app import bearer, make_settings, open_client
from support.triton_examples import triton_example_repository

SIZE = 64  # one [1, 16] INT32 tensor
FIRST = np.arange(16, dtype=np.int32)
SECOND = np.ones(16, dtype=np.int32)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return triton_example_repository(tmp_path / "models")


@pytest.fixture
async def client(root: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(make_settings(root)) as opened:
        yield opened


@pytest.fixture
def region() -> Iterator[shared_memory.SharedMemory]:
    """A 4 * 64-byte object in /dev/shm: INPUT0 then INPUT1, then room for two outputs."""
    made = shared_memory.SharedMemory(f"tg_test_{uuid.uuid4().hex[:12]}", create=True, size=256)
    buffer = made.buf
    assert buffer is not None
    buffer[:SIZE] = FIRST.tobytes()
    buffer[SIZE : 2 * SIZE] = SECOND.tobytes()
    yield made
    made.close()
    made.unlink()


def key_of(made: shared_memory.SharedMemory) -> str:
    return "/" + made.name.lstrip("/")


async def register(
    client: httpx.AsyncClient, name: str, key: str, byte_size: int, offset: int = 0, **kw: Any
) -> httpx.Response:
    body = {"key": key, "offset": offset, "byte_size": byte_size}
    return await client.post(f"/v2/systemsharedmemory/region/{name}/register", json=body, **kw)


def shm_input(name: str, region: str, offset: int, byte_size: int = SIZE) -> dict[str, Any]:
    parameters = {"shared_memory_region": region, "shared_memory_byte_size": byte_size}
    if offset:
        parameters["shared_memory_offset"] = offset
    return {"name": name, "shape": [1, 16], "datatype": "INT32", "parameters": parameters}


def shm_output(name: str, region: str, offset: int, byte_size: int = SIZE) -> dict[str, Any]:
    parameters = {
        "shared_memory_region": region,
        "shared_memory_byte_size": byte_size,
        "shared_memory_offset": offset,
    }
    return {"name": name, "parameters": parameters}


def request_body(
    inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": inputs or [shm_input("INPUT0", "r", 0), shm_input("INPUT1", "r", SIZE)]
    }
    if outputs is not None:
        body["outputs"] = outputs
    return body


async def test_tensors_are_read_from_and_written_to_the_callers_region(
    client: httpx.AsyncClient, region: shared_memory.SharedMemory
) -> None:
    assert (await register(client, "r", key_of(region), 256)).status_code == 200
    status = await client.get("/v2/systemsharedmemory/status")
    assert status.json() == [{"name": "r", "key": key_of(region), "offset": 0, "byte_size": 256}]
    outputs = [shm_output("OUTPUT0", "r", 2 * SIZE), {"name": "OUTPUT1"}]
    answer = await client.post("/v2/models/simple/infer", json=request_body(outputs=outputs))
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["outputs"]
    assert first == {
        "name": "OUTPUT0",
        "datatype": "INT32",
        "shape": [1, 16],
        "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": SIZE},
    }
    assert second["data"] == (FIRST - SECOND).tolist()  # the other output as JSON
    buffer = region.buf
    assert buffer is not None
    written = np.frombuffer(buffer[2 * SIZE : 3 * SIZE], dtype=np.int32)
    assert written.tolist() == (FIRST + SECOND).tolist()
    # The client writes new inputs into the region: the next request reads them.
    buffer[:SIZE] = (FIRST * 10).tobytes()
    again = await client.post("/v2/models/simple/infer", json=request_body(outputs=outputs))
    assert again.json()["outputs"][1]["data"] == (FIRST * 10 - SECOND).tolist()
    assert (await client.post("/v2/systemsharedmemory/region/r/unregister")).status_code == 200
    assert (await client.get("/v2/systemsharedmemory/status")).json() == []


async def test_a_registered_offset_starts_the_region_there(
    client: httpx.AsyncClient, region: shared_memory.SharedMemory
) -> None:
    assert (await register(client, "second", key_of(region), SIZE, offset=SIZE)).status_code == 200
    inputs = [shm_input("INPUT0", "second", 0), shm_input("INPUT1", "second", 0)]
    answer = await client.post("/v2/models/simple/infer", json=request_body(inputs))
    assert answer.json()["outputs"][0]["data"] == (SECOND + SECOND).tolist()


@pytest.fixture
def symlink_in_shm() -> Iterator[str]:
    """/dev/shm/<name> -> /etc/hostname: a key that would lead out of /dev/shm."""
    name = f"tg_link_{uuid.uuid4().hex[:12]}"
    os.symlink("/etc/hostname", f"/dev/shm/{name}")
    yield "/" + name
    os.unlink(f"/dev/shm/{name}")


@pytest.fixture
def directory_in_shm() -> Iterator[str]:
    name = f"tg_dir_{uuid.uuid4().hex[:12]}"
    os.mkdir(f"/dev/shm/{name}")
    yield "/" + name
    os.rmdir(f"/dev/shm/{name}")


@pytest.fixture
def fifo_in_shm() -> Iterator[str]:
    """A named pipe: opening it must not wait for a writer, and it is no region."""
    name = f"tg_fifo_{uuid.uuid4().hex[:12]}"
    os.mkfifo(f"/dev/shm/{name}")
    yield "/" + name
    os.unlink(f"/dev/shm/{name}")


@pytest.mark.parametrize(
    ("key", "byte_size", "offset", "expected"),
    [
        ("/../etc/passwd", 8, 0, "is not a shared memory object's name"),
        ("/a/b", 8, 0, "is not a shared memory object's name"),
        ("/", 8, 0, "is not a shared memory object's name"),
        ("/tg_never_created", 8, 0, "Unable to open shared memory region: '/tg_never_created'"),
        ("REGION", 257, 0, "runs past the end of"),
        ("REGION", 200, 100, "runs past the end of"),
        ("REGION", 0, 0, "byte_size must be at least 1"),
        ("SYMLINK", 8, 0, "Unable to open shared memory region"),
        ("DIRECTORY", 8, 0, "(is a directory)"),
        ("FIFO", 8, 0, "is not a shared memory object"),
    ],
)
async def test_a_hostile_registration_is_refused_naming_why(
    client: httpx.AsyncClient,
    region: shared_memory.SharedMemory,
    symlink_in_shm: str,
    directory_in_shm: str,
    fifo_in_shm: str,
    key: str,
    byte_size: int,
    offset: int,
    expected: str,
) -> None:
    named = {
        "REGION": key_of(region),
        "SYMLINK": symlink_in_shm,
        "DIRECTORY": directory_in_shm,
        "FIFO": fifo_in_shm,
    }
    key = named.get(key, key)
    refused = await register(client, "r", key, byte_size, offset)
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]
    assert message.startswith("failed to register system shared memory region 'r': ")
    assert expected in message
    assert (await client.get("/v2/systemsharedmemory/status")).json() == []


async def test_registration_bounds_and_scope(
    client: httpx.AsyncClient, root: Path, region: shared_memory.SharedMemory
) -> None:
    assert (await register(client, "r", key_of(region), 256)).status_code == 200
    again = await register(client, "r", key_of(region), 256)
    assert (again.status_code, again.json()["error"]) == (
        400,
        "shared memory region 'r' already in manager",
    )
    reader = {"Authorization": bearer(make_settings(root), (MODELS_READ,))}
    forbidden = await register(client, "other", key_of(region), 256, headers=reader)
    assert forbidden.status_code == 403
    assert "models:infer" in forbidden.json()["error"]
    not_json = await client.post("/v2/systemsharedmemory/region/x/register", content=b"{oops")
    assert (not_json.status_code, not_json.json()["error"][:20]) == (400, "the body is not JSON")
    missing = await client.post("/v2/systemsharedmemory/region/x/register", json={"key": "/k"})
    assert missing.status_code == 400
    assert "byte_size" in missing.json()["error"]


async def test_a_caller_holds_at_most_max_regions(
    root: Path, region: shared_memory.SharedMemory
) -> None:
    settings = make_settings(root, shared_memory={"max_regions": 2})
    async with open_client(settings) as client:
        for name in ("a", "b"):
            assert (await register(client, name, key_of(region), 64)).status_code == 200
        refused = await register(client, "c", key_of(region), 64)
        assert refused.status_code == 400
        assert "shared_memory.max_regions" in refused.json()["error"]


async def test_registration_is_refused_when_system_shared_memory_is_off(
    root: Path, region: shared_memory.SharedMemory
) -> None:
    async with open_client(make_settings(root, shared_memory={"system": False})) as client:
        refused = await register(client, "r", key_of(region), 64)
        assert refused.status_code == 400
        assert "shared_memory.system" in refused.json()["error"]


def _input_with(**parameters: Any) -> dict[str, Any]:
    return {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "parameters": parameters}


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        ([shm_input("INPUT0", "nope", 0)], None, "Unable to find shared memory region: 'nope'"),
        ([shm_input("INPUT0", "r", 256)], None, "Invalid offset for shared memory region: 'r'"),
        (
            [shm_input("INPUT0", "r", 200)],
            None,
            "Invalid offset + byte size for shared memory region: 'r'",
        ),
        ([shm_input("INPUT0", "r", 0, 60)], None, "shared_memory_byte_size is 60 bytes"),
        (
            [{**shm_input("INPUT0", "r", 0), "data": list(range(16))}],
            None,
            "Input must set only one of the following fields",
        ),
        (
            [_input_with(shared_memory_region="r")],
            None,
            "parameters.shared_memory_byte_size must be a non-negative integer",
        ),
        (
            [_input_with(shared_memory_region="r", shared_memory_byte_size=-1)],
            None,
            "parameters.shared_memory_byte_size must be a non-negative integer",
        ),
        (
            [_input_with(shared_memory_region=7, shared_memory_byte_size=64)],
            None,
            "parameters.shared_memory_region must be a region's name",
        ),
        (
            None,
            [shm_output("OUTPUT0", "r", 0, 63)],
            "for output 'OUTPUT0' (63 bytes) should be at least 64 bytes to hold the results",
        ),
        (
            None,
            [
                {
                    "name": "OUTPUT0",
                    "parameters": {
                        **shm_output("OUTPUT0", "r", 0)["parameters"],
                        "binary_data": True,
                    },
                }
            ],
            "Output can't set both 'shared_memory_region' and 'binary_data'",
        ),
        (
            None,
            [
                {
                    "name": "OUTPUT0",
                    "parameters": {
                        **shm_output("OUTPUT0", "r", 0)["parameters"],
                        "classification": 2,
                    },
                }
            ],
            "Output can't set both 'shared_memory_region' and 'classification'",
        ),
    ],
)
async def test_a_hostile_request_is_a_clear_400(
    client: httpx.AsyncClient,
    region: shared_memory.SharedMemory,
    inputs: list[dict[str, Any]] | None,
    outputs: list[dict[str, Any]] | None,
    expected: str,
) -> None:
    assert (await register(client, "r", key_of(region), 256)).status_code == 200
    body = request_body(
        [*(inputs or [shm_input("INPUT0", "r", 0)]), shm_input("INPUT1", "r", SIZE)], outputs
    )
    answer = await client.post("/v2/models/simple/infer", json=body)
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["error"]
    healthy = await client.post("/v2/models/simple/infer", json=request_body())
    assert healthy.status_code == 200  # the region still serves well-formed requests


async def test_an_input_larger_than_a_body_may_be_is_413(root: Path) -> None:
    big = shared_memory.SharedMemory(f"tg_test_{uuid.uuid4().hex[:12]}", create=True, size=4096)
    try:
        async with open_client(make_settings(root, max_request_body_bytes=1024)) as client:
            assert (await register(client, "big", key_of(big), 4096)).status_code == 200
            huge = shm_input("INPUT0", "big", 0, 2048)
            answer = await client.post("/v2/models/simple/infer", json=request_body([huge]))
            assert answer.status_code == 413
            assert "shared_memory_byte_size 2048 is over 1024 bytes" in answer.json()["error"]
    finally:
        big.close()
        big.unlink()
