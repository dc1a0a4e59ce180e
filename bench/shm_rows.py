"""The shared-memory rows of ``make bench`` (issue 22): the ``image`` model's input left in
a POSIX shared-memory object that the benchmark registers with the server as a region
(Triton's system shared-memory extension, docs/protocol.md "Shared memory"), each
request a small JSON body naming the region, taking turns with the JSON, binary and gRPC
rows in the same rounds (bench/binary_rows.py).

What the row sends is what ``tritonclient.http`` sends for an input set with
``InferInput.set_shared_memory`` and no output named: the region and the byte size in the
input's parameters, and ``binary_data_output: true``, so that the output comes back as
the binary row's does (40 bytes of binary data after the JSON header, in the answer's
body, not through a region): only the way the input travels differs between the two
rows. The object holds the binary body's tensor bytes, the same float32 numbers.

A region belongs to the token subject that registered it, so it is registered with the
token wrk sends (``BENCH_BEARER_TOKEN``, as bench/run.py mints it); a request of any
other subject naming it is refused. Before the rows are measured one request checks
that the answer is the binary row's. When the rows are done, also when something
fails, the region is unregistered, then the object closed and unlinked.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from servers import Server

SHM_HEADERS = {"Content-Type": "application/json"}
"""The headers of the row's body (wrk adds the token)."""
BINARY_HEADER = "Inference-Header-Content-Length"
_NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


@dataclass(frozen=True)
class Tensor:
    """One input of a request: its name, shape and datatype, and its bytes."""

    name: str
    shape: list[int]
    datatype: str
    data: bytes


def region_name(model: str) -> str:
    """The region's name on the server (one region per model measured)."""
    return f"bench_{model}"


def object_name(model: str) -> str:
    """A fresh name for the shared-memory object (a file of /dev/shm): a random part, so
    that an object left by a killed run or a run beside this one never collides."""
    return f"tensorgate-bench-{model}-{secrets.token_hex(4)}"


def binary_tensor(body: bytes, header_length: int) -> Tensor:
    """The one input of a binary request body (a JSON header of ``header_length`` bytes,
    then the input's ``binary_data_size`` bytes)."""
    header = json.loads(body[:header_length])
    [spec] = header["inputs"]
    size = int(spec["parameters"]["binary_data_size"])
    data = body[header_length : header_length + size]
    if len(data) != size:
        raise ValueError(f"the binary body holds {len(data)} bytes of input, not {size}")
    return Tensor(spec["name"], list(spec["shape"]), spec["datatype"], data)


def shm_document(tensor: Tensor, region: str) -> dict[str, Any]:
    """The request naming ``region`` for ``tensor`` (its bytes at offset 0), its outputs
    asked as binary data, as the binary row's request asks them."""
    return {
        "inputs": [
            {
                "name": tensor.name,
                "shape": tensor.shape,
                "datatype": tensor.datatype,
                "parameters": {
                    "shared_memory_region": region,
                    "shared_memory_byte_size": len(tensor.data),
                },
            }
        ],
        "parameters": {"binary_data_output": True},
    }


def register_document(key: str, byte_size: int) -> dict[str, Any]:
    """The body of ``POST /v2/systemsharedmemory/region/{name}/register`` for the whole
    object ``key`` (``/`` and its name in /dev/shm, as ``shm_open`` takes it)."""
    return {"key": key, "offset": 0, "byte_size": byte_size}


def decode_answer(body: bytes, header_length: int | None) -> dict[str, np.ndarray]:
    """The outputs of an inference answer by name: a JSON answer (``header_length``
    None), or a binary one whose outputs with ``binary_data_size`` follow its JSON header
    in order."""
    header = json.loads(body if header_length is None else body[:header_length])
    offset = header_length or 0
    outputs: dict[str, np.ndarray] = {}
    for out in header["outputs"]:
        dtype = _NUMPY[out["datatype"]]
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is None:
            values = np.asarray(out["data"], dtype)
        else:
            values = np.frombuffer(body[offset : offset + int(size)], dtype)
            offset += int(size)
        outputs[out["name"]] = values.reshape(out["shape"])
    return outputs


