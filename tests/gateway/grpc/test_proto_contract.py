"""Our gRPC protos are Triton's wire contract, and their checked-in stubs are current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from hypothesis import given
from hypothesis import strategies as st
from tritonclient.grpc import model_config_pb2 as triton_model_config
from tritonclient.grpc import service_pb2 as triton_service

from gateway.proto import grpc_service_pb2, model_config_pb2
from gateway.proto.pool import POOL

ROOT = Path(__file__).resolve().parents[3]
GENERATOR = ROOT / "scripts" / "generate_grpc_stubs.py"

# Ours and Triton's, file by file.
FILE_PAIRS = [
    pytest.param(grpc_service_pb2, triton_service, id="grpc_service"),
    pytest.param(model_config_pb2, triton_model_config, id="model_config"),
]

Signature = dict[str, tuple[object, ...]]


def file_proto(module: ModuleType) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto a generated module was built from."""
    return descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)


def field_signature(
    message: descriptor_pb2.DescriptorProto, field: descriptor_pb2.FieldDescriptorProto
) -> tuple[object, ...]:
    """What of a field the wire and the generated code depend on."""
    oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
    return (
        field.number,
        descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
        descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
        field.type_name,
        f"oneof {oneof}" if oneof else "no oneof",
        "proto3 optional" if field.proto3_optional else "",
    )


def enum_signature(prefix: str, enum: descriptor_pb2.EnumDescriptorProto) -> Signature:
    """One entry per value of an enum, keyed by the value's full name."""
    name = f"{prefix}.{enum.name}"
    signature: Signature = {f"enum {name}": ()}
    for value in enum.value:
        signature[f"enum value {name}.{value.name}"] = (value.number,)
    return signature


def message_signature(prefix: str, message: descriptor_pb2.DescriptorProto) -> Signature:
    """One entry per message, field and enum value under a message, nested ones included."""
    name = f"{prefix}.{message.name}"
    signature: Signature = {f"message {name}": ("map entry" if message.options.map_entry else "",)}
    for field in message.field:
        signature[f"field {name}.{field.name}"] = field_signature(message, field)
    for enum in message.enum_type:
        signature |= enum_signature(name, enum)
    for nested in message.nested_type:
        signature |= message_signature(name, nested)
    return signature


def types_signature(proto: descriptor_pb2.FileDescriptorProto) -> Signature:
    """Every message, field and enum value a file declares, keyed by full name."""
    signature: Signature = {f"package {proto.package}": ()}
    for enum in proto.enum_type:
        signature |= enum_signature(proto.package, enum)
    for message in proto.message_type:
        signature |= message_signature(proto.package, message)
    return signature


def services_signature(proto: descriptor_pb2.FileDescriptorProto) -> Signature:
    """Every rpc a file declares: request and response types and streaming flags."""
    signature: Signature = {}
    for service in proto.service:
        name = f"{proto.package}.{service.name}"
        signature[f"service {name}"] = ()
        for method in service.method:
            signature[f"rpc {name}.{method.name}"] = (
                method.input_type,
                method.output_type,
                "client streams" if method.client_streaming else "unary request",
                "server streams" if method.server_streaming else "unary response",
            )
    return signature


def differences(ours: Signature, triton: Signature) -> list[str]:
    """Each entry missing from ours, extra in ours, or declared differently."""
    report = [f"missing: {key} {triton[key]}" for key in triton.keys() - ours.keys()]
    report += [f"extra: {key} {ours[key]}" for key in ours.keys() - triton.keys()]
    report += [
        f"differs: {key}: ours {ours[key]}, Triton's {triton[key]}"
        for key in ours.keys() & triton.keys()
        if ours[key] != triton[key]
    ]
    return sorted(report)


def test_checked_in_stubs_are_generated_from_the_protos() -> None:
    pytest.importorskip(
        "grpc_tools", reason="grpcio-tools (a dev dependency) regenerates the stubs to compare"
    )
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("ours", "triton"), FILE_PAIRS)
def test_messages_and_enums_match_triton(ours: ModuleType, triton: ModuleType) -> None:
    theirs = types_signature(file_proto(triton))
    report = differences(types_signature(file_proto(ours)), theirs)
    assert not report, "our proto differs from Triton's:\n" + "\n".join(report)
    assert len(theirs) > 50  # the walk found Triton's messages: not vacuously equal


def test_the_walk_reaches_nested_types_and_map_entries() -> None:
    signature = types_signature(file_proto(triton_model_config))
    spec = "inference.ModelOptimizationPolicy.Cuda.GraphSpec"
    assert signature[f"message {spec}.InputEntry"] == ("map entry",)
    assert signature[f"field {spec}.InputEntry.value"][3] == f".{spec}.Shape"
    assert signature["enum value inference.ModelInstanceGroup.Kind.KIND_MODEL"] == (3,)


def test_service_matches_triton() -> None:
    theirs = services_signature(file_proto(triton_service))
    report = differences(services_signature(file_proto(grpc_service_pb2)), theirs)
    assert not report, "our service differs from Triton's:\n" + "\n".join(report)
    assert theirs["rpc inference.GRPCInferenceService.ModelStreamInfer"][2:] == (
        "client streams",
        "server streams",
    )


