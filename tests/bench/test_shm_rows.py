"""The shared-memory rows of make bench (issue 22): the rounds they join, the body wrk
sends, the object that holds the input, and the check of the answer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

import binary_rows
import shm_rows
from binary_rows import (
    BINARY_CONNECTIONS,
    IMAGE_CONNECTIONS,
    binary_matrix,
    connections_of,
    make_bodies,
    rows_of,
    run_count,
)
from progress import Progress
from results import BINARY, BINARY_JSON, GRPC, GRPC_FLOOR, SHM
from servers import Server
from shm_rows import (
    BINARY_HEADER,
    Tensor,
    binary_tensor,
    decode_answer,
    object_name,
    region_name,
    register_document,
    same_answer,
    shared_input,
    shm_document,
)
from wrk import WrkResult

IMAGE_BYTES = 3 * 224 * 224 * 4


def test_shared_memory_takes_turns_in_images_rounds_only() -> None:
    assert rows_of("image") == (BINARY_JSON, BINARY, GRPC, SHM)
    assert SHM not in rows_of("mlp")
    assert GRPC_FLOOR not in rows_of("image")


def test_image_runs_at_the_issues_1_and_16_connections_and_at_64() -> None:
    assert connections_of("image") == IMAGE_CONNECTIONS == (1, 16, 64)
    assert connections_of("mlp") == BINARY_CONNECTIONS == (1, 64)


def test_the_names() -> None:
    assert region_name("image") == "bench_image"
    first, second = object_name("image"), object_name("image")
    assert first.startswith("tensorgate-bench-image-")
    assert first != second
    assert "/" not in first


def test_the_shared_memory_body_names_the_region_and_asks_binary_outputs() -> None:
    tensor = Tensor("image", [1, 3, 224, 224], "FP32", bytes(IMAGE_BYTES))
    assert shm_document(tensor, "bench_image") == {
        "inputs": [
            {
                "name": "image",
                "shape": [1, 3, 224, 224],
                "datatype": "FP32",
                "parameters": {
                    "shared_memory_region": "bench_image",
                    "shared_memory_byte_size": 602112,
                },
            }
        ],
        "parameters": {"binary_data_output": True},
    }


def test_the_registration_covers_the_whole_object() -> None:
    assert register_document("/tensorgate-bench-image-0a1b", 602112) == {
        "key": "/tensorgate-bench-image-0a1b",
        "offset": 0,
        "byte_size": 602112,
    }


def _image_binary(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    body = make_bodies(tmp_path)[("image", BINARY)]
    return body.path, body.headers


def test_the_tensor_is_the_binary_bodys(tmp_path: Path) -> None:
    path, headers = _image_binary(tmp_path)
    raw = path.read_bytes()
    tensor = binary_tensor(raw, int(headers[BINARY_HEADER]))
    assert (tensor.name, tensor.shape, tensor.datatype) == ("image", [1, 3, 224, 224], "FP32")
    assert len(tensor.data) == IMAGE_BYTES
    assert raw.endswith(tensor.data)
    numbers = np.frombuffer(tensor.data, np.float32)
    assert 0 <= numbers.min() < numbers.max() <= 1


def test_a_short_binary_body_is_refused() -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    ).encode()
    with pytest.raises(ValueError, match="4 bytes of input, not 8"):
        binary_tensor(header + bytes(4), len(header))


LOGITS = np.arange(10, dtype=np.float32).reshape(1, 10) / 7


def _binary_answer(logits: np.ndarray) -> tuple[bytes, int]:
    header = json.dumps(
        {
            "model_name": "image",
            "outputs": [
                {
                    "name": "logits",
                    "datatype": "FP32",
                    "shape": list(logits.shape),
                    "parameters": {"binary_data_size": logits.nbytes},
                }
            ],
        }
    ).encode()
    return header + logits.tobytes(), len(header)


def test_binary_and_json_answers_decode_alike() -> None:
    binary = decode_answer(*_binary_answer(LOGITS))
    as_json = json.dumps(
        {
            "outputs": [
                {
                    "name": "logits",
                    "datatype": "FP32",
                    "shape": [1, 10],
                    "data": LOGITS.ravel().tolist(),
                }
            ]
        }
    ).encode()
    plain = decode_answer(as_json, None)
    assert binary["logits"].shape == plain["logits"].shape == (1, 10)
    assert same_answer(binary, plain)


def test_answers_differing_in_numbers_outputs_or_shapes_are_not_the_same() -> None:
    ours = decode_answer(*_binary_answer(LOGITS))
    assert not same_answer(ours, decode_answer(*_binary_answer(LOGITS + 0.01)))
    assert not same_answer(ours, decode_answer(*_binary_answer(LOGITS.reshape(2, 5))))
    assert not same_answer(ours, {**ours, "extra": LOGITS})


class Calls:
    """What ``shared_input`` asked of the server, the server replaced by fakes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, answer_differs: bool = False) -> None:
        self.log: list[tuple[str, Any]] = []
        self.contents = b""
        self.body: dict[str, Any] = {}
        self.answer_differs = answer_differs
        monkeypatch.setattr(shm_rows, "register", self.register)
        monkeypatch.setattr(shm_rows, "unregister", self.unregister)
        monkeypatch.setattr(shm_rows, "check_answer", self.check_answer)

    def register(self, server: Server, region: str, key: str, byte_size: int) -> None:
        self.log.append(("register", (region, key, byte_size)))
        self.contents = _object(key).read_bytes()  # what the server maps

    def unregister(self, server: Server, region: str) -> None:
        self.log.append(("unregister", region))

    def check_answer(self, server: Server, model: str, shm_body: Path, *_: object) -> None:
        self.log.append(("check", model))
        self.body = json.loads(shm_body.read_text())
        if self.answer_differs:
            raise RuntimeError("the shared-memory and binary requests answer image differently")

    @property
    def key(self) -> str:
        [(_, (_, key, _))] = [entry for entry in self.log if entry[0] == "register"]
        return str(key)