def same_answer(ours: Mapping[str, np.ndarray], theirs: Mapping[str, np.ndarray]) -> bool:
    """The same outputs, of the same shapes, with the same numbers (to float32 rounding:
    the two requests may run in batches of different sizes)."""
    return set(ours) == set(theirs) and all(
        ours[name].shape == theirs[name].shape
        and np.allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6)
        for name in ours
    )


def _token_headers() -> dict[str, str]:
    """The token wrk sends (bench/wrk.py reads the same variable): the same subject."""
    token = os.environ.get("BENCH_BEARER_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[bytes, int | None]:
    """POST ``body``; the answer's body and its binary header length (None: JSON). An
    answer that is not 200 raises, with what the server said."""
    request = urllib.request.Request(url, data=body, headers={**headers, **_token_headers()})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            length = answer.headers.get(BINARY_HEADER)
            return answer.read(), None if length is None else int(length)
    except urllib.error.HTTPError as error:
        said = error.read().decode(errors="replace")[:500]
        raise RuntimeError(f"POST {url} answered {error.code}: {said}") from error


def _region_url(server: Server, region: str, action: str) -> str:
    return f"{server.base}/v2/systemsharedmemory/region/{region}/{action}"


def register(server: Server, region: str, key: str, byte_size: int) -> None:
    """Register the object ``key`` as ``region`` for the bench token's subject."""
    document = register_document(key, byte_size)
    _post(_region_url(server, region, "register"), json.dumps(document).encode(), SHM_HEADERS)


def unregister(server: Server, region: str) -> None:
    """Unregister ``region`` (200 also when the subject does not hold it)."""
    _post(_region_url(server, region, "unregister"), b"", SHM_HEADERS)


def check_answer(
    server: Server, model: str, shm_body: Path, binary_body: Path, binary_headers: Mapping[str, str]
) -> None:
    """Send the shared-memory request and the binary one once each; raise unless both
    are answered 200 with the same outputs."""
    url = f"{server.base}/v2/models/{model}/infer"
    ours = decode_answer(*_post(url, shm_body.read_bytes(), SHM_HEADERS))
    theirs = decode_answer(*_post(url, binary_body.read_bytes(), binary_headers))
    if not same_answer(ours, theirs):
        raise RuntimeError(f"the shared-memory and binary requests answer {model} differently")


def _write(memory: SharedMemory, data: bytes) -> None:
    view = memory.buf
    if view is None:  # only once closed
        raise RuntimeError(f"shared-memory object {memory.name} is closed")
    view[: len(data)] = data


@contextlib.contextmanager
def shared_input(
    server: Server,
    model: str,
    binary_body: Path,
    binary_headers: Mapping[str, str],
    work: Path,
) -> Iterator[Path]:
    """The input of the binary body ``binary_body`` in a fresh shared-memory object
    registered on ``server``; yields the path of the JSON body naming its region, once one
    request has checked its answer. Unregisters and unlinks on the way out."""
    tensor = binary_tensor(binary_body.read_bytes(), int(binary_headers[BINARY_HEADER]))
    region = region_name(model)
    memory = SharedMemory(object_name(model), create=True, size=len(tensor.data))
    try:
        _write(memory, tensor.data)
        path = work / f"{model}-oip-shm.json"
        path.write_text(json.dumps(shm_document(tensor, region)))
        register(server, region, f"/{memory.name}", len(tensor.data))
        try:
            check_answer(server, model, path, binary_body, binary_headers)
            yield path
        except BaseException:
            with contextlib.suppress(OSError, RuntimeError):  # say what failed first
                unregister(server, region)
            raise
        unregister(server, region)
    finally:
        memory.close()
        memory.unlink()
