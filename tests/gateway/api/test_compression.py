"""Compressed bodies (issue 11, item 2): gzip and deflate requests decompressed under the
body cap (a bomb is a 413), and answers compressed when ``Accept-Encoding`` asks."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.api.compression import chosen_coding, compress, decompress
from gateway.errors import InvalidInput, PayloadTooLarge
from support.app import make_settings, open_client

CAP = 1024 * 1024
ZERO = [0.0] * 64
BODIES: dict[str, Any] = {
    "/v2/models/digits/infer": {
        "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ZERO}]
    },
    "/models/digits/predict": {"inputs": {"pixels": [ZERO]}},
}
ROUTES = pytest.mark.parametrize("path", list(BODIES))
CODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.compress, "deflate": zlib.compress}
CODINGS = pytest.mark.parametrize("coding", list(CODERS))
PLAIN = {"accept-encoding": "identity"}


@pytest.fixture
async def http(repository: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(make_settings(repository, max_request_body_bytes=CAP)) as client:
        yield client


@ROUTES
@CODINGS
async def test_a_compressed_request_is_answered_as_the_plain_one(
    http: httpx.AsyncClient, path: str, coding: str
) -> None:
    body = orjson.dumps(BODIES[path])
    plain = await http.post(path, content=body, headers=PLAIN)
    packed = await http.post(
        path, content=CODERS[coding](body), headers={**PLAIN, "content-encoding": coding}
    )
    assert plain.status_code == 200, plain.text
    assert packed.status_code == 200, packed.text
    assert packed.json() == plain.json()


@ROUTES
async def test_a_decompression_bomb_is_413_without_growing_memory(
    http: httpx.AsyncClient, path: str
) -> None:
    bomb = gzip.compress(b"0" * (20 * 1024 * 1024))  # 20 MB out of ~20 KB
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    try:
        response = await http.post(path, content=bomb, headers={"content-encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert f"exceeds the limit of {CAP} bytes" in response.json()["error"]
    assert response.headers["connection"] == "close"
    # Decompression stops at the cap: far from the 20 MB the bomb would grow to.
    assert peak < 4 * CAP


@ROUTES
@CODINGS
async def test_a_corrupt_or_truncated_stream_is_400(
    http: httpx.AsyncClient, path: str, coding: str
) -> None:
    packed = CODERS[coding](orjson.dumps(BODIES[path]))
    for broken in (b"not compressed at all", packed[: len(packed) // 2]):
        response = await http.post(path, content=broken, headers={"content-encoding": coding})
        assert response.status_code == 400
        assert f"request body is not valid {coding}" in response.json()["error"]


@ROUTES
async def test_an_unknown_encoding_is_400_naming_those_accepted(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.post(path, content=b"{}", headers={"content-encoding": "br"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "unsupported Content-Encoding 'br': accepted are gzip, deflate and identity"
    }


@ROUTES
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip;q=0, deflate", "deflate"),
        ("gzip;q=0", None),
        ("identity", None),
    ],
)
async def test_answers_are_compressed_when_the_client_asks(
    http: httpx.AsyncClient, path: str, accept: str, expected: str | None
) -> None:
    plain = await http.post(path, json=BODIES[path], headers=PLAIN)
    async with http.stream(
        "POST", path, json=BODIES[path], headers={"accept-encoding": accept}
    ) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == expected
    assert int(response.headers["content-length"]) == len(raw)
    decoded = raw if expected is None else decompress(raw, expected, CAP)
    assert orjson.loads(decoded) == plain.json()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("gzip, deflate", "gzip"),
        ("deflate;q=1, gzip;q=0.5", "deflate"),
        ("*", "gzip"),
        ("*, gzip;q=0", "deflate"),
        ("br", None),
        ("GZIP;Q=0.1", "gzip"),
        ("gzip;q=oops", None),
    ],
)
def test_the_coding_chosen_for_accept_encoding(header: str | None, expected: str | None) -> None:
    assert chosen_coding(header) == expected


@CODINGS
def test_round_trip_and_several_gzip_members(coding: str) -> None:
    assert decompress(compress(b"tensor" * 100, coding), coding, CAP) == b"tensor" * 100
    two = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert decompress(two, "gzip", CAP) == b"abcd"


def test_the_cap_is_on_the_decompressed_size_whatever_the_members() -> None:
    assert decompress(gzip.compress(b"x" * 10), "gzip", 10) == b"x" * 10
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(b"x" * 6) * 2, "gzip", 10)
    with pytest.raises(InvalidInput, match="data after the stream"):
        decompress(zlib.compress(b"x") + b"junk", "deflate", 10)


async def test_a_compressed_body_on_another_route_is_400_saying_where_it_is_accepted(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/v2/repository/models/digits/load",
        content=gzip.compress(b"{}"),
        headers={"content-encoding": "gzip"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "Content-Encoding 'gzip' is accepted on the inference routes only (infer, predict)"
    }
    assert (
        await http.get("/v2/models/digits", headers={"content-encoding": "identity"})
    ).is_success
    # No body, nothing encoded: the header of a client reusing its headers is ignored.
    assert (await http.get("/v2/models/digits", headers={"content-encoding": "gzip"})).is_success
    assert (await http.get("/v2/health/ready", headers={"content-encoding": "gzip"})).is_success
