"""The shared-memory table: keys as shm_open reads them, each caller's own regions, and
regions unmapped on unregister and at shutdown. Objects are files of a temporary
directory standing for /dev/shm (the mapping is the same)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import ModelSignature, TensorSpec
from gateway.dataplane.codecs import DecodingRules
from gateway.errors import InvalidInput, RegionNotFound
from gateway.grpc.tensors import decode_infer_request
from gateway.proto import grpc_service_pb2 as pb
from gateway.protocol.shm_regions import RegionSpec, object_path
from gateway.protocol.shm_table import SharedMemoryTable

ADDER = ModelSignature(
    inputs=(
        TensorSpec("a", np.dtype(np.float32), (None, 3)),
        TensorSpec("b", np.dtype(np.float32), (None, 3)),
    ),
    outputs=(TensorSpec("sum", np.dtype(np.float32), (None, 3)),),
)


@pytest.fixture
def table(tmp_path: Path) -> SharedMemoryTable:
    (tmp_path / "obj").write_bytes(np.arange(32, dtype=np.float32).tobytes())  # 128 bytes
    return SharedMemoryTable(directory=tmp_path)


@given(st.text(min_size=1, max_size=40) | st.sampled_from(["/\ud800", "/a\x00", "/" + "x" * 256]))
def test_a_key_names_one_file_of_the_directory_or_is_refused(key: str) -> None:
    name = key.lstrip("/")
    valid = (
        name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and name.encode("utf-8", "replace").decode("utf-8") == name
        and len(name.encode("utf-8", "replace")) <= 255
    )
    if not valid:
        with pytest.raises(InvalidInput, match="is not a shared memory object's name"):
            object_path(key, Path("/dev/shm"))
        return
    path = object_path(key, Path("/dev/shm"))
    assert path.parent == Path("/dev/shm")
    assert path.name == key.lstrip("/")
    assert path.name not in ("", ".", "..")
    assert len(path.name.encode("utf-8")) <= 255


def test_regions_belong_to_their_subject(table: SharedMemoryTable) -> None:
    table.register("system", "alice", RegionSpec("r", "/obj", 16, 64))
    assert table.status("system", "alice", None) == [
        {"name": "r", "key": "/obj", "offset": 16, "byte_size": 64}
    ]
    assert table.status("system", "bob", None) == []
    with pytest.raises(RegionNotFound):
        table.status("system", "bob", "r")
    with pytest.raises(InvalidInput, match="Unable to find shared memory region: 'r'"):
        table.part("bob", "r", 0, 4)
    table.unregister("system", "bob", None)  # not bob's: nothing happens
    region = table.part("alice", "r", 0, 12)
    assert np.frombuffer(region.read(0, 12), np.float32).tolist() == [4.0, 5.0, 6.0]


def test_a_region_is_unmapped_on_unregister_and_at_close(table: SharedMemoryTable) -> None:
    table.register("system", "alice", RegionSpec("r", "/obj", 0, 128))
    region = table.part("alice", "r", 0, 4)
    table.unregister("system", "alice", "r")
    with pytest.raises(InvalidInput, match="was unregistered while the request used it"):
        region.read(0, 4)
    table.register("system", "alice", RegionSpec("r", "/obj", 0, 128))
    table.register("system", "bob", RegionSpec("s", "/obj", 0, 128))
    held = [table.part("alice", "r", 0, 4), table.part("bob", "s", 0, 4)]
    table.close()
    for each in held:
        with pytest.raises(InvalidInput):
            each.write(0, b"1234")
    assert table.status("system", "alice", None) == []


def test_cuda_registration_is_refused_and_its_status_is_empty(table: SharedMemoryTable) -> None:
    with pytest.raises(InvalidInput, match="CUDA shared memory needs a GPU"):
        table.register("cuda", "alice", RegionSpec("r", "/obj", 0, 8))
    assert table.status("cuda", "alice", None) == []
    table.unregister("cuda", "alice", None)


def _grpc_request(with_raw_b: bool = True) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="adder", id="r-1")
    a = request.inputs.add(name="a", datatype="FP32", shape=[1, 3])
    a.parameters["shared_memory_region"].string_param = "r"
    a.parameters["shared_memory_byte_size"].int64_param = 12
    a.parameters["shared_memory_offset"].int64_param = 12
    request.inputs.add(name="b", datatype="FP32", shape=[1, 3])
    if with_raw_b:
        request.raw_input_contents.append(np.full(3, 10, np.float32).tobytes())
    out = request.outputs.add(name="sum")
    out.parameters["shared_memory_region"].string_param = "r"
    out.parameters["shared_memory_byte_size"].int64_param = 12
    out.parameters["shared_memory_offset"].int64_param = 64
    return request


def test_grpc_reads_inputs_from_a_region_beside_raw_contents_and_writes_outputs(
    table: SharedMemoryTable,
) -> None:
    table.register("system", "alice", RegionSpec("r", "/obj", 0, 128))
    rules = DecodingRules(ADDER, regions=table)
    decoded = decode_infer_request(_grpc_request(), rules, subject="alice")
    assert decoded.inputs["a"].tolist() == [[3.0, 4.0, 5.0]]
    assert decoded.inputs["b"].tolist() == [[10.0, 10.0, 10.0]]
    total = np.add(decoded.inputs["a"], decoded.inputs["b"])
    body = decoded.encode("adder", 1, {"sum": total})
    response = pb.ModelInferResponse.FromString(body)
    assert list(response.raw_output_contents) == [b""]  # the output is in the region
    written = np.frombuffer(table.part("alice", "r", 64, 12).read(64, 12), np.float32)
    assert written.tolist() == [13.0, 14.0, 15.0]
    with pytest.raises(InvalidInput, match="Unable to find shared memory region: 'r'"):
        decode_infer_request(_grpc_request(), rules, subject="bob")
    request = _grpc_request()
    request.raw_input_contents.append(b"")
    with pytest.raises(InvalidInput, match="raw_input_contents for 1 inputs not in shared"):
        decode_infer_request(request, rules, subject="alice")


def test_grpc_refuses_contents_beside_a_region(table: SharedMemoryTable) -> None:
    table.register("system", "alice", RegionSpec("r", "/obj", 0, 128))
    request = _grpc_request(with_raw_b=False)
    request.inputs[0].contents.fp32_contents.extend([1.0, 2.0, 3.0])
    request.inputs[1].contents.fp32_contents.extend([1.0, 2.0, 3.0])
    with pytest.raises(InvalidInput, match="unexpected 'content' provided when using shared"):
        decode_infer_request(request, DecodingRules(ADDER, regions=table), subject="alice")


def test_an_object_truncated_after_registration_is_an_error_not_a_crash(
    tmp_path: Path, table: SharedMemoryTable
) -> None:
    table.register("system", "alice", RegionSpec("r", "/obj", 0, 128))
    os.truncate(tmp_path / "obj", 16)  # a client shrinks its object behind the server's back
    region = table.part("alice", "r", 64, 64)
    with pytest.raises(InvalidInput, match="holds fewer bytes than it was registered with"):
        region.read(64, 64)
    region.write(64, bytes(64))  # writing grows it again: no crash either
    assert len(region.read(64, 64)) == 64


def test_the_server_holds_at_most_max_regions_total(tmp_path: Path) -> None:
    (tmp_path / "obj").write_bytes(bytes(8))
    table = SharedMemoryTable(max_regions_total=2, directory=tmp_path)
    table.register("system", "alice", RegionSpec("a", "/obj", 0, 8))
    table.register("system", "bob", RegionSpec("b", "/obj", 0, 8))
    with pytest.raises(InvalidInput, match=r"shared_memory\.max_regions_total"):
        table.register("system", "carol", RegionSpec("c", "/obj", 0, 8))
    table.close()