def triton_infer_request(raw: list[bytes], fp32: list[float], words: list[bytes]) -> Any:
    """A ModelInferRequest built by tritonclient: typed inputs, raw inputs, parameters.

    A real request carries one form or the other; the wire takes both, which covers more.
    """
    request = triton_service.ModelInferRequest(model_name="digits", model_version="2", id="r-1")
    request.parameters["priority"].uint64_param = 3
    request.parameters["timeout"].int64_param = -1
    request.parameters["binary_data"].bool_param = True
    request.parameters["tag"].string_param = "ünïcode"
    request.parameters["scale"].double_param = 0.5
    typed = request.inputs.add(name="x", datatype="FP32", shape=[1, len(fp32)])
    typed.contents.fp32_contents.extend(fp32)
    typed.parameters["shared_memory_region"].string_param = "none"
    text = request.inputs.add(name="words", datatype="BYTES", shape=[len(words)])
    text.contents.bytes_contents.extend(words)
    for index, chunk in enumerate(raw):
        request.inputs.add(name=f"raw{index}", datatype="UINT8", shape=[len(chunk)])
    request.raw_input_contents.extend(raw)
    request.outputs.add(name="probabilities").parameters["classification"].int64_param = 2
    return request


def assert_round_trip(triton_message: Any, ours_type: type[Any]) -> Any:
    """Triton's bytes parse as ours to equal values and serialise back byte for byte."""
    wire = triton_message.SerializeToString(deterministic=True)
    ours = ours_type.FromString(wire)
    assert ours.SerializeToString(deterministic=True) == wire
    assert type(triton_message).FromString(ours.SerializeToString()) == triton_message
    return ours


@given(
    raw=st.lists(st.binary(max_size=64), max_size=3),
    fp32=st.lists(st.floats(width=32, allow_nan=False), max_size=16),
    words=st.lists(st.binary(max_size=16), max_size=4),
)
def test_infer_request_round_trips_through_tritonclient(
    raw: list[bytes], fp32: list[float], words: list[bytes]
) -> None:
    ours: grpc_service_pb2.ModelInferRequest = assert_round_trip(
        triton_infer_request(raw, fp32, words), grpc_service_pb2.ModelInferRequest
    )
    assert (ours.model_name, ours.model_version, ours.id) == ("digits", "2", "r-1")
    assert ours.parameters["priority"].WhichOneof("parameter_choice") == "uint64_param"
    assert ours.parameters["scale"].double_param == 0.5
    assert ours.parameters["tag"].string_param == "ünïcode"
    assert list(ours.inputs[0].shape) == [1, len(fp32)]
    assert list(ours.inputs[0].contents.fp32_contents) == fp32
    assert list(ours.inputs[1].contents.bytes_contents) == words
    assert list(ours.raw_input_contents) == raw
    assert ours.outputs[0].parameters["classification"].int64_param == 2


def test_stream_response_round_trips_through_tritonclient() -> None:
    response = triton_service.ModelStreamInferResponse(error_message="")
    inner = response.infer_response
    inner.model_name = "digits"
    inner.parameters["triton_final_response"].bool_param = True
    out = inner.outputs.add(name="label", datatype="INT64", shape=[2])
    out.contents.int64_contents.extend([-(2**63), 2**63 - 1])
    inner.raw_output_contents.append(b"\x00\x01")
    ours = assert_round_trip(response, grpc_service_pb2.ModelStreamInferResponse)
    assert list(ours.infer_response.outputs[0].contents.int64_contents) == [-(2**63), 2**63 - 1]


def test_model_config_response_crosses_files_in_our_pool() -> None:
    """grpc_service's ModelConfigResponse holds model_config's ModelConfig, both in POOL."""
    config = model_config_pb2.ModelConfig(
        name="digits",
        platform="onnxruntime_onnx",
        max_batch_size=32,
        input=[model_config_pb2.ModelInput(name="x", data_type=model_config_pb2.TYPE_FP32)],
        dynamic_batching=model_config_pb2.ModelDynamicBatching(max_queue_delay_microseconds=500),
    )
    config.input[0].dims.extend([-1, 64])
    config.parameters["intra_op_threads"].string_value = "1"
    response = grpc_service_pb2.ModelConfigResponse(config=config)
    parsed = grpc_service_pb2.ModelConfigResponse.FromString(response.SerializeToString())
    assert parsed == response
    assert parsed.config.WhichOneof("scheduling_choice") == "dynamic_batching"
    field = grpc_service_pb2.ModelConfigResponse.DESCRIPTOR.fields_by_name["config"]
    assert field.message_type is model_config_pb2.ModelConfig.DESCRIPTOR
    assert_round_trip(
        triton_service.ModelConfigResponse.FromString(response.SerializeToString()),
        grpc_service_pb2.ModelConfigResponse,
    )


def find_message(pool: Any, name: str) -> Any:
    """The descriptor of message `name` in `pool` (descriptor_pool's stubs are untyped)."""
    return pool.FindMessageTypeByName(name)


def test_our_stubs_and_tritonclients_live_in_separate_pools() -> None:
    """Both sets of stubs are imported in this process; each pool holds its own."""
    name = "inference.ModelInferRequest"
    default: Any = descriptor_pool.Default()  # type: ignore[no-untyped-call]
    assert find_message(default, name).file.name == "grpc_service.proto"
    assert find_message(POOL, name).file.name == "gateway/proto/grpc_service.proto"
    assert find_message(POOL, name) is grpc_service_pb2.ModelInferRequest.DESCRIPTOR
    assert find_message(POOL, "inference.ModelConfig") is model_config_pb2.ModelConfig.DESCRIPTOR
    with pytest.raises(KeyError):
        default.FindFileByName("gateway/proto/grpc_service.proto")
