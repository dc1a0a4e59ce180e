"""make soak's parts: the fault plan, the repository changes, the log watch, reading an
answer, which client connections a process holds, and the request kinds."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest
import yaml

from soak.calls import LogWatch
from soak.clients import read_answer
from soak.faults import Plan, client_ports, plan
from soak.kinds import REMOTE_MODEL, kinds
from soak.repository import Changes


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        # Ten minutes: the outage halfway between the kills at 165 and 285 s.
        (600, Plan([30.0 * n for n in range(1, 20)], [45.0, 165.0, 285.0, 405.0, 525.0], 225.0)),
        # A short run: no kill-free gap fits, a quarter of the way in.
        (90, Plan([30.0, 60.0], [45.0], 22.5)),
    ],
)
def test_the_plan_spaces_changes_kills_and_the_outage(seconds: float, expected: Plan) -> None:
    assert plan(seconds) == expected


def make_model(tmp_path: Path) -> Path:
    (tmp_path / "mlp" / "1").mkdir(parents=True)
    (tmp_path / "mlp" / "1" / "model.onnx").write_bytes(b"onnx")
    return tmp_path / "mlp"


def split_of(model: Path) -> dict[int, int]:
    config = yaml.safe_load((model / "config.yaml").read_text())
    assert config["version_policy"] == {"latest": 2}
    return dict(config["traffic"]["split"])


def test_changes_add_versions_and_move_the_split_keeping_two_versions(tmp_path: Path) -> None:
    model = make_model(tmp_path)
    changes = Changes(model)
    assert split_of(model) == {1: 90, 2: 10}  # two versions serve from the start
    assert (model / "2" / "model.onnx").read_bytes() == b"onnx"
    assert changes.next() == "version 3 added"
    assert split_of(model) == {2: 90, 3: 10}
    changes.retire()
    assert sorted(p.name for p in model.iterdir() if p.is_dir()) == ["2", "3"]
    assert changes.next() == "split 2:50 / 3:50"
    assert split_of(model) == {2: 50, 3: 50}
    assert changes.next() == "version 4 added"
    assert changes.next() == "split 3:10 / 4:90"


def test_the_log_watch_counts_what_was_appended_and_waits_for_a_whole_line(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"Application startup complete.\nnoise\nApplication start")
    watch = LogWatch(log, b"Application startup complete")
    assert watch.count() == 1
    with log.open("ab") as more:
        more.write(b"up complete.\n")
    assert watch.count() == 2
    assert watch.count() == 2


def read(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_an_answer_is_read_with_its_retry_after_and_connection_close() -> None:
    answer = await read_answer(
        read(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\nretry-after: 1\r\n"
            b'connection: close\r\n\r\n{"error":1}'
        )
    )
    assert (answer.status, answer.retry_after, answer.closing) == (503, True, True)
    assert answer.body == b'{"error":1}'


async def test_a_connection_closed_without_an_answer_is_an_error() -> None:
    with pytest.raises(ConnectionError):
        await read_answer(read(b""))
    with pytest.raises(asyncio.IncompleteReadError):
        await read_answer(read(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"))


def test_the_client_ports_of_a_process_are_read_from_proc() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                ports = client_ports(os.getpid(), listener.getsockname()[1])
                assert ports == {client.getsockname()[1]}


def test_every_model_is_asked_as_json_typed_and_binary_but_digits_binary() -> None:
    found = {kind.label: kind for kind in kinds()}
    assert sorted(found) == sorted(
        f"{codec} {model}"
        for model in ("mlp", "digits", REMOTE_MODEL)
        for codec in ("json", "typed", "binary")
        if (codec, model) != ("binary", "digits")
    )
    binary = found["binary mlp"]
    header_length = int(dict(binary.headers)["Inference-Header-Content-Length"])
    header = json.loads(binary.body[:header_length])
    assert header["inputs"][0]["parameters"]["binary_data_size"] == 256 * 4
    assert len(binary.body) == header_length + 256 * 4
    request = found["typed digits"].request(8000, "t0ken")
    assert request.startswith(b"POST /models/digits/predict HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t0ken\r\n" in request
    assert found[f"json {REMOTE_MODEL}"].remote
