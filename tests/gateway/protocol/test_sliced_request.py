"""Large JSON requests decoded in slices: the exact codec's arrays and errors, loop turns."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends.base import ModelSignature, TensorSpec
from backends.datatypes import to_numpy
from gateway.errors import GatewayError
from gateway.protocol.json_spans import cut_arrays, find_data_arrays
from gateway.protocol.request_codec import ProtocolRequest, decode_protocol_request
from gateway.protocol.sliced_request import decode_large_request
from gateway.protocol.sliced_tensor import Abandoned, decode_sliced, skeleton

NUMERIC = (
    *("FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"),
    *("UINT8", "UINT16", "UINT32", "UINT64"),
)
WIDTHS: dict[int, Literal[16, 32, 64]] = {2: 16, 4: 32, 8: 64}


def signature(datatype: str = "FP32", shape: tuple[int | None, ...] = (None, 3)) -> ModelSignature:
    spec = TensorSpec("x", to_numpy(datatype), shape, ("batch",) + (None,) * (len(shape) - 1))
    return ModelSignature((spec,), (TensorSpec("y", np.dtype(np.float32), (None,)),))


def body_of(data: bytes, shape: str = "[2,3]", datatype: str = "FP32", extra: bytes = b"") -> bytes:
    return (
        b'{"id":"r1","inputs":[{"name":"x","shape":'
        + shape.encode()
        + b',"datatype":"'
        + datatype.encode()
        + b'","data":'
        + data
        + b"}]"
        + extra
        + b"}"
    )


def never() -> bool:
    return False


async def sliced(
    body: bytes,
    sig: ModelSignature,
    *,
    allow: bool = False,
    slice_bytes: int = 4,
    headers: dict[str, str] | None = None,
) -> ProtocolRequest:
    return await decode_large_request(
        body,
        headers or {},
        sig,
        allow_non_finite=allow,
        max_rows=None,
        slice_bytes=slice_bytes,
        abandoned=never,
    )


def exact(body: bytes, sig: ModelSignature, *, allow: bool = False) -> ProtocolRequest:
    return decode_protocol_request(body, {}, sig, allow_non_finite=allow, max_rows=None)


def assert_same_request(got: ProtocolRequest, want: ProtocolRequest) -> None:
    assert got.inputs.keys() == want.inputs.keys()
    for name, array in want.inputs.items():
        assert got.inputs[name].dtype == array.dtype
        np.testing.assert_array_equal(got.inputs[name], array, strict=True)
    assert (got.outputs, got.parameters, got.id) == (want.outputs, want.parameters, want.id)
    assert (got.binary_outputs, got.classifications) == (want.binary_outputs, want.classifications)


async def assert_same_outcome(
    body: bytes, sig: ModelSignature, *, allow: bool = False, slice_bytes: int = 4
) -> None:
    """The sliced decode answers ``body`` exactly as the exact codec does."""
    want: ProtocolRequest | GatewayError
    got: ProtocolRequest | GatewayError
    try:
        want = exact(body, sig, allow=allow)
    except GatewayError as exc:
        want = exc
    try:
        got = await sliced(body, sig, allow=allow, slice_bytes=slice_bytes)
    except GatewayError as exc:
        got = exc
    if isinstance(want, GatewayError) or isinstance(got, GatewayError):
        assert type(got) is type(want)
        assert str(got) == str(want)
    else:
        assert_same_request(got, want)


def layouts(array: np.ndarray) -> list[bytes]:
    """``array`` as JSON data: nested, flat, and nested with whitespace everywhere."""
    values = array.astype(np.float64 if array.dtype.kind == "f" else object)
    nested = values.tolist()
    return [
        orjson.dumps(nested),
        orjson.dumps(values.ravel().tolist()),
        orjson.dumps(nested, option=orjson.OPT_INDENT_2).replace(b",", b" ,\t"),
    ]


@st.composite
def tensors(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    datatype = draw(st.sampled_from(NUMERIC))
    dtype = to_numpy(datatype)
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6))
    if dtype.kind == "f":
        elements = st.floats(
            allow_nan=False,
            allow_infinity=False,
            width=WIDTHS[dtype.itemsize],
            allow_subnormal=True,
        )
    else:
        elements = st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    return datatype, draw(hnp.arrays(dtype, shape, elements=elements))


@settings(max_examples=150, deadline=None)
@given(tensors(), st.integers(1, 64), st.integers(0, 2))
async def test_sliced_arrays_equal_the_exact_ones(
    tensor: tuple[str, np.ndarray], slice_bytes: int, layout: int
) -> None:
    datatype, array = tensor
    body = body_of(layouts(array)[layout], str(list(array.shape)), datatype)
    sig = signature(datatype, (None, array.shape[1]))
    got = await sliced(body, sig, slice_bytes=slice_bytes)
    assert_same_request(got, exact(body, sig))
    np.testing.assert_array_equal(got.inputs["x"], array, strict=True)
    # ...and the slices gave it, not the exact codec after an irregularity (integers of
    # 19 digits or more are left to it).
    if array.dtype.kind in "iu" and np.abs(array.astype(object)).max() >= 10**18:
        return
    (span,) = find_data_arrays(body, 1, 4) or []
    direct = await decode_sliced(body, span, array.shape, array.dtype, slice_bytes=slice_bytes)
    assert direct is not None
    np.testing.assert_array_equal(direct, array, strict=True)


BAD_DATA = [
    b"[[1,2,3],[4,5]]",
    b"[[1,2,3],[4,5,6,7]]",
    b"[[1,2,3,4],[5,6]]",
    b"[[1,2],[3,4],[5,6]]",
    b"[[1,2,3,4,5,6]]",
    b"[[[1,2,3],[4,5,6]]]",
    b"[1,2,3,4,5]",
    b"[1,2,3,4,5,6,7]",
    b'[[1,2,3],[4,"5",6]]',
    b"[[1,2,3],[4,true,6]]",
    b"[[1,2,3],[4,null,6]]",
    b"[[1,2,3],[4,{},6]]",
    b"[[1,2,3],[4,[],6]]",
    b"[[1,2,3],[[4],5,6]]",
    b"[[1,2,3],[4,5,[6]]]",
    b"[[1,2,3],[4,,6]]",
    b"[[1,2,3][4,5,6]]",
    b"[[1,2,3],[4,5,6]]]",
    b"[[1,2,3],[4,5,6]",
    b"[[1,2,3],[4,5 6]]",
    b"[[1,2,3],[4,5,6] 7]",
    b"[[1,2,3],7 [4,5,6]]",
    b"[[1,2,3],[4,05,6]]",
    b"[[1,2,3],[4,+5,6]]",
    b"[[1,2,3],[4,-,6]]",
    b"[[1,2,3],[4,.5,6]]",
    b"[[1,2,3],[4,5.,6]]",
    b"[[1,2,3],[4,5e,6]]",
    b"[[1,2,3],[4,5,6\x0b]]",
    b'[[1,2,3],[4,5,6]],"data":[1,2,3,4,5,6]',
    b"[[1,2,3],[4,NaN,6]]",
    b"[[1,2,3],[4,Infinity,6]]",
    b"[[1,2,3],[4,-Infinity,6]]",
    b"[[1,2,3],[4,1e400,6]]",
    b"[[1,2,3],[4,-1e400,6]]",
    b"[[1,2,3],[4,1e39,6]]",
    b"[[1,2,3],[4,70000,6]]",
    b"[[1,2,3],[4,300,6]]",
    b"[[1,2,3],[4,-129,6]]",
    b"[[1,2,3],[4,-1,6]]",
    b"[[1,2,3],[4,2.5,6]]",
    b"[[1,2,3],[4,1e2,6]]",
    b"[[1,2,3],[4,5.0,6]]",
    b"[[1,2,3],[4,9223372036854775808,6]]",
    b"[[1,2,3],[4,-9223372036854775809,6]]",
    b"[[1,2,3],[4,18446744073709551616,6]]",
    b"[[1,2,3],[4,123456789012345678901234567890,6]]",
    b"[[1,2,3],[4,1" + b"0" * 400 + b",6]]",
    b"[ [1, 2,3] ,\n[4,\t5,6 ] ]",
    b"[[1,2,3],[4,5,6]] ",
    b"[[1.5e3,-0.0,3E-2],[4,5,-6]]",
]


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64", "INT8", "UINT8", "INT64", "UINT64"])
@pytest.mark.parametrize("data", BAD_DATA)
@pytest.mark.parametrize("allow", [False, True])
async def test_irregular_data_gets_the_exact_answer(
    datatype: str, data: bytes, allow: bool
) -> None:
    sig = signature(datatype)
    for slice_bytes in (1, 5):
        await assert_same_outcome(
            body_of(data, datatype=datatype), sig, allow=allow, slice_bytes=slice_bytes
        )


ENVELOPES = [
    body_of(b"[[1,2,3],[4,5,6]]", shape="[2,3,1]"),
    body_of(b"[[1,2,3],[4,5,6]]", shape="[3,2]"),
    body_of(b"[[1,2,3],[4,5,6]]", shape="[2,-3]"),
    body_of(b"[[1,2,3],[4,5,6]]", datatype="INT32"),
    body_of(b"[[1,2,3],[4,5,6]]", datatype="FLOAT"),
    body_of(b"[[1,2,3],[4,5]]", extra=b',"unknown":1'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"outputs":[{"name":"z"}]'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"outputs":[{"name":"y"}],"parameters":{"a":1}'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"parameters":{"binary_data_output":true}'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"parameters":{"binary_data_output":1}'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"parameters":{"data":[1,2,3,4,5,6,7,8]}'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"id":"\\ud800"'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"id":"\\"data\\": [1,2,3,4,5,6]"'),
    body_of(b"[[1,2,3],[4,5,6]]", extra=b',"inputs":[]'),
    body_of(b"[[1,2,3],[4,5,6]]").replace(b'"id":"r1"', b'"id":"r1","x":[1,2,3,4,5,6,7]'),
    body_of(b'["\\u0000tensorgate-slice-0123456789abcdef",0]'),
    b'{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},'
    b'{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}',
    b'{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6],'
    b'"parameters":{"data":[1,2,3]}}]}',
    b'{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]} [1]',
    b'{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]',
    b'{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data": [1,2,3,4,5,6]  }]}',
]


@pytest.mark.parametrize("body", ENVELOPES)
async def test_envelopes_get_the_exact_answer(body: bytes) -> None:
    for slice_bytes in (1, 5):
        await assert_same_outcome(body, signature(), slice_bytes=slice_bytes)


async def test_rank_zero_and_three_and_two_inputs() -> None:
    scalar = ModelSignature((TensorSpec("x", np.dtype(np.int32), ()),), ())
    await assert_same_outcome(body_of(b"[7]", shape="[]", datatype="INT32"), scalar)
    cube = signature("FP64", (None, 2, 2))
    data = b"[[[1,2],[3,4]],[[5,6],[7,8]]]"
    await assert_same_outcome(body_of(data, shape="[2,2,2]", datatype="FP64"), cube)
    await assert_same_outcome(body_of(data[1:-1], shape="[2,2,2]", datatype="FP64"), cube)
    pair = ModelSignature(
        (
            TensorSpec("a", np.dtype(np.float32), (None, 2), ("batch", None)),
            TensorSpec("b", np.dtype(np.int64), (None,), ("batch",)),
        ),
        (),
    )
    body = (
        b'{"inputs":[{"name":"b","shape":[3],"datatype":"INT64","data":[1,2,3]},'
        b'{"name":"a","shape":[3,2],"datatype":"FP32","data":[[1,2],[3,4],[5,6]]}]}'
    )
    await assert_same_outcome(body, pair)
    await assert_same_outcome(body.replace(b"[3],", b"[2],").replace(b"[1,2,3]", b"[1,2]"), pair)


async def test_binary_bodies_take_the_exact_path() -> None:
    header = body_of(b"[[1,2,3],[4,5,6]]")
    headers = {"inference-header-content-length": str(len(header))}
    want = decode_protocol_request(
        header, headers, signature(), allow_non_finite=False, max_rows=None
    )
    assert_same_request(await sliced(header, signature(), headers=headers), want)


def test_arrays_are_found_by_byte_search_and_replaced_by_markers() -> None:
    body = body_of(b"[[1,2,3],[4,5,6]]", extra=b',"parameters":{"data":[1]}')
    spans = find_data_arrays(body, 4, 8)
    assert spans is not None
    assert [body[start:end] for start, end in spans] == [b"[[1,2,3],[4,5,6]]"]
    cut = cut_arrays(body, spans)
    raw: Any = orjson.loads(cut.envelope)
    assert cut.span_of(raw["inputs"][0]["data"]) == 0
    assert cut.span_of(raw["parameters"]["data"]) is None
    assert find_data_arrays(b'{"data":1,"data":2,"data":3}', 1, 2) is None


def test_skeleton_of_a_shape() -> None:
    assert skeleton((2, 3)) == b"[[,,],[,,]]"
    assert skeleton((4,)) == b"[,,,]"
    assert skeleton((1, 1)) == b"[[]]"


async def test_the_loop_runs_other_tasks_between_slices() -> None:
    """Another task gets a turn between slices: as many turns as there are slices, about."""
    array = np.arange(3000, dtype=np.float32).reshape(1000, 3)
    body = body_of(orjson.dumps(array.tolist()), "[1000,3]")
    turns = 0
    decoding = True

    async def other() -> None:
        nonlocal turns
        while decoding:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)  # the other task starts
    started = turns
    got = await sliced(body, signature(), slice_bytes=1024)
    decoding = False
    await asyncio.wait_for(task, 5)
    np.testing.assert_array_equal(got.inputs["x"], array)
    slices = len(body) // 1024
    assert turns - started >= slices - 1


async def test_an_abandoned_decode_stops() -> None:
    array = np.arange(3000, dtype=np.float32)
    body = body_of(orjson.dumps(array.tolist()), "[1000,3]")
    asked = 0

    def abandoned() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    with pytest.raises(Abandoned):
        await decode_sliced(
            body,
            (body.index(b"[0.0"), len(body) - 3),
            (1000, 3),
            np.dtype(np.float32),
            slice_bytes=256,
            abandoned=abandoned,
        )
    assert asked == 4