SERVER = cast("Server", SimpleNamespace(base="http://127.0.0.1:9"))
"""Never reached: the calls that would reach it are the fakes'."""


def _object(key: str) -> Path:
    """The file of /dev/shm that ``shm_open(key)`` opens."""
    return Path("/dev/shm", key.removeprefix("/"))


def test_the_object_holds_the_binary_bodys_numbers_and_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    path, headers = _image_binary(tmp_path)
    with shared_input(SERVER, "image", path, headers, tmp_path) as body:
        assert json.loads(body.read_text()) == calls.body
        assert calls.log == [
            ("register", ("bench_image", calls.key, IMAGE_BYTES)),
            ("check", "image"),
        ]
        assert _object(calls.key).exists()
    assert calls.contents == binary_tensor(path.read_bytes(), int(headers[BINARY_HEADER])).data
    assert calls.body["inputs"][0]["parameters"]["shared_memory_region"] == "bench_image"
    assert calls.log[-1] == ("unregister", "bench_image")
    assert not _object(calls.key).exists()


def test_a_wrong_answer_still_unregisters_and_removes_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch, answer_differs=True)
    path, headers = _image_binary(tmp_path)
    with (
        pytest.raises(RuntimeError, match="answer image differently"),
        shared_input(SERVER, "image", path, headers, tmp_path),
    ):
        pytest.fail("the rows ran with a wrong answer")
    assert calls.log[-1] == ("unregister", "bench_image")
    assert not _object(calls.key).exists()


def test_a_failure_during_the_rows_still_unregisters_and_removes_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    path, headers = _image_binary(tmp_path)
    with pytest.raises(KeyboardInterrupt), shared_input(SERVER, "image", path, headers, tmp_path):
        raise KeyboardInterrupt
    assert calls.log[-1] == ("unregister", "bench_image")
    assert not _object(calls.key).exists()


def test_the_matrix_makes_run_count_runs_with_the_region_held_for_images_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(monkeypatch)
    sent: list[tuple[str, int, bool]] = []

    def fake_wrk(url: str, body: Path, conns: int, *_: object, **__: object) -> WrkResult:
        held = bool(calls.log) and calls.log[-1][0] == "check"  # registered, checked
        sent.append((body.name, conns, held))
        return WrkResult(100.0, 1.0, 2.0, 0, 200)

    def fake_h2load(*_: object) -> Callable[[], WrkResult]:
        return lambda: WrkResult(100.0, 1.0, 2.0, 0, 200)

    for name in ("check_answer", "check_floor"):
        monkeypatch.setattr(binary_rows, name, lambda *_: None)
    monkeypatch.setattr(binary_rows, "run_wrk", fake_wrk)
    monkeypatch.setattr(binary_rows, "grpc_run", fake_h2load)
    monkeypatch.setattr(binary_rows, "floor_run", fake_h2load)
    progress = Progress(run_count(2))
    rows = binary_matrix(SERVER, SERVER, make_bodies(tmp_path), tmp_path, 1, 2, progress, Counter())
    assert progress.done == progress.total == run_count(2)
    shm = sorted(m.connections for m in rows if m.server == SHM)
    assert shm == [1, 16, 64]
    assert {m.model for m in rows if m.server == SHM} == {"image"}
    assert {(name, held) for name, _, held in sent if "shm" in name} == {
        ("image-oip-shm.json", True)
    }
    assert calls.log[-1] == ("unregister", "bench_image")
    assert not _object(calls.key).exists()
